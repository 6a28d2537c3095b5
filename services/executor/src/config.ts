import { hostname } from 'node:os';
import { createSteps, type StepRunner } from './steps/index.js';
import { intervalMs } from './timers.js';

export interface ExecutorOptions {
  /** The queue this pool serves; "*" serves every queue (the embedded default). */
  queue: string;
  /** Work items run at once by this process. */
  concurrency?: number;
  /** Shell steps are refused unless this is on. */
  shellEnabled?: boolean;
  executorId?: string;
  /** Attempts of one work item that may crash their executor before it is set aside as poison. */
  crashLimit?: number;
  /** JetStream's delivery limit for work items, a last resort above `crashLimit` and the retries a task may have. */
  maxDeliver?: number;
  /**
   * Retry delays of at least this long are durable: the work item goes back to JetStream with a
   * delayed redelivery instead of waiting in this process. Shorter ones wait in memory (cockatiel).
   */
  durableRetryAfterMs?: number;
  /** On stop, running steps get this long to finish; then they are stopped and handed back without spending an attempt. */
  shutdownGraceMs?: number;
  /** A stopped shell step's processes get this long between SIGTERM and SIGKILL. */
  killGraceMs?: number;
  ackWaitMs?: number;
  /** The environment shell steps take PATH from and queue secrets (`{"env": ...}`) are read from; this process's by default. */
  env?: NodeJS.ProcessEnv;
  steps?: Record<string, StepRunner>;
  /** Where `${secrets.NAME}` is read; the secrets bucket by default. */
  readSecret?: (name: string) => Promise<string | undefined>;
  /** What http steps may reach besides public addresses (CIDRs, host names); nothing by default. See StepOptions. */
  httpAllow?: readonly string[];
  /** Bytes one artifact of a shell step may take (DEFAULT_ARTIFACT_LIMITS in artifacts.ts). */
  artifactMaxFileBytes?: number;
  /** Files one attempt of a shell step may store. */
  artifactMaxFiles?: number;
  /** Bytes the artifacts of one flow may take, every attempt's counted. */
  artifactMaxFlowBytes?: number;
  /**
   * What completion webhooks may reach besides public addresses; nothing by default. Apart from
   * httpAllow: any executor of any pool may deliver any flow's webhook, so a pool's wider reach
   * must not become every flow author's.
   */
  webhookAllow?: readonly string[];
}

/** The options with every default filled in, and the names derived from the queue. */
export interface ExecutorConfig {
  queue: string;
  /** The durable consumer every process of this queue's pool shares. */
  consumer: string;
  /** Who set a work item aside, in the dead letters. */
  source: string;
  concurrency: number;
  shellEnabled: boolean;
  executorId: string;
  crashLimit: number;
  maxDeliver: number;
  durableRetryAfterMs: number;
  shutdownGraceMs: number;
  ackWaitMs: number;
  /** How often a held work item is reported in progress, well within `ackWaitMs`. */
  keepAliveMs: number;
  env: NodeJS.ProcessEnv;
}

export function executorConsumerName(queue: string): string {
  return queue === '*' ? 'exec-all' : `exec-${queue}`;
}

export function executorConfig(options: ExecutorOptions): ExecutorConfig {
  const ackWaitMs = options.ackWaitMs ?? 30_000;
  return {
    queue: options.queue,
    consumer: executorConsumerName(options.queue),
    source: `executor-${options.queue === '*' ? 'all' : options.queue}`,
    concurrency: options.concurrency ?? 8,
    shellEnabled: options.shellEnabled ?? false,
    executorId: options.executorId ?? `${hostname()}:${process.pid}:${options.queue}`,
    // Poison is judged by crashed attempts in the log (crashLimit); JetStream's own limit is a last
    // resort far above it, because items merely held by a dying executor also count deliveries.
    crashLimit: options.crashLimit ?? 4,
    maxDeliver: options.maxDeliver ?? 250,
    durableRetryAfterMs: options.durableRetryAfterMs ?? 5_000,
    shutdownGraceMs: options.shutdownGraceMs ?? 10_000,
    ackWaitMs,
    keepAliveMs: intervalMs(Math.max(1_000, ackWaitMs / 3)),
    env: options.env ?? process.env,
  };
}

/** The pool's step runners: the ones given, or the built-in steps with the pool's settings. */
export function stepsFor(options: ExecutorOptions): Record<string, StepRunner> {
  return (
    options.steps ??
    createSteps({
      shellEnabled: options.shellEnabled ?? false,
      env: options.env,
      httpAllow: options.httpAllow,
      ...(options.killGraceMs !== undefined && { killGraceMs: options.killGraceMs }),
    })
  );
}
