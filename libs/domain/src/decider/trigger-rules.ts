import { DEFAULT_TRIGGER_RULE, type TriggerRule } from '../flow/definition.js';
import { FAILED_TASK_STATUSES, TERMINAL_TASK_STATUSES, type TaskStatus } from './state.js';

/** What a pending task's trigger rule makes of its dependencies' statuses so far. */
export type Verdict = 'wait' | 'run' | 'skip' | 'upstream_failed';

/**
 * Airflow's rules, decided as soon as no later status of a dependency could change the verdict (so
 * the outcome never depends on the order dependencies finish in): "failed" counts failed,
 * timed out, upstream_failed and cancelled dependencies; "done" is any terminal status. A task whose
 * rule can no longer hold is `upstream_failed` when a failed dependency is why, else `skipped`.
 * `always` waits for every dependency to finish (unlike Airflow's, which ignores them). A task
 * without dependencies runs whatever its rule.
 */
export function triggerVerdict(rule: TriggerRule | undefined, statuses: readonly TaskStatus[]): Verdict {
  // A rule is about dependencies: a task without any runs.
  if (statuses.length === 0) return 'run';
  let succeeded = 0;
  let skipped = 0;
  let failed = 0;
  let done = 0;
  for (const status of statuses) {
    if (!TERMINAL_TASK_STATUSES.has(status)) continue;
    done++;
    if (status === 'succeeded') succeeded++;
    else if (status === 'skipped') skipped++;
    else if (FAILED_TASK_STATUSES.has(status)) failed++;
  }
  const all = statuses.length;
  const allDone = done === all;
  switch (rule ?? DEFAULT_TRIGGER_RULE) {
    case 'none_failed':
      if (failed > 0) return 'upstream_failed';
      return allDone ? 'run' : 'wait';
    case 'all_success':
      // A skip waits for the rest: a later failure makes the task upstream_failed, whatever the order.
      if (failed > 0) return 'upstream_failed';
      if (!allDone) return 'wait';
      return skipped > 0 ? 'skip' : 'run';
    case 'all_done':
    case 'always':
      return allDone ? 'run' : 'wait';
    case 'one_success':
      if (succeeded > 0) return 'run';
      if (!allDone) return 'wait';
      return failed > 0 ? 'upstream_failed' : 'skip';
    case 'one_failed':
      if (failed > 0) return 'run';
      return allDone ? 'skip' : 'wait';
    case 'all_failed':
      if (succeeded > 0 || skipped > 0) return 'skip';
      return allDone ? 'run' : 'wait';
    case 'none_skipped':
      if (skipped > 0) return 'skip';
      return allDone ? 'run' : 'wait';
  }
}
