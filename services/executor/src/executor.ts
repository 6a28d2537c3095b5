import { hostname } from 'node:os';
import { DelegateBackoff, handleWhen, noop, retry, timeout, TimeoutStrategy, wrap, type IPolicy } from 'cockatiel';
import {
  DEFAULT_BACKOFF,
  flowIdOfSubject,
  retryDelayMs,
  TERMINAL_TASK_EVENTS,
  WorkItem,
  workSubject,
  type EventBody,
  type TaskError,
} from '@taskstream/domain';
import {
  DeadLetters,
  decodeJson,
  ensureConsumer,
  EventLog,
  HandBack,
  readFlowHistory,
  startConsumerLoop,
  type Decoded,
  type JsMsg,
} from '@taskstream/nats';
import type { ServiceContext, ServiceHandle } from '@taskstream/runtime';
import { Quarantine } from './quarantine.js';
import { createSteps, StepError, toTaskError, type StepRunner } from './steps/index.js';

/** NATS did not store an event: not the step's fault, so no attempt is spent on it. */
class InfrastructureError extends Error {
  override name = 'InfrastructureError';
}

/** The next attempt waits long enough to be worth surviving this process: JetStream holds the item meanwhile. */
class DeferredRetry extends Error {
  override name = 'DeferredRetry';
  constructor(readonly delayMs: number) {
    super(`next attempt in ${delayMs} ms`);
  }
}

/** Why a running step was stopped when its executor shuts down: the attempt does not count. */
class Interrupted extends Error {
  override name = 'Interrupted';
}

interface PriorProgress {
  /** Highest attempt number recorded. */
  attempts: number;
  /** Attempts stopped by an executor shutting down: numbered, but not spent. */
  interrupted: number;
  /** Attempts that started and never reported back: their executor stopped. */
  crashed: number;
  finished: boolean;
  /** Why the flow is being stopped, when it is (cancelled, or its timeout passed). */
  cancelled?: string;
  lastError?: TaskError;
  /** When the log holds a scheduled retry not yet started: the time it is due (epoch ms). */
  retryDueAt?: number;
}

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
  ackWaitMs?: number;
  /** Base environment for shell steps. */
  env?: NodeJS.ProcessEnv;
  steps?: Record<string, StepRunner>;
}

export function executorConsumerName(queue: string): string {
  return queue === '*' ? 'exec-all' : `exec-${queue}`;
}

function decodeWorkItem(data: Uint8Array): Decoded<WorkItem> {
  const json = decodeJson(data);
  if (!json.ok) return json;
  const parsed = WorkItem.safeParse(json.value);
  if (parsed.success) return { ok: true, value: parsed.data };
  return { ok: false, reason: `invalid work item: ${parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '$'}: ${i.message}`).join('; ')}` };
}

/**
 * Runs work items of one queue. Each attempt runs under cockatiel's retry (the task's retries and
 * backoff) and timeout (`timeout_secs`) policies; every attempt and the outcome are events, and the
 * work item is acknowledged only after the outcome event is stored.
 */
export async function startExecutor(ctx: ServiceContext, options: ExecutorOptions): Promise<ServiceHandle> {
  const { layout } = ctx.topo;
  const consumer = executorConsumerName(options.queue);
  // Poison is judged by crashed attempts in the log (crashLimit); JetStream's own limit is a last
  // resort far above it, because items merely held by a dying executor also count deliveries.
  const crashLimit = options.crashLimit ?? 4;
  const maxDeliver = options.maxDeliver ?? 250;
  const durableRetryAfterMs = options.durableRetryAfterMs ?? 5_000;
  const shutdownGraceMs = options.shutdownGraceMs ?? 10_000;
  let stopping = false;
  const ackWaitMs = options.ackWaitMs ?? 30_000;
  const executorId = options.executorId ?? `${hostname()}:${process.pid}:${options.queue}`;
  const steps = options.steps ?? createSteps({ shellEnabled: options.shellEnabled ?? false, env: options.env });
  await ensureConsumer(ctx.jsm, ctx.topo.workStream, {
    durable_name: consumer,
    filter_subject: options.queue === '*' ? `${layout.prefix}.work.>` : workSubject(layout, options.queue),
    max_deliver: maxDeliver,
    ack_wait: ackWaitMs * 1_000_000,
    max_ack_pending: 10_000,
  });
  const log = new EventLog(ctx.js, ctx.topo);

  // Cancellation: running tasks of a flow are stopped when its cancel request or the passing of
  // its deadline is seen. The value says why, for the task's cancelled event.
  const running = new Map<string, Set<AbortController>>();
  const cancelledFlows = new Map<string, string>();
  const stopFlow = (flowId: string, why: string) => {
    cancelledFlows.set(flowId, why);
    if (cancelledFlows.size > 10_000) cancelledFlows.delete(cancelledFlows.keys().next().value!);
    for (const controller of running.get(flowId) ?? []) controller.abort(new Error(why));
  };
  const cancelSubs = (
    [
      ['flow.cancel_requested', 'flow cancelled'],
      ['flow.deadline_passed', "the flow's timeout passed"],
    ] as const
  ).map(([type, why]) =>
    ctx.nc.subscribe(`${layout.prefix}.evt.*.*.${type}`, {
      callback: (_err, msg) => {
        const flowId = flowIdOfSubject(layout, msg.subject);
        if (flowId) stopFlow(flowId, why);
      },
    }),
  );

  /** Records an event; a failure to store it is the infrastructure's, never the step's. */
  async function emit(item: WorkItem, event: EventBody<'id' | 'version' | 'time' | 'flow_id' | 'task_id'>, msgID: string) {
    try {
      return await log.appendNew({ ...event, flow_id: item.flow_id, task_id: item.task_id } as EventBody<'id' | 'version' | 'time'>, `${item.idempotency_key}:${msgID}`);
    } catch (error) {
      throw new InfrastructureError(`could not record ${event.type}: ${(error as Error).message}`);
    }
  }

  /**
   * On redelivery: how many attempts the log already holds, how many of them started and never
   * reported back (their executor died: crash evidence against this item, unlike a delivery count,
   * which also grows for items merely held by a dying process), and whether the task already ended.
   */
  async function priorProgress(item: WorkItem): Promise<PriorProgress> {
    let attempts = 0;
    let interrupted = 0;
    let finished = false;
    let cancelled: string | undefined;
    let lastError: TaskError | undefined;
    let retry: { attempt: number; dueAt: number } | undefined;
    const started = new Set<number>();
    const reported = new Set<number>();
    for (const { event } of await readFlowHistory(ctx.js, ctx.topo, item.flow_id)) {
      if (event.type === 'flow.cancel_requested') cancelled ??= 'flow cancelled';
      if (event.type === 'flow.deadline_passed') cancelled ??= "the flow's timeout passed";
      if (!('task_id' in event) || event.task_id !== item.task_id) continue;
      if ('attempt' in event) attempts = Math.max(attempts, event.attempt);
      if (event.type === 'task.started') started.add(event.attempt);
      if (event.type === 'task.attempt_failed') {
        if (event.data.error.code === 'INTERRUPTED') interrupted++;
        else lastError = event.data.error;
        reported.add(event.attempt);
      }
      if (event.type === 'task.retry_scheduled') retry = { attempt: event.attempt, dueAt: Date.parse(event.time) + event.data.delay_ms };
      if (TERMINAL_TASK_EVENTS.has(event.type)) finished = true;
    }
    const crashed = [...started].filter((a) => !reported.has(a)).length;
    const retryPending = retry !== undefined && retry.attempt === attempts && reported.has(attempts);
    return { attempts, interrupted, crashed, finished, ...(cancelled && { cancelled }), ...(lastError && { lastError }), ...(retryPending && { retryDueAt: retry!.dueAt }) };
  }

  const quarantine = new Quarantine();

  async function execute(item: WorkItem, msg: JsMsg): Promise<void> {
    // A redelivered item is a suspect only if an attempt of it started and never reported back;
    // one coming back from a durable retry or a hand-back is not.
    const prior = msg.info.deliveryCount > 1 ? await priorProgress(item) : undefined;
    const leave = await quarantine.enter((prior?.crashed ?? 0) > 0, () => msg.working(), Math.max(1_000, ackWaitMs / 3));
    try {
      await executeAdmitted(item, msg, prior);
    } finally {
      leave();
    }
  }

  async function executeAdmitted(item: WorkItem, msg: JsMsg, prior: PriorProgress | undefined): Promise<void> {
    const spec = item.spec;
    const totalAttempts = (spec.retries ?? 0) + 1;
    const backoff = spec.backoff ?? DEFAULT_BACKOFF;
    // Attempt numbers continue from the log; interrupted attempts are numbered but not spent.
    let done = 0;
    let unspent = 0;
    if (prior) {
      if (prior.finished) return;
      if (prior.crashed >= crashLimit) {
        const reason = `the work item was started ${prior.crashed} times and its executor stopped each time (delivery ${msg.info.deliveryCount}); set aside as poison`;
        await deadLetters.setAside(msg, `executor-${options.queue === '*' ? 'all' : options.queue}`, reason);
        await emit(item, { type: 'task.failed', attempt: Math.max(1, prior.attempts), data: { error: { message: reason, code: 'POISON', retryable: false }, duration_ms: 0 } }, 'outcome');
        ctx.log.error({ flow_id: item.flow_id, task_id: item.task_id, crashes: prior.crashed }, 'poison work item set aside');
        return;
      }
      if (prior.cancelled) cancelledFlows.set(item.flow_id, prior.cancelled);
      done = prior.attempts;
      unspent = prior.interrupted;
      if (done - unspent >= totalAttempts) {
        const error = prior.lastError ?? { message: 'the executor running the last attempt stopped before reporting it', code: 'LOST', retryable: false };
        await emit(item, { type: 'task.failed', attempt: done, data: { error, duration_ms: 0 } }, 'outcome');
        return;
      }
      // Redelivered before its scheduled retry is due (its executor stopped while waiting in memory).
      const wait = prior.retryDueAt !== undefined && !prior.cancelled ? prior.retryDueAt - Date.now() : 0;
      if (wait >= durableRetryAfterMs) throw new HandBack('retry not due yet', wait);
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
    if (stopping) throw new HandBack('executor stopping');
    const stoppedBecause = cancelledFlows.get(item.flow_id);
    if (stoppedBecause !== undefined) {
      await emit(item, { type: 'task.cancelled', data: { reason: `${stoppedBecause} before the task started` } }, 'outcome');
      return;
    }
    const run = steps[spec.executor];
    if (!run) {
      const error = { message: `this executor has no "${spec.executor}" step`, code: 'UNKNOWN_EXECUTOR', retryable: false };
      await emit(item, { type: 'task.failed', attempt: done + 1, data: { error, duration_ms: 0 } }, 'outcome');
      return;
    }

    const controller = new AbortController();
    const flowRunning = running.get(item.flow_id) ?? new Set();
    flowRunning.add(controller);
    running.set(item.flow_id, flowRunning);
    const heartbeat = setInterval(() => msg.working(), Math.max(1_000, ackWaitMs / 3));
    const published: Array<Promise<unknown>> = [];
    let attempt = done;
    let lastError: TaskError | undefined;
    let lastDuration = 0;
    let attemptStarted = 0;
    let nextDelayMs = 0;

    // Only the step's own failures are retried here; a failure to record an event hands the whole
    // work item back to JetStream (nak), to continue from the log when it comes back.
    const retryPolicy = retry(
      handleWhen((error) => error instanceof StepError && !controller.signal.aborted && error.detail.retryable),
      {
        maxAttempts: totalAttempts - (done - unspent) - 1,
        backoff: new DelegateBackoff(() => nextDelayMs),
      },
    );
    retryPolicy.onRetry(({ delay }) => {
      published.push(emit(item, { type: 'task.retry_scheduled', attempt, data: { next_attempt: attempt + 1, delay_ms: delay } }, `${attempt}:task.retry_scheduled`));
    });
    const timeoutMs = spec.timeout_secs !== undefined ? Math.round(spec.timeout_secs * 1000) : undefined;
    const policy: IPolicy = timeoutMs !== undefined ? wrap(retryPolicy, timeout(timeoutMs, TimeoutStrategy.Cooperative)) : wrap(retryPolicy, noop);

    try {
      const output = await policy.execute(async ({ signal }: { signal: AbortSignal }) => {
        attempt++;
        const started = (attemptStarted = Date.now());
        await emit(item, { type: 'task.started', attempt, data: { executor_id: executorId } }, `${attempt}:task.started`);
        try {
          return await run({ spec, signal, flowId: item.flow_id, taskId: item.task_id, attempt, idempotencyKey: item.idempotency_key });
        } catch (error) {
          lastDuration = Date.now() - started;
          lastError =
            signal.aborted && !controller.signal.aborted
              ? { message: `attempt ${attempt} timed out after ${spec.timeout_secs}s`, code: 'TIMEOUT', retryable: true }
              : controller.signal.reason instanceof Interrupted
                ? { message: `attempt ${attempt} was stopped because its executor shut down; the task runs again and this attempt does not count`, code: 'INTERRUPTED', retryable: true }
                : controller.signal.aborted
                  ? { message: 'cancelled while running', code: 'CANCELLED', retryable: false }
                  : toTaskError(error);
          await emit(item, { type: 'task.attempt_failed', attempt, data: { error: lastError, duration_ms: lastDuration } }, `${attempt}:task.attempt_failed`);
          const spent = attempt - unspent;
          const retrying = lastError.retryable && !controller.signal.aborted && spent < totalAttempts;
          nextDelayMs = retrying ? retryDelayMs(backoff, spent, Math.random()) : 0;
          if (retrying && nextDelayMs >= durableRetryAfterMs) throw new DeferredRetry(nextDelayMs);
          throw new StepError(lastError);
        }
      }, controller.signal);
      await Promise.all(published);
      await emit(item, { type: 'task.succeeded', attempt, data: { output, duration_ms: Date.now() - attemptStarted } }, 'outcome');
    } catch (error) {
      await Promise.all(published);
      if (error instanceof DeferredRetry) {
        await emit(item, { type: 'task.retry_scheduled', attempt, data: { next_attempt: attempt + 1, delay_ms: error.delayMs } }, `${attempt}:task.retry_scheduled`);
        throw new HandBack('durable retry', error.delayMs);
      }
      if (!(error instanceof StepError) && !controller.signal.aborted) throw error;
      if (controller.signal.reason instanceof Interrupted) throw new HandBack('executor stopping');
      const final = lastError ?? toTaskError(error);
      if (controller.signal.aborted) {
        await emit(item, { type: 'task.cancelled', data: { reason: `${cancelledFlows.get(item.flow_id) ?? 'flow cancelled'} while the task was running` } }, 'outcome');
      } else if (final.code === 'TIMEOUT') {
        await emit(item, { type: 'task.timed_out', attempt, data: { timeout_ms: timeoutMs ?? 0, error: final } }, 'outcome');
      } else {
        await emit(item, { type: 'task.failed', attempt, data: { error: final, duration_ms: lastDuration } }, 'outcome');
      }
    } finally {
      clearInterval(heartbeat);
      flowRunning.delete(controller);
      if (flowRunning.size === 0) running.delete(item.flow_id);
    }
  }

  // A work item that kills its executor on every delivery never reaches a handler that could set it
  // aside. JetStream announces it once it has been delivered max_deliver times: record the task as
  // failed, keep the item in the dead letters, and remove it. One executor of the pool does this
  // (queue group); the outcome's msgID makes a repeat harmless.
  const deadLetters = new DeadLetters(ctx.js, ctx.topo);
  const poisonSub = ctx.nc.subscribe(`$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${ctx.topo.workStream}.${consumer}`, {
    queue: consumer,
    callback: (_err, advisory) => {
      void (async () => {
        const { stream_seq, deliveries } = advisory.json<{ stream_seq: number; deliveries: number }>();
        const stored = await ctx.jsm.streams.getMessage(ctx.topo.workStream, { seq: stream_seq }).catch(() => null);
        if (!stored) return;
        const reason = `the work item was delivered ${deliveries} times and never completed: its executor stopped each time`;
        await deadLetters.setAsideStored(stored, `executor-${options.queue === '*' ? 'all' : options.queue}`, consumer, deliveries, reason);
        const decoded = decodeWorkItem(stored.data);
        if (decoded.ok) {
          const error = { message: reason, code: 'POISON', retryable: false };
          await emit(decoded.value, { type: 'task.failed', attempt: Math.max(1, deliveries), data: { error, duration_ms: 0 } }, 'outcome');
        }
        await ctx.jsm.streams.deleteMessage(ctx.topo.workStream, stream_seq, false);
        ctx.log.error({ stream_seq, deliveries }, 'poison work item set aside');
      })().catch((error) => ctx.log.error({ err: error }, 'could not set a poison work item aside'));
    },
  });

  const loop = await startConsumerLoop({
    js: ctx.js,
    stream: ctx.topo.workStream,
    consumer,
    source: `executor-${options.queue === '*' ? 'all' : options.queue}`,
    decode: decodeWorkItem,
    handle: execute,
    deadLetters,
    log: ctx.log,
    maxDeliver,
    concurrency: options.concurrency ?? 8,
  });
  ctx.log.info({ consumer, queue: options.queue, shell: options.shellEnabled ?? false }, 'executor started');
  return {
    name: 'executor',
    async stop() {
      stopping = true;
      for (const sub of cancelSubs) sub.unsubscribe();
      poisonSub.unsubscribe();
      const interrupt = setTimeout(() => {
        for (const controllers of running.values()) for (const controller of controllers) controller.abort(new Interrupted('executor stopping'));
      }, shutdownGraceMs);
      try {
        await loop.stop();
      } finally {
        clearTimeout(interrupt);
      }
    },
  };
}
