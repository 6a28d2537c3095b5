import {
  connectNats,
  ensureTopology,
  patiently,
  jetstream,
  topology,
  type JetStreamClient,
  type JetStreamManager,
  type Logger,
  type NatsConnection,
  type Topology,
  type TopologyOptions,
} from '@taskstream/nats';

/** A connected, topology-checked NATS handle for one service. */
export interface ServiceContext {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  topo: Topology;
  log: Logger;
}

export interface ContextOptions extends TopologyOptions {
  natsUrl: string | string[];
  name: string;
  log: Logger;
  /** Stack traces naming where a timed-out NATS request started (a debugging aid with a CPU cost). */
  asyncTraces?: boolean;
}

/**
 * A cluster that is starting or electing a JetStream leader answers API calls with timeouts for a
 * while: a service started then waits (up to a minute) instead of exiting.
 */
export async function createContext(options: ContextOptions): Promise<ServiceContext> {
  const nc = await connectNats({ servers: options.natsUrl, name: options.name, asyncTraces: options.asyncTraces ?? false });
  const topo = topology(options);
  const jsm = await patiently(() => ensureTopology(nc, topo), 60_000);
  return { nc, js: jetstream(nc), jsm, topo, log: options.log };
}
