import type { TaskError } from '../events/catalogue.js';
import type { TaskSpec } from '../flow/definition.js';
import { checkExpression, evaluateCondition, type ReferenceScope } from '../expressions/index.js';
import { jsonBytes, MAX_TASK_SPEC_BYTES } from '../limits/flow-size.js';
import { resolveForReady } from '../work/resolve-spec.js';
import type { FlowState, TaskState } from './state.js';

/** What a task whose trigger rule holds becomes: ready with its resolved spec, skipped by its condition, or failed before running. */
export type Preparation =
  | { kind: 'ready'; spec: TaskSpec }
  | { kind: 'skip'; condition: string }
  | { kind: 'fail'; error: TaskError };

/**
 * Evaluates the task's condition and resolves its references from the folded state. Pure: the same
 * state gives the same preparation, so a replayed decision records the same inputs.
 */
export function prepareTask(state: FlowState, task: TaskState): Preparation {
  const spec = task.spec;
  if (spec.condition !== undefined) {
    const verdict = evaluateCondition(spec.condition, bindingsFor(state, spec.condition, 'condition'));
    if (!verdict.ok) return fail('CONDITION_ERROR', `condition evaluation failed: ${verdict.message}`);
    if (!verdict.value) return { kind: 'skip', condition: spec.condition };
  }
  const resolved = resolveForReady(spec, scopeOf(state));
  if (!resolved.ok) return fail(resolved.code, resolved.message);
  const ready = resolved.spec;
  if (spec.executor === 'transform' && typeof ready.config.expr === 'string') {
    const bindings = bindingsFor(state, ready.config.expr, 'transform');
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

function scopeOf(state: FlowState): ReferenceScope {
  return {
    flowId: state.flow_id,
    params: state.definition.params ?? {},
    outputs: (id) => {
      const task = state.tasks[id];
      if (task === undefined || !('output' in task)) return { found: false };
      return { found: true, output: task.output };
    },
  };
}

/** The data an expression sees: the tasks it names (their outputs; null when they have none), params and the flow. */
function bindingsFor(state: FlowState, source: string, kind: 'condition' | 'transform') {
  const checked = checkExpression(source, kind);
  const tasks: Record<string, { output: unknown }> = {};
  if (checked.ok) {
    for (const id of checked.taskRefs) {
      const task = state.tasks[id];
      if (task !== undefined) tasks[id] = { output: task.output ?? null };
    }
  }
  return { tasks, params: state.definition.params ?? {}, flow: { id: state.flow_id } };
}

function fail(code: string, message: string): Preparation {
  return { kind: 'fail', error: { message, code, retryable: false } };
}
