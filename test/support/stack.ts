import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { startStack, type Stack, type StackOptions } from '@taskstream/cli';
import { NatsServer, waitFor } from '@taskstream/testing';
import type { InjectOptions } from 'fastify';

export const ROOT = join(import.meta.dirname, '..', '..');

/** The embedded stack (`taskstream up`'s code) on its own nats-server, with helpers for tests. */
export class TestStack {
  private constructor(
    readonly nats: NatsServer,
    readonly stack: Stack,
  ) {}

  static async start(options: StackOptions = {}): Promise<TestStack> {
    const nats = await NatsServer.start();
    const stack = await startStack({ natsUrl: nats.url, logLevel: 'silent', ...options });
    return new TestStack(nats, stack);
  }

  get url(): string {
    return this.stack.gatewayUrl;
  }

  inject(options: InjectOptions) {
    return this.stack.gateway.inject(options);
  }

  async submit(flow: unknown, headers: Record<string, string> = {}): Promise<string> {
    const response = await this.inject({ method: 'POST', url: '/api/v1/flows', payload: JSON.stringify(flow), headers: { 'content-type': 'application/json', ...headers } });
    if (response.statusCode !== 202) throw new Error(`submission failed: ${response.statusCode} ${response.body}`);
    return response.json().flow_id;
  }

  async view(flowId: string): Promise<any> {
    return (await this.inject({ method: 'GET', url: `/api/v1/flows/${flowId}` })).json();
  }

  async events(flowId: string): Promise<any[]> {
    return (await this.inject({ method: 'GET', url: `/api/v1/flows/${flowId}/events` })).json().events;
  }

  /** Waits for the flow's terminal event and returns the view once the projector has caught up with it. */
  async settled(flowId: string, timeoutMs = 30_000): Promise<any> {
    return waitFor(`flow ${flowId} to finish`, async () => {
      const view = await this.view(flowId);
      return ['succeeded', 'failed', 'cancelled'].includes(view.status) ? view : undefined;
    }, timeoutMs);
  }

  async stop(): Promise<void> {
    await this.stack.stop();
    await this.nats.stop();
  }
}

export { alive } from '@taskstream/testing';

/** Types of a flow's events in stream order, as `type` or `type:task`. */
export function timeline(events: any[]): string[] {
  return events.map((e) => (e.event.task_id ? `${e.event.type}:${e.event.task_id}` : e.event.type));
}

/** A local HTTP endpoint that records every request, answering with `status(req, n)` (200 by default). */
export async function recordingEndpoint(status: (req: IncomingMessage, n: number) => number = () => 200) {
  const requests: Array<{ method: string; url: string; headers: IncomingMessage['headers']; body: string }> = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      requests.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      const code = status(req, requests.length);
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: code < 400, n: requests.length }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { url: `http://127.0.0.1:${port}`, requests, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/**
 * A deployed gateway requires API keys by default; tests that are not about keys run it without
 * them, on loopback (which is all TASKSTREAM_AUTH=none allows) and without a request rate limit.
 * The key tests (test/e2e/auth.test.ts) turn both back on.
 */
export const OPEN_GATEWAY: Record<string, string> = { TASKSTREAM_AUTH: 'none', TASKSTREAM_RATE_LIMIT: '0' };

/** One service as its own OS process, from its built main.js, as a deployment runs it. */
export class ServiceProcess {
  private output = '';
  private constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    const collect = (c: Buffer) => (this.output = (this.output + c.toString()).slice(-20_000));
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
  }

  static start(service: string, env: Record<string, string>): ServiceProcess {
    const child = spawn(process.execPath, [join(ROOT, 'services', service, 'dist', 'main.js')], {
      env: { ...process.env, TASKSTREAM_LOG_LEVEL: 'warn', TASKSTREAM_HTTP_ALLOW: '127.0.0.0/8,::1', TASKSTREAM_WEBHOOK_ALLOW: '127.0.0.0/8,::1', ...(service === 'gateway' && OPEN_GATEWAY), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new ServiceProcess(service, child);
  }

  logs(): string {
    return this.output;
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.exited) return;
    await new Promise<void>((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.kill(signal);
    });
  }
}
