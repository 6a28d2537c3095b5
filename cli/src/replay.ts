import { evolve, type FlowEvent, type FlowState } from '@taskstream/domain';

const EMITTER: Partial<Record<FlowEvent['type'], string>> = {
  'flow.submitted': 'gateway',
  'flow.cancel_requested': 'gateway',
  'flow.derived': 'gateway',
  'task.throttled': 'dispatcher',
  'task.dispatched': 'dispatcher',
  'task.started': 'executor',
  'task.attempt_failed': 'executor',
  'task.retry_scheduled': 'executor',
  'task.succeeded': 'executor',
  'task.failed': 'executor',
  'task.timed_out': 'executor',
  'flow.webhook_attempted': 'executor',
  'flow.webhook_delivered': 'executor',
  'flow.webhook_abandoned': 'executor',
};

/** Who records an event of this type (task.cancelled: the executor if it stopped a running task). */
export function emitterOf(event: FlowEvent): string {
  // An ack's outcome is recorded by the gateway, which names who acked it.
  if ((event.type === 'task.succeeded' || event.type === 'task.failed') && event.data.ack !== undefined) return 'gateway';
  if (event.type === 'task.timed_out' && event.data.error.code === 'APPROVAL_TIMEOUT') return 'planner';
  if (event.type === 'task.cancelled') return event.data.reason.includes('while the task was running') ? 'executor' : 'planner';
  return EMITTER[event.type] ?? 'planner';
}

function detail(event: FlowEvent): string {
  switch (event.type) {
    case 'flow.submitted':
      return `${event.data.definition?.tasks.length ?? event.data.definition_ref?.tasks} tasks${event.data.lineage ? `, ${event.data.lineage.kind} of ${event.data.lineage.parent_flow_id} reusing ${Object.keys(event.data.lineage.reused).length}` : ''}`;
    case 'task.waiting': {
      const { output, signal, child, map, timeout_secs } = event.data;
      if (map !== undefined) return `waiting for its ${map.instances} map instance${map.instances === 1 ? '' : 's'}, ${map.concurrency} at a time`;
      const what = signal !== undefined ? `awaiting signal ${signal.name}${signal.match !== undefined ? ` where ${signal.match.split('\n')[0]}` : ''}` : child !== undefined ? `awaiting child flow ${child.flow_id}` : `awaiting approval: ${(output?.message ?? '').split('\n')[0]}`;
      return `${what}${timeout_secs !== undefined ? ` (times out after ${timeout_secs}s)` : ''}`;
    }
    case 'task.started':
      return `attempt ${event.attempt} on ${event.data.executor_id}`;
    case 'task.attempt_failed':
      return `attempt ${event.attempt}: ${event.data.error.message.split('\n')[0]}`;
    case 'task.failed':
      if (event.data.ack !== undefined) return `rejected${acker(event.data.ack)}: ${event.data.error.message.split('\n')[0]}`;
      return `attempt ${event.attempt}: ${event.data.error.message.split('\n')[0]}`;
    case 'task.timed_out':
      return `attempt ${event.attempt}: ${event.data.error.message}`;
    case 'task.retry_scheduled':
      return `attempt ${event.data.next_attempt} in ${(event.data.delay_ms / 1000).toFixed(2)}s`;
    case 'task.succeeded':
      if (event.data.ack !== undefined) return `approved${acker(event.data.ack)} after ${(event.data.duration_ms / 1000).toFixed(2)}s of waiting`;
      return `attempt ${event.attempt} in ${(event.data.duration_ms / 1000).toFixed(2)}s`;
    case 'task.skipped':
      return event.data.condition !== undefined ? `condition false: ${event.data.condition}` : event.data.reason;
    case 'task.upstream_failed':
    case 'task.cancelled':
    case 'flow.fail_fast':
      return event.data.reason;
    case 'task.throttled':
      return `held by ${event.data.reason} on queue ${event.data.queue}`;
    case 'flow.failed':
    case 'flow.cancelled':
      return event.data.reason;
    case 'flow.tasks_added':
      return `${event.data.tasks.length} task${event.data.tasks.length === 1 ? '' : 's'} added by ${event.data.kind} task ${event.data.by_task}${event.data.part > 0 ? ` (part ${event.data.part + 1})` : ''}`;
    case 'flow.derived':
      return `${event.data.kind} ${event.data.child_flow_id} from seq ${event.data.at_seq}`;
    case 'flow.webhook_attempted':
      return `${event.data.webhook} attempt ${event.data.attempt} to ${event.data.url}: ${event.data.status ?? event.data.failure ?? ''}${event.data.signed ? '' : ' (unsigned)'}`;
    case 'flow.webhook_delivered':
      return `${event.data.webhook} delivered to ${event.data.url} after ${event.data.attempts} attempt${event.data.attempts === 1 ? '' : 's'}`;
    case 'flow.webhook_abandoned':
      return `${event.data.webhook} to ${event.data.url} abandoned (${event.data.code}): ${event.data.reason}`;
    default:
      return '';
  }
}

/** " by alice (key:abc)": who acked, as far as the ack says. */
function acker(ack: { approved_by?: string; requested_by?: string }): string {
  const who = [ack.approved_by, ack.requested_by !== undefined ? `(${ack.requested_by})` : undefined].filter(Boolean).join(' ');
  return who === '' ? '' : ` by ${who}`;
}

/** The replay timeline: relative time, sequence, emitter, event and what happened; optionally the state after each step. */
export function replayLines(events: Array<{ seq: number; event: FlowEvent }>, step = false): string[] {
  if (events.length === 0) return [];
  const start = Date.parse(events[0]!.event.time);
  let state: FlowState | null = null;
  const lines: string[] = [];
  for (const { seq, event } of events) {
    const offset = `+${((Date.parse(event.time) - start) / 1000).toFixed(3)}s`.padStart(10);
    const subject = 'task_id' in event ? `[${event.task_id}]` : '';
    const what = [subject, detail(event)].filter(Boolean).join(' ');
    lines.push(`${offset}  #${String(seq).padEnd(6)} ${emitterOf(event).padEnd(10)} ${event.type.padEnd(21)} ${what}`.trimEnd());
    if (step) {
      state = evolve(state, event, seq);
      if (state) {
        const counts = new Map<string, number>();
        for (const id of state.order) counts.set(state.tasks[id]!.status, (counts.get(state.tasks[id]!.status) ?? 0) + 1);
        lines.push(`            flow ${state.status}; ${[...counts].map(([s, n]) => `${n} ${s}`).join(', ')}`);
      }
    }
  }
  return lines;
}
