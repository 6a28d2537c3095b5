import type { TaskError } from '../events/catalogue.js';
import type { TaskSpec } from '../flow/definition.js';
import { checkExpression, evaluateCondition } from '../expressions/index.js';
import { jsonBytes, MAX_TASK_SPEC_BYTES } from '../limits/flow-size.js';
import { resolveForReady } from '../work/resolve-spec.js';
import type { FlowState, TaskState } from './state.js';

/** What a task whose trigger rule holds becomes: ready with its resolved spec, skipped by its condition, or failed before running. */
export type Preparation =
  | { kind: 'ready'; spec: TaskSpec }
  | { kind: 'skip'; condition: string }
  | { kind: 'fail'; error: TaskError };

/**
 * Evaluates the task's condition and resolves its references from the folded state, and from
 * `decidedOutputs`: the outputs of tasks this same decision round settled (skipped ones), whose
 * events are not folded yet. Pure: the same state gives the same preparation, so a replayed
 * decision records the same inputs.
 */
export function prepareTask(state: FlowState, task: TaskState, decidedOutputs: ReadonlyMap<string, unknown> = new Map()): Preparation {
  const spec = task.spec;
  const outputOf = (id: string): { found: true; output: unknown } | { found: false } => {
    if (decidedOutputs.has(id)) return { found: true, output: decidedOutputs.get(id) };
    const upstream = state.tasks[id];
    return upstream !== undefined && 'output' in upstream ? { found: true, output: upstream.output } : { found: false };
  };
  if (spec.condition !== undefined) {
    const verdict = evaluateCondition(spec.condition, bindingsFor(state, spec.condition, 'condition', outputOf));
    if (!verdict.ok) return fail('CONDITION_ERROR', `condition evaluation failed: ${verdict.message}`);
    if (!verdict.value) return { kind: 'skip', condition: spec.condition };
  }
  // A child flow written out in a trigger task is the child's: its references are its own.
  const childFlow = ownChildFlow(spec);
  const resolving = childFlow === undefined ? spec : { ...spec, config: { ...spec.config, flow: null } };
  const resolved = resolveForReady(resolving, { flowId: state.flow_id, params: state.definition.params ?? {}, outputs: outputOf, artifacts: (id) => state.tasks[id]?.artifacts });
  if (!resolved.ok) return fail(resolved.code, resolved.message);
  const ready = childFlow === undefined ? resolved.spec : { ...resolved.spec, config: { ...resolved.spec.config, flow: childFlow } };
  if (spec.executor === 'transform' && typeof ready.config.expr === 'string') {
    const bindings = bindingsFor(state, ready.config.expr, 'transform', outputOf);
    ready.bindings = { ...bindings, tasks: { ...ready.bindings?.tasks, ...bindings.tasks } };
  }
  const bytes = jsonBytes(ready);
  if (bytes > MAX_TASK_SPEC_BYTES) {
    return fail(
      'INPUT_TOO_LARGE',
      `task "${spec.id}" is ${bytes} bytes once its references are resolved, over the limit of ${MAX_TASK_SPEC_BYTES}; reference only the fields it needs (for example \${tasks.x.output.field}) instead of whole outputs`,
    );
  }
  return { kind: 'ready', spec: ready };
}

/** The data an expression sees: the tasks it names (their outputs; null when they have none), params and the flow. */
function bindingsFor(state: FlowState, source: string, kind: 'condition' | 'transform', outputOf: (id: string) => { found: true; output: unknown } | { found: false }) {
  const checked = checkExpression(source, kind);
  const tasks: Record<string, { output: unknown }> = {};
  if (checked.ok) {
    for (const id of checked.taskRefs) {
      if (state.tasks[id] === undefined) continue;
      const found = outputOf(id);
      tasks[id] = { output: found.found ? (found.output ?? null) : null };
    }
  }
  return { tasks, params: state.definition.params ?? {}, flow: { id: state.flow_id } };
}

/** A trigger task's child flow given as a definition (not as one `${...}` reference to a parent's value). */
export function ownChildFlow(spec: TaskSpec): Record<string, unknown> | undefined {
  const flow = spec.executor === 'trigger' ? spec.config.flow : undefined;
  return flow !== null && typeof flow === 'object' && !Array.isArray(flow) ? (flow as Record<string, unknown>) : undefined;
}

function fail(code: string, message: string): Preparation {
  return { kind: 'fail', error: { message, code, retryable: false } };
}
