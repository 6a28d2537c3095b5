import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { buildGateway } from '@taskstream/gateway';
import { startDispatcher } from '@taskstream/dispatcher';
import { startExecutor, type ExecutorOptions } from '@taskstream/executor';
import { startPlanner } from '@taskstream/planner';
import { startProjector } from '@taskstream/projector';
import { createContext, type ServiceContext, type ServiceHandle } from '@taskstream/runtime';
import { freePort, NatsServer, waitFor } from '@taskstream/testing';
import type { FastifyInstance } from 'fastify';
import { silentLogger } from '@taskstream/nats';

export const ROOT = join(import.meta.dirname, '..', '..');

/** The five services in this process, each with its own NATS connection, as `taskstream up` runs them. */
export class InProcessStack {
  private constructor(
    readonly nats: NatsServer,
    readonly gateway: FastifyInstance,
    readonly ctx: ServiceContext,
    private readonly handles: ServiceHandle[],
    private readonly contexts: ServiceContext[],
  ) {}

  static async start(options: { executor?: Partial<ExecutorOptions>; nats?: NatsServer } = {}): Promise<InProcessStack> {
    const nats = options.nats ?? (await NatsServer.start());
    const context = (name: string) => createContext({ natsUrl: nats.url, name, log: silentLogger });
    const [gw, pl, di, ex, pr] = await Promise.all(['gateway', 'planner', 'dispatcher', 'executor', 'projector'].map(context));
    const handles = [
      await startProjector(pr!),
      await startPlanner(pl!),
      await startDispatcher(di!),
      await startExecutor(ex!, { queue: '*', shellEnabled: true, ...options.executor }),
    ];
    const gateway = await buildGateway(gw!);
    return new InProcessStack(nats, gateway, gw!, handles, [gw!, pl!, di!, ex!, pr!]);
  }

  async submit(flow: unknown, headers: Record<string, string> = {}): Promise<string> {
    const response = await this.gateway.inject({ method: 'POST', url: '/api/v1/flows', payload: JSON.stringify(flow), headers: { 'content-type': 'application/json', ...headers } });
    if (response.statusCode !== 202) throw new Error(`submission failed: ${response.statusCode} ${response.body}`);
    return response.json().flow_id;
  }

  async view(flowId: string): Promise<any> {
    return (await this.gateway.inject({ method: 'GET', url: `/api/v1/flows/${flowId}` })).json();
  }

  async events(flowId: string): Promise<any[]> {
    return (await this.gateway.inject({ method: 'GET', url: `/api/v1/flows/${flowId}/events` })).json().events;
  }

  /** Waits until the flow's view shows a terminal status and returns it. */
  async settled(flowId: string, timeoutMs = 30_000): Promise<any> {
    return waitFor(`flow ${flowId} to finish`, async () => {
      const view = await this.view(flowId);
      return ['succeeded', 'failed', 'cancelled'].includes(view.status) ? view : undefined;
    }, timeoutMs);
  }

  async stop(): Promise<void> {
    await this.gateway.close();
    for (const handle of [...this.handles].reverse()) await handle.stop();
    for (const ctx of this.contexts) await ctx.nc.close();
    await this.nats.stop();
  }
}

/** One service as its own OS process, from its built main.js, as a deployment runs it. */
export class ServiceProcess {
  private output = '';
  private constructor(readonly name: string, readonly child: ChildProcess) {
    child.stdout?.on('data', (c: Buffer) => (this.output = (this.output + c.toString()).slice(-20_000)));
    child.stderr?.on('data', (c: Buffer) => (this.output = (this.output + c.toString()).slice(-20_000)));
  }

  static start(service: string, env: Record<string, string>): ServiceProcess {
    const child = spawn(process.execPath, [join(ROOT, 'services', service, 'dist', 'main.js')], {
      env: { ...process.env, TASKSTREAM_LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new ServiceProcess(service, child);
  }

  logs(): string {
    return this.output;
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    return new Promise((resolve) => {
      this.child.once('exit', (code) => resolve(code));
      this.child.kill(signal);
    });
  }
}

export { freePort, NatsServer, waitFor };
