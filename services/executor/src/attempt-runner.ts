import { decideRetry, dispatchOf, secretNamesOf, type TaskError, type TaskSpec, type WorkItem } from '@taskstream/domain';
import { activeTraceContext, inChildSpan } from '@taskstream/nats';
import { handleWhen, retry } from 'cockatiel';
import { ArtifactsUnavailable, AttemptFiles, type Artifacts } from './artifacts.js';
import type { ExecutorConfig } from './config.js';
import { AttemptTimeout, DeferredRetry, InfrastructureError, Interrupted } from './errors.js';
import { attemptRunning, failedOutcome } from './metrics.js';
import { checkOutput } from './output.js';
import type { Recorder } from './recorder.js';
import { loadSecrets, specForAttempt, taskSecretReader, type SecretReader } from './run-time.js';
import { StepError, toTaskError, type StepRunner } from './steps/index.js';
import type { FlowStops } from './stops.js';
import { setLongTimeout, sleep } from './timers.js';

export interface AttemptDeps {
  config: Pick<ExecutorConfig, 'executorId' | 'durableRetryAfterMs' | 'env'>;
  recorder: Pick<Recorder, 'append' | 'hide' | 'budget'>;
  stops: Pick<FlowStops, 'reasonFor' | 'storedStop' | 'knownStop'>;
  /** Where secrets the task's queue does not name are read. */
  readSecret: SecretReader;
  /** Where shell steps' artifacts are stored and fetched; without it a shell step gets no artifacts directory. */
  artifacts?: Artifacts;
}

/** Where a work item's attempts resume (decideAttempt's verdict to run). */
export interface AttemptStart {
  /** Attempts already numbered in the log. */
  after: number;
  /** Of those, the ones interrupted by a shutdown, which do not count. */
  unspent: number;
  /** The wait before the first attempt here (a retry's backoff left over). */
  delayMs: number;
}

/**
 * The attempts of one work item, each one an event, under cockatiel's retry policy (the task's
 * retries). `controller` stops the whole task: aborted by its flow's stop or by the shutdown. What
 * the attempts leave (their number, the last error and duration) is read by whoever records the
 * task's outcome.
 */
export class AttemptRunner {
  /** The number of the last attempt started, continuing the log's. */
  attempt: number;
  lastError: TaskError | undefined;
  lastDuration = 0;
  /** When the last attempt started (epoch ms). */
  attemptStarted = 0;
  readonly timeoutMs: number | undefined;
  private nextDelayMs: number;
  private secrets: Map<string, string> | undefined;
  private readonly spec: TaskSpec;

  constructor(
    private readonly deps: AttemptDeps,
    private readonly item: WorkItem,
    private readonly step: StepRunner,
    private readonly controller: AbortController,
    private readonly start: AttemptStart,
  ) {
    this.spec = item.spec;
    this.attempt = start.after;
    this.nextDelayMs = start.delayMs;
    this.timeoutMs = this.spec.timeout_secs !== undefined ? Math.round(this.spec.timeout_secs * 1000) : undefined;
  }

  /** Whether a step ran here (else the task was stopped before it ran). */
  stepStarted = false;

  /** Whether the executor's shutdown stopped the task: then nothing about it counts. */
  get interrupted(): boolean {
    return this.controller.signal.reason instanceof Interrupted;
  }

  /** Why the task is being stopped, once its flow's cancel (or deadline) is known here. */
  cancelReason(): string | undefined {
    const { signal } = this.controller;
    return this.deps.stops.reasonFor(this.item.flow_id, this.spec) ?? (signal.aborted && !this.interrupted ? (signal.reason as Error).message : undefined);
  }

  /**
   * Runs attempts until one succeeds, and gives its output. Only the step's own failures are
   * retried here; a failure to record an event hands the whole work item back to JetStream (nak),
   * to continue from the log when it comes back. Cockatiel decides whether to go again; the
   * backoff wait happens at the start of the next attempt, because cockatiel's own wait neither
   * ends on a cancel nor holds a delay over 24.8 days.
   */
  run(): Promise<unknown> {
    const { signal } = this.controller;
    const policy = retry(handleWhen((error) => error instanceof StepError && !signal.aborted && error.detail.retryable), {
      maxAttempts: (this.spec.retries ?? 0) - (this.start.after - this.start.unspent),
    });
    return policy.execute(() => this.runAttempt(), signal);
  }

  private async runAttempt(): Promise<unknown> {
    if (this.nextDelayMs > 0) await sleep(this.nextDelayMs, this.controller.signal);
    const why = this.cancelReason();
    if (why !== undefined) throw new Error(why);
    const attempt = ++this.attempt;
    const started = (this.attemptStarted = Date.now());
    // The first start records the dispatch (its work item's record of it); later ones would repeat it.
    const start = await this.deps.recorder.append(this.item, { type: 'task.started', attempt, data: { executor_id: this.deps.config.executorId, ...(attempt === 1 && { dispatch: dispatchOf(this.item) }) } }, `${attempt}:task.started`);
    // The log already has this attempt: what this item was told of its history is behind the log.
    // Never run a step under a number already used; the item comes back and reads the log again.
    if (start.duplicate) throw new InfrastructureError(`attempt ${attempt} of task "${this.item.task_id}" is already in the log: the history read for this work item was behind; handing it back`);
    // Asked of the log once the start is stored: a stop stored before the start means the step
    // never runs; one stored after it reaches this executor through its watch and stops the step.
    const stopped = this.cancelReason() ?? (await this.deps.stops.storedStop(this.item.flow_id, this.spec));
    if (stopped !== undefined) throw new Error(stopped);
    this.stepStarted = true;
    const attemptController = new AbortController();
    const stopAttempt = () => attemptController.abort(this.controller.signal.reason);
    this.controller.signal.addEventListener('abort', stopAttempt, { once: true });
    if (this.controller.signal.aborted) stopAttempt();
    const timer = this.timeoutMs !== undefined ? setLongTimeout(() => attemptController.abort(new AttemptTimeout()), this.timeoutMs) : undefined;
    const ended = attemptRunning(this.spec);
    try {
      const output = await inChildSpan(`attempt ${attempt}`, activeTraceContext(), { attributes: { 'taskstream.attempt': attempt } }, () => this.runStep(attemptController.signal));
      ended('succeeded');
      return output;
    } catch (error) {
      ended(failedOutcome(attemptController.signal, this.cancelReason() !== undefined));
      // The artifacts store did not answer: no attempt is spent on it, the item goes back (nak).
      if (error instanceof ArtifactsUnavailable && !attemptController.signal.aborted) throw error;
      return await this.failed(error, started, attemptController.signal);
    } finally {
      timer?.clear();
      this.controller.signal.removeEventListener('abort', stopAttempt);
    }
  }

  /**
   * A shell step runs with directories of its own (see AttemptFiles): the artifacts its references
   * name are fetched first, and the files it leaves are stored and recorded once it succeeded,
   * before its success is. The directories are removed whatever happens.
   */
  private async runStep(signal: AbortSignal): Promise<unknown> {
    const { item, spec, attempt, step } = this;
    const secrets = await this.loadSecrets();
    const files = spec.executor === 'shell' && this.deps.artifacts !== undefined ? await AttemptFiles.create(this.deps.artifacts) : undefined;
    try {
      await files?.fetchInputs(spec, signal);
      const output = await step({
        spec: specForAttempt(spec, item.task_id, attempt, secrets, files?.pathOf),
        signal,
        flowId: item.flow_id,
        taskId: item.task_id,
        attempt,
        idempotencyKey: item.idempotency_key,
        upstream: Object.fromEntries(Object.entries(spec.bindings?.tasks ?? {}).map(([id, bound]) => [id, { output: bound.output }])),
        params: spec.bindings?.params ?? {},
        ...(files !== undefined && { artifactsDir: files.out }),
      });
      // A step that finished after its timeout or cancel (one that ignored SIGTERM) is not a success.
      if (signal.aborted) throw signal.reason;
      checkOutput(output, this.deps.recorder.budget());
      if (files !== undefined) await files.store(item, attempt, await files.collect([...secrets.values()]), this.deps.recorder);
      return output;
    } finally {
      await files?.remove().catch(() => undefined);
    }
  }

  /** Read once per work item, so that every attempt, and everything the item records, hides the same values. */
  private async loadSecrets(): Promise<Map<string, string>> {
    if (this.secrets === undefined) {
      this.secrets = await loadSecrets(secretNamesOf(this.spec), taskSecretReader(this.spec, this.deps.config.env, this.deps.readSecret));
      if (this.secrets.size > 0) this.deps.recorder.hide(this.item, [...this.secrets.values()]);
    }
    return this.secrets;
  }

  /** Records the failed attempt and what follows it; always throws, a StepError when cockatiel may go again. */
  private async failed(error: unknown, started: number, signal: AbortSignal): Promise<never> {
    const { item, spec, attempt } = this;
    this.lastDuration = Date.now() - started;
    // A cancelled task gets its cancel as outcome, no failed attempt before it.
    if ((this.cancelReason() ?? (await this.deps.stops.knownStop(item.flow_id, spec))) !== undefined) throw error;
    const lastError = (this.lastError = this.attemptError(error, signal));
    await this.deps.recorder.append(item, { type: 'task.attempt_failed', attempt, data: { error: lastError, duration_ms: this.lastDuration } }, `${attempt}:task.attempt_failed`);
    const next = decideRetry(spec, lastError, attempt - this.start.unspent, this.controller.signal.aborted, Math.random(), this.deps.config);
    this.nextDelayMs = next.kind === 'fail' ? 0 : next.delayMs;
    if (next.kind === 'retry_later') throw new DeferredRetry(this.nextDelayMs);
    if (next.kind === 'retry') {
      await this.deps.recorder.append(item, { type: 'task.retry_scheduled', attempt, data: { next_attempt: attempt + 1, delay_ms: this.nextDelayMs } }, `${attempt}:task.retry_scheduled`);
    }
    throw new StepError(lastError);
  }

  private attemptError(error: unknown, signal: AbortSignal): TaskError {
    if (signal.reason instanceof AttemptTimeout) return { message: `attempt ${this.attempt} timed out after ${this.spec.timeout_secs}s`, code: 'TIMEOUT', retryable: true };
    if (this.interrupted) {
      return { message: `attempt ${this.attempt} was stopped because its executor shut down; the task runs again and this attempt does not count`, code: 'INTERRUPTED', retryable: true };
    }
    return toTaskError(error);
  }
}
