import { hostname } from 'node:os';
import { handleWhen, retry } from 'cockatiel';
import {
  allWorkFilter,
  attemptHistory,
  decideAttempt,
  decideRetry,
  eventSubject,
  eventTypeFilter,
  flowIdOfSubject,
  secretNamesOf,
  STOP_EVENTS,
  stopReason,
  STOPS,
  strongerStop,
  WorkItem,
  workSubject,
  type AttemptHistory,
  type EventBody,
  type Stop,
  type TaskError,
  type TaskSpec,
} from '@taskstream/domain';
import {
  DeadLetters,
  decodeJson,
  ensureConsumer,
  EventLog,
  HandBack,
  readFlowHistory,
  SecretStore,
  startConsumerLoop,
  type Decoded,
  type JsMsg,
} from '@taskstream/nats';
import type { ServiceContext, ServiceHandle } from '@taskstream/runtime';
import { checkOutput, ENVELOPE_BYTES, fitError } from './output.js';
import { Quarantine } from './quarantine.js';
import { loadSecrets, readQueueSecret, redact, specForAttempt } from './run-time.js';
import { createSteps, StepError, toTaskError, type StepRunner } from './steps/index.js';
import { intervalMs, setLongTimeout, sleep } from './timers.js';

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

/** Why an attempt's signal was aborted when its `timeout_secs` passed. */
class AttemptTimeout extends Error {
  override name = 'AttemptTimeout';
}

/** What nats-server allows when it does not say (its default max_payload). */
const DEFAULT_MAX_PAYLOAD = 1024 * 1024;


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
 * Runs work items of one queue. Attempts run under cockatiel's retry policy (the task's retries),
 * each with its `timeout_secs`; every attempt and the outcome are events, and the work item is
 * acknowledged only after the outcome event is stored. The waits (timeout, backoff) are this
 * module's own: they stop for a cancel at once and hold delays longer than Node's timers do.
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
  const keepAliveMs = intervalMs(Math.max(1_000, ackWaitMs / 3));
  const executorId = options.executorId ?? `${hostname()}:${process.pid}:${options.queue}`;
  const steps = options.steps ?? createSteps({ shellEnabled: options.shellEnabled ?? false, env: options.env, httpAllow: options.httpAllow, ...(options.killGraceMs !== undefined && { killGraceMs: options.killGraceMs }) });
  await ensureConsumer(ctx.jsm, ctx.topo.workStream, {
    durable_name: consumer,
    filter_subject: options.queue === '*' ? allWorkFilter(layout) : workSubject(layout, options.queue),
    max_deliver: maxDeliver,
    ack_wait: ackWaitMs * 1_000_000,
    max_ack_pending: 10_000,
  });
  const log = new EventLog(ctx.js, ctx.topo);
  const secretStore = options.readSecret === undefined ? await SecretStore.open(ctx.js, ctx.topo) : undefined;
  const readSecret = options.readSecret ?? ((name: string) => secretStore!.get(name));
  /** Secret values each running item uses (by idempotency key): whatever it records is redacted of them. */
  const secretsInUse = new Map<string, string[]>();
  // An event larger than the server's max_payload (or the stream's max_msg_size) is refused on
  // every try: what the executor records is cut to fit before it is published.
  const streamMaxBytes = (await ctx.jsm.streams.info(ctx.topo.eventsStream)).config.max_msg_size;
  const eventBudget = () => Math.min(ctx.nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD, streamMaxBytes > 0 ? streamMaxBytes : Number.POSITIVE_INFINITY) - ENVELOPE_BYTES;

  // Cancellation: running tasks of a flow are stopped when its cancel request or the passing of
  // its deadline is seen. The value says why, for the task's cancelled event.
  const running = new Map<string, Map<AbortController, TaskSpec>>();
  const cancelledFlows = new Map<string, Stop>();
  const stopFlow = (flowId: string, stop: Stop) => {
    // The first stop holds, unless a later one also stops what the first spared (cancel after fail_fast).
    const known = cancelledFlows.get(flowId);
    if (known !== undefined && strongerStop(known, stop) === known) return;
    cancelledFlows.set(flowId, stop);
    if (cancelledFlows.size > 10_000) cancelledFlows.delete(cancelledFlows.keys().next().value!);
    for (const [controller, spec] of running.get(flowId) ?? []) {
      const why = stopReason(stop, spec);
      if (why !== undefined) controller.abort(new Error(why));
    }
  };
  const cancelSubs = STOP_EVENTS.map((type) =>
    ctx.nc.subscribe(eventTypeFilter(layout, type), {
      callback: (_err, msg) => {
        const flowId = flowIdOfSubject(layout, msg.subject);
        if (flowId) stopFlow(flowId, STOPS[type]);
      },
    }),
  );

  /**
   * How the flow is stopped, if the log holds its cancel, deadline or fail_fast. The subscription
   * above misses what was stored while this process was not connected (before it started, or during
   * a reconnect), so before a task starts and before its outcome is recorded the log is asked too:
   * one direct get of the last message on each stop subject, not a read of the history.
   */
  async function storedStopOf(flowId: string): Promise<Stop | undefined> {
    const known = cancelledFlows.get(flowId);
    if (known !== undefined && !known.sparesAlways) return known;
    let found: Stop[];
    try {
      found = await Promise.all(
        STOP_EVENTS.map(async (type) => {
          const stored = await ctx.jsm.direct.getMessage(ctx.topo.eventsStream, { last_by_subj: eventSubject(layout, flowId, type) });
          return stored ? [STOPS[type] as Stop] : [];
        }),
      ).then((lists) => lists.flat());
    } catch (error) {
      throw new InfrastructureError(`could not read whether flow ${flowId} was cancelled: ${(error as Error).message}`);
    }
    const stop = found.reduce<Stop | undefined>((strongest, next) => strongerStop(strongest, next), known);
    if (stop !== undefined) stopFlow(flowId, stop);
    return stop;
  }

  /** Why the task is to be stopped, if the log says so. */
  async function storedStop(flowId: string, spec: TaskSpec): Promise<string | undefined> {
    return stopReason(await storedStopOf(flowId), spec);
  }

  /** Records an event; a failure to store it is the infrastructure's, never the step's. */
  async function emit(item: WorkItem, event: EventBody<'id' | 'version' | 'time' | 'flow_id' | 'task_id'>, msgID: string) {
    const hidden = secretsInUse.get(item.idempotency_key);
    if (hidden !== undefined && 'data' in event) event = { ...event, data: redact(event.data, hidden) } as typeof event;
    if ('data' in event && 'error' in event.data) event = { ...event, data: { ...event.data, error: fitError(event.data.error, eventBudget()) } } as typeof event;
    try {
      return await log.appendNew({ ...event, flow_id: item.flow_id, task_id: item.task_id } as EventBody<'id' | 'version' | 'time'>, `${item.idempotency_key}:${msgID}`);
    } catch (error) {
      throw new InfrastructureError(`could not record ${event.type}: ${(error as Error).message}`);
    }
  }

  /** On redelivery: what the log holds about the task's attempts (see attemptHistory). */
  async function historyOf(item: WorkItem): Promise<AttemptHistory> {
    return attemptHistory((await readFlowHistory(ctx.js, ctx.topo, item.flow_id)).map((stored) => stored.event), item.task_id);
  }

  const quarantine = new Quarantine();

  async function execute(item: WorkItem, msg: JsMsg): Promise<void> {
    // A redelivered item is a suspect only if an attempt of it started and never reported back;
    // one coming back from a durable retry or a hand-back is not.
    const prior = msg.info.deliveryCount > 1 ? await historyOf(item) : undefined;
    const leave = await quarantine.enter((prior?.crashed ?? 0) > 0, () => msg.working(), keepAliveMs);
    try {
      await executeAdmitted(item, msg, prior);
    } finally {
      leave();
    }
  }

  async function executeAdmitted(item: WorkItem, msg: JsMsg, prior: AttemptHistory | undefined): Promise<void> {
    const spec = item.spec;
    const recordCancelled = (reason: string) => emit(item, { type: 'task.cancelled', data: { reason } }, 'outcome');
    // The log may hold a stop this process never saw (it started after it).
    if (prior?.stop) stopFlow(item.flow_id, prior.stop);
    const verdict = decideAttempt(spec, prior, prior?.finished ? undefined : await storedStopOf(item.flow_id), Date.now(), { crashLimit, durableRetryAfterMs });
    switch (verdict.kind) {
      case 'drop':
        return;
      case 'cancel':
        await recordCancelled(verdict.reason);
        return;
      case 'hand_back':
        // Redelivered before its scheduled retry is due (its executor stopped while waiting in memory).
        throw new HandBack('retry not due yet', verdict.delayMs);
      case 'fail':
        if (verdict.poison) {
          await deadLetters.setAside(msg, `executor-${options.queue === '*' ? 'all' : options.queue}`, `${verdict.error.message} (delivery ${msg.info.deliveryCount})`);
          ctx.log.error({ flow_id: item.flow_id, task_id: item.task_id, crashes: prior?.crashed }, 'poison work item set aside');
        }
        await emit(item, { type: 'task.failed', attempt: verdict.attempt, data: { error: verdict.error, duration_ms: 0 } }, 'outcome');
        return;
      case 'run':
        break;
    }
    // Attempt numbers continue from the log; interrupted attempts are numbered but not spent.
    const done = verdict.after;
    const unspent = verdict.unspent;
    if (stopping) throw new HandBack('executor stopping');
    const run = steps[spec.executor];
    if (!run) {
      const error = { message: `this executor has no "${spec.executor}" step`, code: 'UNKNOWN_EXECUTOR', retryable: false };
      await emit(item, { type: 'task.failed', attempt: done + 1, data: { error, duration_ms: 0 } }, 'outcome');
      return;
    }

    const controller = new AbortController();
    const flowRunning = running.get(item.flow_id) ?? new Map<AbortController, TaskSpec>();
    flowRunning.set(controller, spec);
    running.set(item.flow_id, flowRunning);
    // Why the task is being stopped, once its flow's cancel (or deadline) is known here.
    const cancelReason = (): string | undefined =>
      stopReason(cancelledFlows.get(item.flow_id), spec) ?? (controller.signal.aborted && !(controller.signal.reason instanceof Interrupted) ? (controller.signal.reason as Error).message : undefined);
    const heartbeat = setInterval(() => msg.working(), keepAliveMs);
    const needed = secretNamesOf(spec);
    let secrets: Map<string, string> | undefined;
    let attempt = done;
    let lastError: TaskError | undefined;
    let lastDuration = 0;
    let attemptStarted = 0;
    let nextDelayMs = verdict.delayMs;
    const timeoutMs = spec.timeout_secs !== undefined ? Math.round(spec.timeout_secs * 1000) : undefined;

    // Only the step's own failures are retried here; a failure to record an event hands the whole
    // work item back to JetStream (nak), to continue from the log when it comes back. Cockatiel
    // decides whether to go again; the backoff wait happens at the start of the next attempt,
    // because cockatiel's own wait neither ends on a cancel nor holds a delay over 24.8 days.
    const retryPolicy = retry(
      handleWhen((error) => error instanceof StepError && !controller.signal.aborted && error.detail.retryable),
      { maxAttempts: (spec.retries ?? 0) - (done - unspent) },
    );

    try {
      const output = await retryPolicy.execute(async () => {
        if (nextDelayMs > 0) await sleep(nextDelayMs, controller.signal);
        const why = cancelReason();
        if (why !== undefined) throw new Error(why);
        attempt++;
        const started = (attemptStarted = Date.now());
        await emit(item, { type: 'task.started', attempt, data: { executor_id: executorId } }, `${attempt}:task.started`);
        const attemptController = new AbortController();
        const stopAttempt = () => attemptController.abort(controller.signal.reason);
        controller.signal.addEventListener('abort', stopAttempt, { once: true });
        if (controller.signal.aborted) stopAttempt();
        const timer = timeoutMs !== undefined ? setLongTimeout(() => attemptController.abort(new AttemptTimeout()), timeoutMs) : undefined;
        try {
          if (secrets === undefined) {
            secrets = await loadSecrets(needed, async (name) => {
              const onHost = spec.queue_secrets?.[name];
              if (onHost !== undefined) return readQueueSecret(name, onHost, options.env ?? process.env);
              try {
                return await readSecret(name);
              } catch (error) {
                throw new InfrastructureError(`could not read secret "${name}": ${(error as Error).message}`);
              }
            });
            if (secrets.size > 0) secretsInUse.set(item.idempotency_key, [...secrets.values()]);
          }
          const output = await run({
            spec: specForAttempt(spec, item.task_id, attempt, secrets),
            signal: attemptController.signal,
            flowId: item.flow_id,
            taskId: item.task_id,
            attempt,
            idempotencyKey: item.idempotency_key,
            upstream: spec.bindings?.tasks ?? {},
            params: spec.bindings?.params ?? {},
          });
          // A step that finished after its timeout or cancel (one that ignored SIGTERM) is not a success.
          if (attemptController.signal.aborted) throw attemptController.signal.reason;
          checkOutput(output, eventBudget());
          return output;
        } catch (error) {
          lastDuration = Date.now() - started;
          // A cancelled task gets its cancel as outcome, no failed attempt before it.
          if ((cancelReason() ?? (await storedStop(item.flow_id, spec))) !== undefined) throw error;
          lastError =
            attemptController.signal.reason instanceof AttemptTimeout
              ? { message: `attempt ${attempt} timed out after ${spec.timeout_secs}s`, code: 'TIMEOUT', retryable: true }
              : controller.signal.reason instanceof Interrupted
                ? { message: `attempt ${attempt} was stopped because its executor shut down; the task runs again and this attempt does not count`, code: 'INTERRUPTED', retryable: true }
                : toTaskError(error);
          await emit(item, { type: 'task.attempt_failed', attempt, data: { error: lastError, duration_ms: lastDuration } }, `${attempt}:task.attempt_failed`);
          const next = decideRetry(spec, lastError, attempt - unspent, controller.signal.aborted, Math.random(), { durableRetryAfterMs });
          nextDelayMs = next.kind === 'fail' ? 0 : next.delayMs;
          if (next.kind === 'retry_later') throw new DeferredRetry(nextDelayMs);
          if (next.kind === 'retry') await emit(item, { type: 'task.retry_scheduled', attempt, data: { next_attempt: attempt + 1, delay_ms: nextDelayMs } }, `${attempt}:task.retry_scheduled`);
          throw new StepError(lastError);
        } finally {
          timer?.clear();
          controller.signal.removeEventListener('abort', stopAttempt);
        }
      }, controller.signal);
      const cancelled = cancelReason() ?? (await storedStop(item.flow_id, spec));
      if (cancelled === undefined) await emit(item, { type: 'task.succeeded', attempt, data: { output, duration_ms: Date.now() - attemptStarted } }, 'outcome');
      else await recordCancelled(`${cancelled} while the task was running`);
    } catch (error) {
      const cancelled = cancelReason();
      if (cancelled !== undefined) {
        await recordCancelled(`${cancelled} ${attempt > done ? 'while the task was running' : 'before the task started'}`);
        return;
      }
      if (error instanceof DeferredRetry) {
        await emit(item, { type: 'task.retry_scheduled', attempt, data: { next_attempt: attempt + 1, delay_ms: error.delayMs } }, `${attempt}:task.retry_scheduled`);
        throw new HandBack('durable retry', error.delayMs);
      }
      if (controller.signal.reason instanceof Interrupted) throw new HandBack('executor stopping');
      if (!(error instanceof StepError)) throw error;
      const final = lastError ?? toTaskError(error);
      if (final.code === 'TIMEOUT') {
        await emit(item, { type: 'task.timed_out', attempt, data: { timeout_ms: timeoutMs ?? 0, error: final } }, 'outcome');
      } else {
        await emit(item, { type: 'task.failed', attempt, data: { error: final, duration_ms: lastDuration } }, 'outcome');
      }
    } finally {
      secretsInUse.delete(item.idempotency_key);
      clearInterval(heartbeat);
      flowRunning.delete(controller);
      if (flowRunning.size === 0) running.delete(item.flow_id);
    }
  }

  // A work item that kills its executor on every delivery never reaches a handler that could set it
  // aside. JetStream announces it once it has been delivered max_deliver times: record the task as
  // failed (cancelled if its flow's cancel is in the log), keep the item in the dead letters, and
  // remove it. One executor of the pool does this (queue group); the outcome's msgID makes a
  // repeat harmless.
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
          const item = decoded.value;
          const prior = await historyOf(item);
          if (!prior.finished) {
            const error = { message: reason, code: 'POISON', retryable: false };
            const stopped = stopReason(prior.stop, item.spec);
            await emit(
              item,
              stopped !== undefined
                ? { type: 'task.cancelled', data: { reason: `${stopped} before the task finished` } }
                : { type: 'task.failed', attempt: Math.max(1, deliveries), data: { error, duration_ms: 0 } },
              'outcome',
            );
          }
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
      const interrupt = setLongTimeout(() => {
        for (const controllers of running.values()) for (const controller of controllers.keys()) controller.abort(new Interrupted('executor stopping'));
      }, shutdownGraceMs);
      try {
        await loop.stop();
      } finally {
        interrupt.clear();
      }
    },
  };
}
