import { freePort, NatsServer } from './ports.js';

/** A JetStream cluster of `size` nodes on loopback, each with its own store. */
export class NatsCluster {
  private constructor(readonly nodes: NatsServer[]) {}

  static async start(size = 3, name = 'taskstream-test'): Promise<NatsCluster> {
    const ports = await Promise.all(Array.from({ length: size }, () => freePort()));
    const clusterPorts = await Promise.all(Array.from({ length: size }, () => freePort()));
    const routes = clusterPorts.map((p) => `nats://127.0.0.1:${p}`).join(',');
    const nodes = await Promise.all(
      ports.map((port, i) =>
        NatsServer.start({
          port,
          args: ['-n', `${name}-${i}`, '--cluster_name', name, '--cluster', `nats://127.0.0.1:${clusterPorts[i]}`, '--routes', routes],
        }),
      ),
    );
    return new NatsCluster(nodes);
  }

  get urls(): string[] {
    return this.nodes.map((n) => n.url);
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
  }
}

