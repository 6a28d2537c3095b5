import {
  connectNats,
  ensureTopology,
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
}

export async function createContext(options: ContextOptions): Promise<ServiceContext> {
  const nc = await connectNats({ servers: options.natsUrl, name: options.name });
  const topo = topology(options);
  const jsm = await ensureTopology(nc, topo);
  return { nc, js: jetstream(nc), jsm, topo, log: options.log };
}
