import { decideAttempt, mayOutliveItsFlow, type AttemptHistory, type AttemptVerdict, type WorkItem } from '@taskstream/domain';
import { HandBack, type DeadLetters, type JsMsg } from '@taskstream/nats';
import type { ServiceContext } from '@taskstream/runtime';
import { AttemptRunner, type AttemptDeps } from './attempt-runner.js';
import type { ExecutorConfig } from './config.js';
import { DeferredRetry } from './errors.js';
import { Quarantine } from './quarantine.js';
import type { Recorder } from './recorder.js';
import { StepError, toTaskError, type StepRunner } from './steps/index.js';
import type { FlowStops } from './stops.js';

export interface WorkHandlerDeps extends AttemptDeps {
  config: ExecutorConfig;
  log: ServiceContext['log'];
  recorder: Recorder;
  stops: FlowStops;
  steps: Record<string, StepRunner>;
  deadLetters: DeadLetters;
  readHistory: (item: WorkItem) => Promise<AttemptHistory>;
  /** Whether the log still holds the flow's submission (asked of the stream's leader). */
  flowKept: (flowId: string) => Promise<boolean>;
}

type Run = Extract<AttemptVerdict, { kind: 'run' }>;

/**
 * What the executor does with each work item: decides from the log whether to run it
 * (decideAttempt), runs its attempts, and records how the task ended. The consumer loop
 * acknowledges the item once `handle` returns, so only after the outcome is stored; a HandBack
 * gives it back to JetStream instead.
 */
export class WorkHandler {
  /** Once set, items that were not running yet are handed back untouched. */
  stopping = false;
  private readonly quarantine = new Quarantine();

  constructor(private readonly deps: WorkHandlerDeps) {}

  readonly handle = async (item: WorkItem, msg: JsMsg): Promise<void> => {
    // A work item left in the stream by a flow that has since ended and been removed by flow
    // retention (its executors were down for longer than that): its flow's stops are gone with it,
    // so it is dropped here, writing nothing, rather than run.
    if (mayOutliveItsFlow(Date.parse(item.dispatched_at), Date.now()) && !(await this.deps.flowKept(item.flow_id))) {
      this.deps.log.info({ flow_id: item.flow_id, task_id: item.task_id, dispatched_at: item.dispatched_at }, 'work item of a flow removed by flow retention dropped');
      return;
    }
    // A redelivered item is a suspect only if an attempt of it started and never reported back;
    // one coming back from a durable retry or a hand-back is not.
    const prior = msg.info.deliveryCount > 1 ? await this.deps.readHistory(item) : undefined;
    const leave = await this.quarantine.enter((prior?.crashed ?? 0) > 0, () => msg.working(), this.deps.config.keepAliveMs);
    try {
      await this.admitted(item, msg, prior);
    } finally {
      leave();
    }
  };

  private async admitted(item: WorkItem, msg: JsMsg, prior: AttemptHistory | undefined): Promise<void> {
    const { stops, config } = this.deps;
    // The log may hold a stop this process never saw (it started after it).
    if (prior?.stop) stops.stop(item.flow_id, prior.stop);
    const stop = prior?.finished ? undefined : await stops.knownStopOf(item.flow_id);
    const verdict = decideAttempt(item.spec, prior, stop, Date.now(), config);
    if (verdict.kind === 'run') await this.run(item, msg, verdict);
    else await this.settle(item, msg, prior, verdict);
  }

  /** A verdict that runs nothing. */
  private async settle(item: WorkItem, msg: JsMsg, prior: AttemptHistory | undefined, verdict: Exclude<AttemptVerdict, Run>): Promise<void> {
    switch (verdict.kind) {
      case 'drop':
        return;
      case 'cancel':
        return this.recordCancelled(item, verdict.reason);
      case 'hand_back':
        // Redelivered before its scheduled retry is due (its executor stopped while waiting in memory).
        throw new HandBack('retry not due yet', verdict.delayMs);
      case 'fail':
        if (verdict.poison) {
          await this.deps.deadLetters.setAside(msg, this.deps.config.source, `${verdict.error.message} (delivery ${msg.info.deliveryCount})`);
          this.deps.log.error({ flow_id: item.flow_id, task_id: item.task_id, crashes: prior?.crashed }, 'poison work item set aside');
        }
        return void (await this.deps.recorder.append(item, { type: 'task.failed', attempt: verdict.attempt, data: { error: verdict.error, duration_ms: 0 } }, 'outcome'));
    }
  }

  private async run(item: WorkItem, msg: JsMsg, verdict: Run): Promise<void> {
    const { recorder, stops } = this.deps;
    if (this.stopping) throw new HandBack('executor stopping');
    const step = this.deps.steps[item.spec.executor];
    if (!step) {
      const error = { message: `this executor has no "${item.spec.executor}" step`, code: 'UNKNOWN_EXECUTOR', retryable: false };
      return void (await recorder.append(item, { type: 'task.failed', attempt: verdict.after + 1, data: { error, duration_ms: 0 } }, 'outcome'));
    }
    const controller = new AbortController();
    const untrack = stops.track(item.flow_id, controller, item.spec);
    const runner = new AttemptRunner(this.deps, item, step, controller, verdict);
    const heartbeat = setInterval(() => msg.working(), this.deps.config.keepAliveMs);
    try {
      const output = await runner.run();
      await this.recordEnd(item, runner, output);
    } catch (error) {
      await this.recordFailure(item, runner, error);
    } finally {
      recorder.release(item);
      clearInterval(heartbeat);
      untrack();
    }
  }

  /** After an attempt succeeded: its success, unless the flow was stopped meanwhile. */
  private async recordEnd(item: WorkItem, runner: AttemptRunner, output: unknown): Promise<void> {
    const cancelled = runner.cancelReason() ?? (await this.deps.stops.knownStop(item.flow_id, item.spec));
    if (cancelled !== undefined) return this.recordCancelled(item, `${cancelled} while the task was running`);
    await this.deps.recorder.append(item, { type: 'task.succeeded', attempt: runner.attempt, data: { output, duration_ms: Date.now() - runner.attemptStarted } }, 'outcome');
  }

  /** After the attempts ended without success, or recording failed: the outcome, or the item handed back. */
  private async recordFailure(item: WorkItem, runner: AttemptRunner, error: unknown): Promise<void> {
    const { recorder } = this.deps;
    const { attempt } = runner;
    const cancelled = runner.cancelReason();
    if (cancelled !== undefined) return this.recordCancelled(item, `${cancelled} ${runner.stepStarted ? 'while the task was running' : 'before the task started'}`);
    if (error instanceof DeferredRetry) {
      await recorder.append(item, { type: 'task.retry_scheduled', attempt, data: { next_attempt: attempt + 1, delay_ms: error.delayMs } }, `${attempt}:task.retry_scheduled`);
      throw new HandBack('durable retry', error.delayMs);
    }
    if (runner.interrupted) throw new HandBack('executor stopping');
    if (!(error instanceof StepError)) throw error;
    const final = runner.lastError ?? toTaskError(error);
    if (final.code === 'TIMEOUT') {
      await recorder.append(item, { type: 'task.timed_out', attempt, data: { timeout_ms: runner.timeoutMs ?? 0, error: final } }, 'outcome');
    } else {
      await recorder.append(item, { type: 'task.failed', attempt, data: { error: final, duration_ms: runner.lastDuration } }, 'outcome');
    }
  }

  private async recordCancelled(item: WorkItem, reason: string): Promise<void> {
    await this.deps.recorder.append(item, { type: 'task.cancelled', data: { reason } }, 'outcome');
  }
}
