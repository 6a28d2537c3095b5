import type { TaskSpec } from '../flow/definition.js';
import { mapStart } from './map.js';
import type { FlowState } from './state.js';
import { waitStart, type Start } from './waits.js';

/**
 * How a task that may run begins when it does not simply become ready for an executor: it waits
 * (approvals, signals, child flows, a map task's instances), fails before waiting, or (a map
 * instance whose map task runs as many as it may) stays pending. Undefined: it becomes ready.
 * `decidedOutputs` are the outputs of tasks the same decision round settled (see prepareTask).
 */
export function heldStart(state: FlowState, spec: TaskSpec, decidedOutputs: ReadonlyMap<string, unknown> = new Map()): Start | undefined {
  return waitStart(state, spec) ?? mapStart(state, spec, decidedOutputs);
}
