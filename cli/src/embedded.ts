import { join } from 'node:path';
import { startDispatcher } from '@taskstream/dispatcher';
import { createSteps, startExecutor, type ExecutorOptions } from '@taskstream/executor';
import { buildGateway, checkExposure, DEFAULT_RATE_LIMIT } from '@taskstream/gateway';
import { ApiKeyStore, Kvm, NatsServer, silentLogger, type Logger } from '@taskstream/nats';
import { startPlanner } from '@taskstream/planner';
import { startProjector } from '@taskstream/projector';
import { startScheduler } from '@taskstream/scheduler';
import { applyHeapGrowth, collectProcessMetrics, createContext, createLogger, releaseEveryLease, SettingError, startTracing, type ServiceContext, type ServiceHandle } from '@taskstream/runtime';
import type { FastifyInstance } from 'fastify';
import { stackSettings, type StackSettingOptions, type StackSettings } from './stack-settings.js';
import { httpAllowOf } from './commands/service.js';
import { UserError } from './user-error.js';

export interface StackOptions extends StackSettingOptions {
  /** Where the child nats-server keeps its data (default ./.taskstream). */
  dataDir?: string;
  host?: string;
  /** Gateway port; 0 picks a free one. */
  port?: number;
  /**
   * Require API keys, as a deployed gateway does (off by default: the embedded stack serves loopback).
   * With no usable key in the bucket yet, an admin key is created and returned as `adminKey`.
   */
  auth?: boolean;
  /** With `auth` off, serve a non-loopback host anyway (TASKSTREAM_ALLOW_UNAUTHENTICATED). */
  allowUnauthenticated?: boolean;
}

export interface Stack {
  natsUrl: string;
  gatewayUrl: string;
  /** Where the five services' metrics are served together, in one registry: the gateway's `/metrics`. */
  metricsUrl: string;
  gateway: FastifyInstance;
  nats?: NatsServer;
  /** The running services by name (the gateway's handle closes it). */
  services: Map<string, ServiceHandle>;
  /** With `auth`: the admin key created because the stack had no usable key (shown only now). */
  adminKey?: string;
  /** Stops the services, then nats-server. Calling it again returns the same stop. */
  stop(): Promise<void>;
  /**
   * For an exit that cannot wait for `stop`: signals, synchronously, what would outlive this process
   * (the processes of running steps, and nats-server). The work in flight is redelivered later.
   */
  abort(): void;
}

type StepRunner = NonNullable<ExecutorOptions['steps']>[string];

/** The standard steps, plus a way to stop every running one at once without the executor's help. */
function abortableSteps(executor: StackSettings['executor']): { steps: Record<string, StepRunner>; abortAll(): void } {
  const running = new Set<AbortController>();
  // Not AbortSignal.any over one long-lived signal: Node 20 keeps what it derives alive, a leak per step run.
  const abortable = (run: StepRunner): StepRunner => async (ctx) => {
    const controller = new AbortController();
    const follow = () => controller.abort(ctx.signal.reason);
    if (ctx.signal.aborted) follow();
    else ctx.signal.addEventListener('abort', follow, { once: true });
    running.add(controller);
    try {
      return await run({ ...ctx, signal: controller.signal });
    } finally {
      running.delete(controller);
      ctx.signal.removeEventListener('abort', follow);
    }
  };
  return {
    steps: Object.fromEntries(Object.entries(createSteps({ shellEnabled: executor.shellEnabled, httpAllow: executor.httpAllow, killGraceMs: executor.killGraceMs })).map(([name, run]) => [name, abortable(run)])),
    abortAll: () => {
      for (const controller of running) controller.abort(new Error('taskstream is exiting'));
    },
  };
}

/** The settings, or the UserError that says which one is wrong: checked before anything starts. */
function settingsOf(options: StackOptions): StackSettings {
  if (options.natsCreds !== undefined && options.natsUrl === undefined) {
    throw new UserError('--nats-creds is for a NATS given with --nats: the embedded nats-server has no users', 'pass --nats with the URL of the server the credentials are for, or leave --nats-creds out');
  }
  try {
    return stackSettings(options);
  } catch (error) {
    if (error instanceof SettingError) throw new UserError(error.message, `correct or unset ${error.setting} (docs/operations.md lists every setting)`);
    throw error;
  }
}

/** The child nats-server, its data under `dataDir`. */
async function startNats(dataDir: string): Promise<NatsServer> {
  try {
    return await NatsServer.start({ storeDir: join(dataDir, 'nats') });
  } catch (error) {
    throw new UserError(`could not start the embedded nats-server: ${(error as Error).message.split('\n')[0]}`, 'install nats-server (apt-get install nats-server), or pass --nats with the URL of a running one', 3);
  }
}

/** The whole of Taskstream in one process: an optional nats-server child and the five services. */
export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const host = options.host ?? '127.0.0.1';
  try {
    checkExposure(host, options.auth ? 'keys' : 'none', options.allowUnauthenticated ?? false);
  } catch (error) {
    throw new UserError((error as Error).message, 'pass --auth to require API keys', 2);
  }
  const settings = settingsOf(options);
  const nats = options.natsUrl === undefined ? await startNats(options.dataDir ?? '.taskstream') : undefined;
  const natsUrl = options.natsUrl ?? nats!.url;
  const { common } = settings;
  applyHeapGrowth(common.heapGrowthPercent);
  collectProcessMetrics();
  const tracing = await startTracing('embedded');
  const logFor = (name: string): Logger => (common.logLevel === 'silent' ? silentLogger : createLogger(name, common.logLevel));
  const contexts: ServiceContext[] = [];
  const handles: ServiceHandle[] = [];
  const steps = abortableSteps(settings.executor);
  let stopping: Promise<void> | undefined;
  const stopAll = () =>
    (stopping ??= (async () => {
      for (const handle of [...handles].reverse()) await handle.stop().catch(() => undefined);
      for (const ctx of contexts) await ctx.nc.close().catch(() => undefined);
      await tracing?.shutdown().catch(() => undefined);
      await nats?.stop();
    })());
  const abort = () => {
    steps.abortAll();
    void nats?.kill('SIGTERM');
  };
  try {
    const context = async (name: string) => {
      const ctx = await createContext({
        natsUrl,
        name: `taskstream-${name}`,
        log: logFor(name),
        prefix: common.prefix,
        replicas: common.replicas,
        asyncTraces: common.natsAsyncTraces,
        auth: common.natsAuth,
        provision: common.provision,
      });
      contexts.push(ctx);
      return ctx;
    };
    const projectorCtx = await context('projector');
    if (nats) {
      // Started by this process just now: leases left by its earlier run are nobody's.
      const released = await releaseEveryLease(await new Kvm(projectorCtx.js).open(projectorCtx.topo.leasesBucket));
      if (released > 0) logFor('taskstream').info({ released }, 'released the partition leases an earlier run left');
    }
    handles.push(await startProjector(projectorCtx, settings.projector));
    handles.push(await startPlanner(await context('planner'), settings.planner));
    handles.push(await startDispatcher(await context('dispatcher'), settings.dispatcher));
    handles.push(await startExecutor(await context('executor'), { ...settings.executor, steps: steps.steps }));
    handles.push(await startScheduler(await context('scheduler'), settings.scheduler));
    const gatewayCtx = await context('gateway');
    let adminKey: string | undefined;
    if (options.auth) {
      // Before the gateway starts, so the key is in its table from the first request.
      const keys = await ApiKeyStore.open(gatewayCtx.js, gatewayCtx.topo);
      if (!(await keys.anyUsable())) adminKey = (await keys.create({ name: 'admin (taskstream up)', scope: 'admin' })).key;
    }
    const gateway = await buildGateway(gatewayCtx, {
      bodyLimit: settings.gateway.bodyLimit,
      clientStallMs: settings.gateway.clientStallSecs * 1000,
      ...(common.logLevel !== 'silent' && { logger: createLogger('gateway', common.logLevel) }),
      ...(options.auth && { auth: 'keys' as const, rateLimit: DEFAULT_RATE_LIMIT }),
    });
    handles.push({ name: 'gateway', stop: () => gateway.close() });
    try {
      await gateway.listen({ host, port: options.port ?? 0 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
        throw new UserError(`port ${options.port} on ${host} is already in use`, 'pass --port with a free port', 3);
      }
      throw error;
    }
    const address = gateway.server.address();
    const port = typeof address === 'object' && address ? address.port : options.port;
    const gatewayUrl = `http://${host}:${port}`;
    return { natsUrl, gatewayUrl, metricsUrl: `${gatewayUrl}/metrics`, gateway, ...(nats && { nats }), ...(adminKey && { adminKey }), services: new Map(handles.map((h) => [h.name, h])), stop: stopAll, abort };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/** What a one-shot command (`run`, `mcp --embedded`) says of the stack it starts for itself. */
export interface QuietStackOptions {
  nats?: string;
  natsCreds?: string;
  dataDir?: string;
  /** CIDRs and host names http steps may reach besides public addresses, comma-separated. */
  httpAllow?: string;
}

/** The embedded stack a one-shot command starts for itself: silent, shell steps on, the environment's settings. */
export function startQuietStack(options: QuietStackOptions): Promise<Stack> {
  return startStack({
    natsUrl: options.nats,
    natsCreds: options.natsCreds,
    dataDir: options.dataDir,
    logLevel: 'silent',
    shellEnabled: true,
    ...(options.httpAllow !== undefined && { httpAllow: httpAllowOf(options.httpAllow) }),
    env: process.env,
  });
}
