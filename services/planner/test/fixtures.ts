import { EVENT_VERSION, evolve, validateFlow, type EventDraft, type FlowDefinition, type FlowEvent, type FlowState } from '@taskstream/domain';
import type { FlowHistory } from '../src/flow-cache.js';

/** An event before the log stamps it. */
type Body = Omit<FlowEvent, 'id' | 'version' | 'time'>;

export const FLOW = '01JAAAAAAAAAAAAAAAAAAAAAAA';

export function definition(tasks: Array<{ id: string; depends_on?: string[] }>, flow: { timeout_secs?: number } = {}): FlowDefinition {
  const result = validateFlow({ ...flow, tasks: tasks.map((t) => ({ executor: 'noop', ...t })) });
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  return result.flow;
}

let counter = 0;
/** Test events get increasing ULID-shaped ids and times, one second apart. */
export function stamp(event: Body): FlowEvent {
  counter++;
  const id = `01J${counter.toString(32).toUpperCase().replace(/[ILOU]/g, 'X').padStart(23, '0')}`;
  return { ...event, id, version: EVENT_VERSION, time: new Date(Date.UTC(2026, 0, 1) + counter * 1000).toISOString() } as FlowEvent;
}

export function fromDraft(draft: EventDraft): FlowEvent {
  const { key: _key, ...event } = draft;
  return stamp(event as Body);
}

export const ev = {
  submitted: (def: FlowDefinition, flow = FLOW) => stamp({ type: 'flow.submitted', flow_id: flow, data: { definition: def } } as Body),
  started: (flow = FLOW) => stamp({ type: 'flow.started', flow_id: flow, data: {} } as Body),
  succeeded: (task: string, flow = FLOW) =>
    stamp({ type: 'task.succeeded', flow_id: flow, task_id: task, attempt: 1, data: { output: { ok: task }, duration_ms: 10 } } as Body),
  cancelRequested: (flow = FLOW) => stamp({ type: 'flow.cancel_requested', flow_id: flow, data: { reason: 'user asked' } } as Body),
  deadlinePassed: (flow = FLOW) => stamp({ type: 'flow.deadline_passed', flow_id: flow, data: { timeout_secs: 30 } } as Body),
};

/** A flow's state folded from events at sequences 1, 2, 3... */
export function folded(events: FlowEvent[]): FlowState {
  let state: FlowState | null = null;
  events.forEach((event, i) => (state = evolve(state, event, i + 1)));
  return state!;
}

/** Drafts as `type` or `type:task`, without their payload. */
export function summary(drafts: readonly EventDraft[]): string[] {
  return drafts.map((d) => ('task_id' in d ? `${d.type}:${d.task_id}` : d.type));
}

/** An in-memory log of flows: stored events in sequence order, and the reads made of it. */
export class MemoryHistory implements FlowHistory {
  readonly stored: Array<{ seq: number; event: FlowEvent }> = [];
  readonly reads: string[] = [];
  readonly released: string[] = [];

  append(...events: FlowEvent[]): number {
    for (const event of events) this.stored.push({ seq: this.stored.length + 1, event });
    return this.stored.length;
  }

  async submitted(event: FlowEvent, seq: number): Promise<FlowState | null> {
    this.reads.push(`submitted ${event.flow_id}`);
    return evolve(null, event, seq);
  }

  async fold(flowId: string, untilSeq = Number.MAX_SAFE_INTEGER): Promise<FlowState | null> {
    this.reads.push(`fold ${flowId}`);
    let state: FlowState | null = null;
    for (const { seq, event } of this.stored) if (event.flow_id === flowId && seq <= untilSeq) state = evolve(state, event, seq);
    return state;
  }

  release(flowId: string): void {
    this.released.push(flowId);
  }
}
