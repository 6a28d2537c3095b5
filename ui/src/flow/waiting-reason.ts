import type { FlowView, QueueView, StoredEvent } from '@taskstream/client';
import type { TaskView } from '@taskstream/domain';

/**
 * Why a task that has not ended is not running, in words: held by its queue's limits (the
 * dispatcher's `waiting_reason`, with the queue's numbers when they are known), waiting for its
 * dependencies, for an approval, a signal, a child flow, or an executor.
 */
export function waitingReason(task: TaskView, view: FlowView, events: readonly StoredEvent[], queue: QueueView | undefined): string | undefined {
  const q = task.queue;
  switch (task.status) {
    case 'pending': {
      const open = task.depends_on.filter((id) => {
        const dependency = view.tasks.find((t) => t.id === id);
        return dependency !== undefined && !['succeeded', 'skipped', 'failed', 'timed_out', 'upstream_failed', 'cancelled'].includes(dependency.status);
      });
      return open.length > 0 ? `waiting for ${open.join(', ')} to finish` : 'waiting for the planner';
    }
    case 'ready':
      if (task.waiting_reason === 'rate') {
        const rate = queue?.policy.rate_limit;
        return `rate limit of queue ${q}${rate ? ` (${rate.per_second}/s${rate.max_burst !== undefined ? `, burst ${rate.max_burst}` : ''})` : ''}`;
      }
      if (task.waiting_reason === 'concurrency') {
        const limit = queue?.policy.concurrency;
        return limit !== undefined ? `${queue!.running}/${limit} running in queue ${q}` : `concurrency limit of queue ${q}`;
      }
      if (task.waiting_reason === 'key_concurrency') {
        const limit = queue?.policy.per_key_concurrency;
        return `per-key concurrency limit of queue ${q}${limit !== undefined ? ` (${limit} at once per key)` : ''}`;
      }
      return `ready, waiting to be dispatched in queue ${q}`;
    case 'dispatched':
      return `dispatched, waiting for an executor of queue ${q}`;
    case 'waiting': {
      const waiting = [...events].reverse().find((e) => e.event.type === 'task.waiting' && e.event.task_id === task.id)?.event;
      if (waiting?.type !== 'task.waiting') return 'waiting';
      const d = waiting.data;
      if (d.output) return 'waiting for an approval';
      if (d.signal) return `waiting for the signal "${d.signal.name}"${d.signal.match ? ` matching ${d.signal.match}` : ''}`;
      if (d.child) return `waiting for its child flow${d.child.flow_id ? ` ${d.child.flow_id}` : ''}`;
      if (d.map) return `waiting for its ${d.map.instances} map instances (${d.map.concurrency} at once)`;
      return 'waiting';
    }
    default:
      return undefined;
  }
}

/** The signal a waiting wait task waits for, if it does. */
export function awaitedSignal(task: TaskView, events: readonly StoredEvent[]): string | undefined {
  if (task.status !== 'waiting') return undefined;
  const waiting = [...events].reverse().find((e) => e.event.type === 'task.waiting' && e.event.task_id === task.id)?.event;
  return waiting?.type === 'task.waiting' ? waiting.data.signal?.name : undefined;
}

/** The task's input and config as the planner resolved them when it became ready (task.ready), or as written when it has not. */
export function resolvedInput(task: TaskView, events: readonly StoredEvent[]): { resolved: boolean; input: unknown; config: unknown } | undefined {
  for (let i = events.length - 1; i >= 0; i--) {
    const { event } = events[i]!;
    if (event.type === 'task.ready' && event.task_id === task.id) return { resolved: true, input: event.data.spec.input, config: event.data.spec.config };
  }
  for (const { event } of events) {
    const specs = event.type === 'flow.submitted' ? event.data.definition?.tasks : event.type === 'flow.tasks_added' ? event.data.tasks : undefined;
    const spec = specs?.find((t) => t.id === task.id);
    if (spec) return { resolved: false, input: spec.input, config: spec.config };
  }
  return undefined;
}
