import type { TaskSpec } from '../flow/definition.js';
import type { FlowState } from './state.js';
import { waitStart, type Start } from './waits.js';

/**
 * How a task that may run begins when it does not simply become ready for an executor: it waits
 * (approvals, signals, child flows), or fails before waiting. Undefined: it becomes ready.
 */
export function heldStart(state: FlowState, spec: TaskSpec): Start | undefined {
  return waitStart(state, spec);
}
