import type { Lineage } from '../events/catalogue.js';
import { descendantsOf } from '../flow/graph.js';
import type { FlowState } from './state.js';

/**
 * What a rerun or fork reuses from its parent: the output of every task that had succeeded in
 * `state` (the parent's final state for a rerun, its state at `at_seq` for a fork), except the
 * tasks named in `rerun` and everything downstream of them.
 */
export function lineageFrom(state: FlowState, kind: Lineage['kind'], atSeq: number, rerun: Iterable<string> = []): Lineage {
  const dependents = new Map(Object.entries(state.dependents));
  const again = new Set<string>();
  for (const id of rerun) {
    again.add(id);
    for (const d of descendantsOf(dependents, id)) again.add(d);
  }
  const reused: Lineage['reused'] = {};
  for (const id of state.order) {
    const task = state.tasks[id]!;
    if (task.status !== 'succeeded' || again.has(id)) continue;
    reused[id] = { ...(task.output !== undefined && { output: task.output }), ...(task.duration_ms !== undefined && { duration_ms: task.duration_ms }) };
  }
  return { kind, parent_flow_id: state.flow_id, at_seq: atSeq, reused };
}
