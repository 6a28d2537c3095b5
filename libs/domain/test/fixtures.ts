import fc from 'fast-check';
import { expect } from 'vitest';
import {
  decide,
  decideAll,
  EVENT_VERSION,
  evolve,
  fold,
  validateFlow,
  type EventDraft,
  type FlowDefinition,
  type FlowEvent,
  type FlowState,
  type TaskError,
} from '../src/index.js';

export const FLOW = '01JAAAAAAAAAAAAAAAAAAAAAAA';

export function definition(tasks: Array<{ id: string; depends_on?: string[] }>): FlowDefinition {
  return validFlow({ tasks: tasks.map((t) => ({ executor: 'noop', ...t })) });
}

let counter = 0;
/** Test events get monotonically increasing ULID-shaped ids and times. */
export function stamp<E extends Omit<FlowEvent, 'id' | 'version' | 'time'>>(event: E): FlowEvent {
  counter++;
  const id = `01J${counter.toString(32).toUpperCase().replace(/[ILOU]/g, 'X').padStart(23, '0')}`;
  return { ...event, id, version: EVENT_VERSION, time: new Date(Date.UTC(2026, 0, 1) + counter * 1000).toISOString() } as FlowEvent;
}

export function fromDraft(draft: EventDraft): FlowEvent {
  const { key: _key, ...event } = draft;
  return stamp(event as Omit<FlowEvent, 'id' | 'version' | 'time'>);
}

export const error = (message = 'boom'): TaskError => ({ message, code: 'EXIT_CODE', retryable: true, exit_code: 1 });

export const ev = {
  submitted: (def: FlowDefinition, flow = FLOW) => stamp({ type: 'flow.submitted', flow_id: flow, data: { definition: def } }),
  started: (flow = FLOW) => stamp({ type: 'flow.started', flow_id: flow, data: {} }),
  ready: (task: string, def: FlowDefinition, flow = FLOW) => {
    const spec = def.tasks.find((t) => t.id === task)!;
    return stamp({ type: 'task.ready', flow_id: flow, task_id: task, data: { queue: spec.queue, priority: 0, spec } });
  },
  taskStarted: (task: string, attempt = 1, flow = FLOW) =>
    stamp({ type: 'task.started', flow_id: flow, task_id: task, attempt, data: { executor_id: 'x1' } }),
  attemptFailed: (task: string, attempt = 1, flow = FLOW) =>
    stamp({ type: 'task.attempt_failed', flow_id: flow, task_id: task, attempt, data: { error: error(), duration_ms: 5 } }),
  succeeded: (task: string, attempt = 1, flow = FLOW) =>
    stamp({ type: 'task.succeeded', flow_id: flow, task_id: task, attempt, data: { output: { ok: task }, duration_ms: 10 } }),
  failed: (task: string, attempt = 1, flow = FLOW) =>
    stamp({ type: 'task.failed', flow_id: flow, task_id: task, attempt, data: { error: error(), duration_ms: 10 } }),
  timedOut: (task: string, attempt = 1, flow = FLOW) =>
    stamp({ type: 'task.timed_out', flow_id: flow, task_id: task, attempt, data: { timeout_ms: 100, error: { message: 'timed out', code: 'TIMEOUT', retryable: true } } }),
  cancelRequested: (flow = FLOW) => stamp({ type: 'flow.cancel_requested', flow_id: flow, data: { reason: 'user asked' } }),
  deadlinePassed: (flow = FLOW) => stamp({ type: 'flow.deadline_passed', flow_id: flow, data: { timeout_secs: 30 } }),
};

/** Shape of drafts without the payload noise: `type` or `type:task`. */
export function summary(drafts: EventDraft[]): string[] {
  return drafts.map((d) => ('task_id' in d ? `${d.type}:${d.task_id}` : d.type));
}

/** A random DAG: edges only point from a later task to an earlier one, so it is acyclic by construction. */
export const dagArbitrary = fc
  .integer({ min: 1, max: 12 })
  .chain((n) =>
    fc.record({
      n: fc.constant(n),
      edges: fc.array(fc.tuple(fc.nat(n - 1), fc.nat(n - 1)), { maxLength: n * 2 }),
      outcomes: fc.array(fc.boolean(), { minLength: n, maxLength: n }),
      choices: fc.array(fc.nat(), { minLength: 64, maxLength: 64 }),
      cancelAt: fc.option(fc.nat(30), { nil: undefined }),
      stop: fc.constantFrom('cancel' as const, 'deadline' as const),
    }),
  )
  .map(({ n, edges, outcomes, choices, cancelAt, stop }) => {
    const deps = Array.from({ length: n }, () => new Set<string>());
    for (const [a, b] of edges) if (a !== b) deps[Math.max(a, b)]!.add(`t${Math.min(a, b)}`);
    const def = definition(deps.map((ds, i) => ({ id: `t${i}`, depends_on: [...ds] })));
    return { def, outcomes: new Map(def.tasks.map((t, i) => [t.id, outcomes[i]!])), choices, cancelAt, stop };
  });

export interface DeciderRun {
  /** The event that ends a task an executor took (or undefined: it never ends). */
  finish: (taskId: string, state: FlowState) => FlowEvent | undefined;
  /** Which of the ready tasks an executor takes next (an index, taken modulo their number). */
  pick: (ready: readonly string[], step: number) => number;
  /** When the log is quiet, before the next task is taken: an event from outside (a cancel), if any. */
  quiet?: (step: number) => FlowEvent | undefined;
  /** What must hold when the log is quiet: every decision made (`all`), or none new (`new`, a rebuild may repeat a stored key). */
  settledCheck?: 'all' | 'new' | 'none';
  /** Whether the event appended as the log's n-th is delivered twice (a redelivery). */
  redeliver?: (n: number) => boolean;
  /** Called after each event is folded. */
  observe?: (state: FlowState) => void;
  maxSteps?: number;
}

/**
 * Runs a flow against the decider as the services would: decisions are appended to the log with
 * JetStream-style de-duplication by key, and tasks that became ready end as `finish` says, in the
 * order `pick` chooses.
 */
export function runDecider(def: FlowDefinition, run: DeciderRun) {
  const log: FlowEvent[] = [];
  const keys = new Set<string>();
  let state: FlowState | null = null;
  const pending: EventDraft[] = [];
  const ready: string[] = [];
  let step = 0;

  const append = (event: FlowEvent) => {
    log.push(event);
    state = evolve(state, event);
    if (event.type === 'task.ready') ready.push(event.task_id);
    pending.push(...decide(state, event));
    if (run.redeliver?.(log.length)) {
      // A redelivered event folds to nothing new and decides only keys already taken.
      state = evolve(state, event);
      for (const draft of decide(state, event)) if (!keys.has(draft.key) && !pending.some((p) => p.key === draft.key)) pending.push(draft);
    }
    run.observe?.(state!);
  };

  append(ev.submitted(def));
  for (let guard = 0; guard < (run.maxSteps ?? 1000); guard++) {
    if (pending.length > 0) {
      const draft = pending.shift()!;
      if (keys.has(draft.key)) continue;
      keys.add(draft.key);
      append(fromDraft(draft));
      continue;
    }
    if (run.settledCheck === 'all') expect(decideAll(state), 'nothing may be left undecided once the log is quiet').toEqual([]);
    if (run.settledCheck === 'new') expect(decideAll(state).filter((d) => !keys.has(d.key)), 'nothing new may be decided once the log is quiet').toEqual([]);
    const outside = run.quiet?.(step);
    if (outside !== undefined) append(outside);
    if (ready.length === 0) break;
    const task = ready.splice(run.pick(ready, step++) % ready.length, 1)[0]!;
    const end = run.finish(task, state!);
    if (end !== undefined) append(end);
  }
  return { log, state: state as FlowState | null };
}

/** runDecider with every task ending as `outcomes` says, in the order `choices` picks, and optionally a cancel or a deadline at a step. */
export function simulate(def: FlowDefinition, outcomes: Map<string, boolean>, choices: number[], cancelAt?: number, stop: 'cancel' | 'deadline' = 'cancel') {
  return runDecider(def, {
    finish: (task) => (outcomes.get(task) ? ev.succeeded(task) : ev.failed(task)),
    pick: (_ready, step) => choices[step % choices.length]!,
    quiet: (step) => (cancelAt !== undefined && step === cancelAt ? (stop === 'cancel' ? ev.cancelRequested() : ev.deadlinePassed()) : undefined),
    settledCheck: 'all',
  });
}

/** given(history).when(event).then(decisions): the decider read as a specification. */
export function given(history: FlowEvent[]) {
  return {
    when(event: FlowEvent) {
      const state = evolve(fold(history), event);
      const drafts = decide(state, event);
      return {
        then(expected: string[]) {
          expect(summary(drafts)).toEqual(expected);
          return { drafts, state: state as FlowState };
        },
      };
    },
  };
}

/** A flow as validation leaves it; a test's flow with problems throws them. */
export function validFlow(input: Record<string, unknown>): FlowDefinition {
  const result = validateFlow(input);
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  return result.flow;
}
