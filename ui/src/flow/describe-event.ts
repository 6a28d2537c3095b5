import type { StoredEvent } from '@taskstream/client';
import { formatDuration } from '../common/time.js';

const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
const list = (ids: readonly string[], max = 5) => (ids.length <= max ? ids.join(', ') : `${ids.slice(0, max).join(', ')} and ${ids.length - max} more`);

const THROTTLE_WORDS: Record<string, string> = {
  rate: 'its rate limit',
  concurrency: 'its concurrency limit',
  key_concurrency: 'its per-key concurrency limit',
};

/** An event in words, for the time-travel cursor and screen readers: what happened, to which task, and why. */
export function describeEvent({ seq, event }: StoredEvent): string {
  const task = 'task_id' in event ? `Task ${event.task_id}` : '';
  const attempt = 'attempt' in event ? ` (attempt ${event.attempt})` : '';
  const said = ((): string => {
    switch (event.type) {
      case 'flow.submitted': {
        const tasks = event.data.definition?.tasks.length ?? event.data.definition_ref?.tasks;
        return `Flow submitted${tasks === undefined ? '' : ` with ${count(tasks, 'task')}`}${event.data.lineage ? ` as a ${event.data.lineage.kind} of ${event.data.lineage.parent_flow_id}` : ''}`;
      }
      case 'flow.started':
        return 'Flow started';
      case 'flow.derived':
        return `A ${event.data.kind} of this flow was created: ${event.data.child_flow_id}`;
      case 'flow.succeeded':
        return `Flow succeeded: ${event.data.succeeded} of ${count(event.data.total, 'task')} succeeded`;
      case 'flow.failed':
        return `Flow failed: ${event.data.reason}`;
      case 'flow.cancel_requested':
        return `Cancel requested${event.data.reason ? `: ${event.data.reason}` : ''}${event.data.requested_by ? ` by ${event.data.requested_by}` : ''}`;
      case 'flow.cancelled':
        return `Flow cancelled: ${event.data.reason}`;
      case 'flow.deadline_passed':
        return `The flow's timeout of ${event.data.timeout_secs} s passed`;
      case 'flow.fail_fast':
        return `Task ${event.data.task_id} failed in a fail-fast flow: the rest is cancelled`;
      case 'flow.tasks_added':
        return `${event.data.kind === 'map' ? 'Map' : 'Spawn'} task ${event.data.by_task} added ${count(event.data.tasks.length, 'task')}: ${list(event.data.tasks.map((t) => t.id))}`;
      case 'task.ready':
        return `${task} is ready to run in queue ${event.data.queue}`;
      case 'task.throttled':
        return `${task} is held by queue ${event.data.queue}: ${THROTTLE_WORDS[event.data.reason] ?? event.data.reason}`;
      case 'task.dispatched':
        return `${task} was dispatched to queue ${event.data.queue}`;
      case 'task.started':
        return `${task} started${attempt} on ${event.data.executor_id}`;
      case 'task.attempt_failed':
        return `${task} failed${attempt} after ${formatDuration(event.data.duration_ms)}: ${event.data.error.message}`;
      case 'task.retry_scheduled':
        return `${task} will try again (attempt ${event.data.next_attempt}) in ${formatDuration(event.data.delay_ms)}`;
      case 'task.waiting': {
        const d = event.data;
        const what = d.output ? 'an approval' : d.signal ? `the signal "${d.signal.name}"` : d.child ? 'its child flow' : d.map ? count(d.map.instances, 'map instance') : 'something';
        return `${task} is waiting for ${what}`;
      }
      case 'task.artifact_stored':
        return `${task} stored the file ${event.data.name} (${event.data.bytes} bytes)`;
      case 'task.succeeded':
        return `${task} succeeded${attempt} in ${formatDuration(event.data.duration_ms)}${event.data.ack?.approved_by ? `, approved by ${event.data.ack.approved_by}` : ''}`;
      case 'task.failed':
        return `${task} failed${attempt}: ${event.data.error.message}`;
      case 'task.timed_out':
        return `${task} timed out${attempt} after ${formatDuration(event.data.timeout_ms)}`;
      case 'task.skipped':
        return `${task} was skipped: ${event.data.reason}`;
      case 'task.upstream_failed':
        return `${task} cannot run: ${list(event.data.upstream)} did not succeed`;
      case 'task.cancelled':
        return `${task} was cancelled: ${event.data.reason}`;
      case 'flow.webhook_attempted':
      case 'flow.webhook_delivered':
      case 'flow.webhook_abandoned':
        return `Completion webhook: ${event.type.slice('flow.webhook_'.length)}`;
      default: {
        // Every type is described above; one added to the catalogue fails to compile here until it is.
        const unknown: never = event;
        return (unknown as { type: string }).type;
      }
    }
  })();
  return `#${seq} ${said}`;
}
