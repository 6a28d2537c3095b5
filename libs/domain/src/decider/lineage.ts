import type { Lineage } from '../events/catalogue.js';
import type { FlowDefinition } from '../flow/definition.js';
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
  for (const named of rerun) {
    // Running a map's instance again runs its map task again (which adds its instances again).
    const id = state.tasks[named]?.spec.instance_of?.task ?? named;
    again.add(id);
    for (const d of descendantsOf(dependents, id)) again.add(d);
  }
  const reused: Lineage['reused'] = {};
  for (const id of state.order) {
    const task = state.tasks[id]!;
    // Tasks added while the parent ran are added again by the new flow as it runs (a rerun
    // re-expands a map from the submitted definition), so their outputs are not reused.
    if (task.status !== 'succeeded' || again.has(id) || addedAtRunTime(task.spec)) continue;
    reused[id] = {
      ...(task.output !== undefined && { output: task.output }),
      ...(task.duration_ms !== undefined && { duration_ms: task.duration_ms }),
      // Its files stay in the parent's objects, so the new flow's tasks can read them.
      ...(task.artifacts !== undefined && { artifacts: task.artifacts }),
    };
  }
  return { kind, parent_flow_id: state.flow_id, at_seq: atSeq, reused };
}

/** Whether a task was added while its flow ran (a map's instance, a spawn's task) rather than submitted. */
function addedAtRunTime(spec: FlowDefinition['tasks'][number]): boolean {
  return spec.instance_of !== undefined || spec.spawned_by !== undefined;
}

/**
 * The flow's definition as submitted, without the tasks added while it ran: what a rerun or fork
 * starts from. Its map tasks expand again when they run (unless reused, with their output).
 */
export function submittedDefinition(state: FlowState): FlowDefinition {
  const tasks = state.definition.tasks.filter((spec) => !addedAtRunTime(spec));
  return tasks.length === state.definition.tasks.length ? state.definition : { ...state.definition, tasks };
}
