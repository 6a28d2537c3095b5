import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { freePort as anyFreePort, NatsServer as Server, type NatsServerOptions } from '@taskstream/nats';

/*
 * A port the kernel hands out for port 0 is free when it is handed out, but a test binds it later:
 * meanwhile another test file's process can be handed the same one, or a client's outgoing
 * connection can take it as its local port (both come from the ephemeral range), and the service
 * then fails to listen while the test talks to whatever holds the port. Under vitest each worker
 * therefore takes its ports from a block of its own below the ephemeral range, in turn, skipping
 * any that cannot be bound now. Elsewhere (the benchmark), the kernel chooses.
 */

const FIRST = 20_000;
/** Below Kubernetes' NodePort range (30000-32767), where a proxy may answer loopback connections to ports nobody bound. */
const LAST = 29_999;
const BLOCK = 400;

function ephemeralStart(): number {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  } catch {
    return 32_768;
  }
}

/** This worker's ports, `first` to `first + size - 1`; undefined outside vitest, or where the ephemeral range leaves no room. */
export const testPortBlock: { first: number; size: number } | undefined = (() => {
  const worker = Number(process.env.VITEST_POOL_ID);
  if (!Number.isInteger(worker) || worker < 1) return undefined;
  const blocks = Math.floor((Math.min(LAST + 1, ephemeralStart()) - FIRST) / BLOCK);
  // More workers than blocks share them; the check that a port binds keeps them apart.
  return blocks > 0 ? { first: FIRST + ((worker - 1) % blocks) * BLOCK, size: BLOCK } : undefined;
})();

// A worker runs one test file after another: each starts at its own place in the block, not where the last one started.
let next = Math.floor(Math.random() * BLOCK);

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A port on 127.0.0.1 that no other test worker and no outgoing connection will take. */
export async function freePort(): Promise<number> {
  if (testPortBlock === undefined) return anyFreePort();
  for (let tried = 0; tried < BLOCK; tried++) {
    const port = testPortBlock.first + (next++ % BLOCK);
    if (await bindable(port)) return port;
  }
  return anyFreePort();
}

/** nats-server for tests: on a port from freePort unless one is given. */
export type NatsServer = Server;
export const NatsServer = {
  start: async (options: NatsServerOptions = {}): Promise<Server> => Server.start({ ...options, port: options.port ?? (await freePort()) }),
};
