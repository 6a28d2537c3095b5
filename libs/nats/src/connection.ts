import { credsAuthenticator, type NatsConnection, type Status } from '@nats-io/transport-node';
import { skipStacksOfAnsweredRequests } from './settled-requests.js';
import { connectCoalescing } from './transport.js';

export interface ConnectOptions {
  servers: string | string[];
  name: string;
  /** How long the first connection may take before giving up, in ms. */
  timeoutMs?: number;
  user?: string;
  pass?: string;
  token?: string;
  /** The contents of a NATS credentials file (a user JWT and its nkey seed), for servers in operator mode. */
  creds?: Uint8Array;
  /**
   * Capture the caller's stack for every request so a timeout says where it started. Off by default:
   * the capture is a fresh Error per publish and cost 10-16% of each service's CPU in the benchmarks.
   */
  asyncTraces?: boolean;
}

/** A user-facing failure to reach NATS: says where we tried and what to do. */
export class NatsUnreachableError extends Error {
  constructor(
    readonly servers: string[],
    cause: unknown,
  ) {
    super(
      `cannot reach NATS at ${servers.join(', ')} (${(cause as Error)?.message ?? String(cause)}). ` +
        'Start a nats-server with JetStream enabled (nats-server -js), or point TASKSTREAM_NATS_URL / --nats at a running one.',
      { cause },
    );
    this.name = 'NatsUnreachableError';
  }
}

/**
 * Connects with settings for long-lived services: reconnect forever with jittered waits, so a
 * restarting or failing-over server is ridden out rather than crashing the process.
 */
export async function connectNats(options: ConnectOptions): Promise<NatsConnection> {
  const servers = Array.isArray(options.servers) ? options.servers : options.servers.split(',').map((s) => s.trim());
  skipStacksOfAnsweredRequests();
  try {
    return await connectCoalescing({
      servers,
      name: options.name,
      timeout: options.timeoutMs ?? 5_000,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      reconnectJitter: 250,
      pingInterval: 10_000,
      waitOnFirstConnect: false,
      noAsyncTraces: !options.asyncTraces,
      ...(options.user !== undefined && { user: options.user, pass: options.pass }),
      ...(options.token !== undefined && { token: options.token }),
      ...(options.creds !== undefined && { authenticator: credsAuthenticator(options.creds) }),
    });
  } catch (error) {
    throw new NatsUnreachableError(servers, error);
  }
}

export type { NatsConnection };

/**
 * Calls `back` each time the connection returns from an outage of at least `minOutageMs`, for state
 * a process keeps from a watch: a watch resumes where it stopped, and what the server dropped
 * meanwhile (a removal marker, say) it never sees. Stops with the connection or the returned function.
 */
export function onReturnFromOutage(nc: NatsConnection, minOutageMs: number, back: (outageMs: number) => void): () => void {
  // nats.js hands out a queued iterator, which stops (and stops listening) at once.
  const statuses = nc.status() as AsyncIterable<Status> & { stop(): void };
  void (async () => {
    let downSince: number | undefined;
    for await (const status of statuses) {
      if (status.type === 'disconnect') downSince ??= Date.now();
      else if (status.type === 'reconnect' && downSince !== undefined) {
        const outageMs = Date.now() - downSince;
        downSince = undefined;
        if (outageMs >= minOutageMs) back(outageMs);
      }
    }
  })();
  return () => statuses.stop();
}
