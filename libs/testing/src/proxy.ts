import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 to a port on 127.0.0.1 whose connections a test can cut and let back,
 * as a network outage would: cut, it closes every connection and each new one at once. It can also
 * hold what clients send from a given request on (a server slow to answer it), to do something
 * else in between.
 */
export class LoopbackProxy {
  private readonly sockets = new Set<Socket>();
  private cutOff = false;
  private holding: { text: string; seen: () => void; held: Array<{ to: Socket; chunk: Buffer }> | undefined } | undefined;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number): Promise<LoopbackProxy> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const proxy = new LoopbackProxy(server, (server.address() as { port: number }).port);
    server.on('connection', (client) => proxy.relay(client, targetPort));
    return proxy;
  }

  /** Closes every connection through the proxy, and each new one until `restore`. */
  cut(): void {
    this.cutOff = true;
    for (const socket of this.sockets) socket.destroy();
  }

  /**
   * Holds what clients send from the first chunk holding `text` on, until `restore`; resolves once
   * such a chunk was seen (it and all after it are held, in order).
   */
  holdFrom(text: string): Promise<void> {
    return new Promise((seen) => (this.holding = { text, seen, held: undefined }));
  }

  restore(): void {
    this.cutOff = false;
    const held = this.holding?.held ?? [];
    this.holding = undefined;
    for (const { to, chunk } of held) to.write(chunk);
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private relay(client: Socket, targetPort: number): void {
    if (this.cutOff) {
      client.destroy();
      return;
    }
    const upstream = createConnection({ host: '127.0.0.1', port: targetPort });
    client.on('data', (chunk: Buffer) => {
      const holding = this.holding;
      if (holding !== undefined && holding.held === undefined && chunk.includes(holding.text)) {
        holding.held = [];
        holding.seen();
      }
      if (holding?.held !== undefined) holding.held.push({ to: upstream, chunk });
      else upstream.write(chunk);
    });
    upstream.pipe(client);
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      this.sockets.add(from);
      from.on('error', () => to.destroy());
      from.on('close', () => {
        this.sockets.delete(from);
        to.destroy();
      });
    }
  }
}
