import type { TaskSpec } from '@taskstream/domain';
import { counter, gauge, histogram, SECONDS_BUCKETS } from '@taskstream/runtime';
import { AttemptTimeout, Interrupted } from './errors.js';

/** The executor's metrics (see docs/operations.md#metrics): by step executor and queue, never by flow or task id. */

const attempts = counter({
  name: 'taskstream_executor_attempts_total',
  help: 'Task attempts that ended, by step executor (shell, http, …), queue and outcome (succeeded, failed, timed_out, cancelled, interrupted).',
  labelNames: ['executor', 'queue', 'outcome'],
});

const attemptDuration = histogram({
  name: 'taskstream_executor_attempt_duration_seconds',
  help: "How long attempts' steps ran, by step executor and queue.",
  labelNames: ['executor', 'queue'],
  buckets: SECONDS_BUCKETS,
});

const runningSteps = gauge({ name: 'taskstream_executor_running_steps', help: 'Steps running now in this process.' });

export type AttemptOutcome = 'succeeded' | 'failed' | 'timed_out' | 'cancelled' | 'interrupted';

/** An attempt's step starts running; call the function returned, once, with how it ended. */
export function attemptRunning(spec: Pick<TaskSpec, 'executor' | 'queue'>): (outcome: AttemptOutcome) => void {
  const started = performance.now();
  const labels = { executor: spec.executor, queue: spec.queue };
  runningSteps.inc();
  let ended = false;
  return (outcome) => {
    if (ended) return;
    ended = true;
    runningSteps.dec();
    attempts.inc({ ...labels, outcome });
    attemptDuration.observe(labels, (performance.now() - started) / 1000);
  };
}

/** How an attempt whose step threw ended, from the attempt's signal and whether its flow was stopped. */
export function failedOutcome(signal: AbortSignal, cancelled: boolean): AttemptOutcome {
  if (signal.reason instanceof AttemptTimeout) return 'timed_out';
  if (signal.reason instanceof Interrupted) return 'interrupted';
  return cancelled ? 'cancelled' : 'failed';
}
