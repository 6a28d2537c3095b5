import type { FlowView, TaskstreamClient } from '@taskstream/client';
import { isFlowEnd } from '@taskstream/client';
import { bounded } from './format.js';

/** Tasks a status answer lists; the counts cover the rest. */
export const MAX_STATUS_TASKS = 200;
/** Longest wait for a change a status call may ask for. */
export const MAX_WAIT_SECS = 60;

const FINISHED = new Set(['succeeded', 'failed', 'cancelled']);

/** What an agent needs of a view: the flow, its counts, and each task's status and error, bounded. */
export function statusOf(view: FlowView) {
  const tasks = view.tasks.slice(0, MAX_STATUS_TASKS).map((t) => ({
    id: t.id,
    executor: t.executor,
    status: t.status,
    ...(t.attempts_total > 1 && { attempts: t.attempts_total }),
    ...(t.duration_ms !== undefined && { duration_ms: t.duration_ms }),
    ...(t.error && { error: `${t.error.code}: ${t.error.message}` }),
    ...(t.reason && { reason: t.reason }),
    ...(t.status === 'waiting' && t.output !== undefined && { waiting_for: t.output }),
  }));
  return {
    flow_id: view.flow_id,
    ...(view.name && { name: view.name }),
    status: view.status,
    finished: FINISHED.has(view.status),
    queue: view.queue,
    counts: Object.fromEntries(Object.entries(view.counts).filter(([, n]) => n > 0)),
    total: view.total,
    submitted_at: view.submitted_at,
    ...(view.finished_at && { finished_at: view.finished_at }),
    ...(view.duration_ms !== undefined && { duration_ms: view.duration_ms }),
    ...(view.error && { error: view.error }),
    last_seq: view.last_seq,
    tasks,
    ...(view.tasks.length > tasks.length && { tasks_not_shown: view.tasks.length - tasks.length }),
  };
}

/**
 * The view, after waiting up to `waitSecs` for the flow to change (an event after the view's last
 * sequence) when it has not finished. `changed` says whether something happened.
 */
export async function viewAfterChange(client: TaskstreamClient, flowId: string, waitSecs: number): Promise<{ view: FlowView; changed: boolean }> {
  const view = await client.get(flowId);
  if (waitSecs <= 0 || FINISHED.has(view.status)) return { view, changed: false };
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), Math.min(waitSecs, MAX_WAIT_SECS) * 1000);
  let ended = false;
  let changed = false;
  try {
    for await (const item of client.events(flowId, { after: view.last_seq, signal: controller.signal })) {
      changed = true;
      ended = isFlowEnd(item.event);
      break;
    }
  } catch {
    // Timed out with no change.
  } finally {
    clearTimeout(timer);
  }
  if (!changed) return { view, changed: false };
  // The projector may fold the change a moment after the feed shows it.
  return { view: ended ? await client.wait(flowId, { timeoutMs: 5_000 }) : await client.get(flowId), changed: true };
}

/** Characters of a task's output an answer holds by default, and at most. */
export const OUTPUT_CHARS = { default: 4_000, max: 50_000 };

/**
 * A task's output, bounded: shell output's stdout and stderr each cut to `maxChars` (their tail by
 * default), other outputs as JSON cut the same way. The view's output is used unless it was
 * summarised there (over 4 KiB), in which case the task's `task.succeeded` event has it whole.
 */
export async function taskOutput(client: TaskstreamClient, flowId: string, taskId: string, maxChars: number, tail: boolean) {
  const view = await client.get(flowId);
  const task = view.tasks.find((t) => t.id === taskId);
  if (!task) return { found: false as const, tasks: view.tasks.slice(0, 50).map((t) => t.id) };
  let output = task.output;
  if ((output as { truncated?: boolean } | undefined)?.truncated === true) {
    const events = await client.history(flowId);
    const succeeded = events.findLast((e) => e.event.type === 'task.succeeded' && e.event.task_id === taskId);
    if (succeeded?.event.type === 'task.succeeded') output = (succeeded.event.data as { output?: unknown }).output;
  }
  let cut = false;
  const shown = (() => {
    if (output && typeof output === 'object' && ('stdout' in output || 'stderr' in output)) {
      const shell = { ...(output as Record<string, unknown>) };
      for (const stream of ['stdout', 'stderr'] as const) {
        if (typeof shell[stream] !== 'string') continue;
        const b = bounded(shell[stream] as string, maxChars, tail);
        shell[stream] = b.text;
        cut ||= b.cut;
      }
      return shell;
    }
    if (output === undefined) return null;
    const text = JSON.stringify(output);
    if (text.length <= maxChars) return output;
    const b = bounded(text, maxChars, tail);
    cut = true;
    return b.text;
  })();
  return {
    found: true as const,
    result: {
      flow_id: flowId,
      task_id: taskId,
      status: task.status,
      output: shown,
      ...(cut && { cut: `cut to ${maxChars} characters (${tail ? 'the tail' : 'the head'}); ask with a larger max_chars (at most ${OUTPUT_CHARS.max}) or tail=${!tail}` }),
      ...(task.error && { error: task.error }),
    },
  };
}
