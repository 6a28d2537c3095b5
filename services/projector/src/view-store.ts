import {
  MAX_VIEW_BYTES,
  PAGED_VIEW_TASKS,
  toFlowView,
  toFlowViewHeader,
  toStoredTaskView,
  type FlowDefinition,
  type FlowState,
} from '@taskstream/domain';
import { encodeJson, taskViewKey, type ViewWrite } from '@taskstream/nats';

/** A flow the projector holds, with what it knows of the view stored for it. */
export interface ProjectedFlow {
  state: FlowState;
  /** The stored view is paged: its task keys exist. */
  paged: boolean;
  /**
   * Every event of the flow up to this sequence is known to be in `state`: it was folded from the
   * log. Events after it arrived one by one, and one of them may have been lost in transit and come
   * again later, behind newer ones.
   */
  completeThrough: number;
  /** The summary this process last stored for the flow, as JSON: an unchanged one is not written again. */
  storedSummary?: string;
}

/** Tasks whose stored views a write renews: those its events touched, or every one. */
export type TouchedTasks = Set<string> | 'all';

const positions = new WeakMap<FlowDefinition, Map<string, number>>();

function indexOf(definition: FlowDefinition, taskId: string): number | undefined {
  let index = positions.get(definition);
  if (index === undefined) {
    index = new Map(definition.tasks.map((spec, i) => [spec.id, i]));
    positions.set(definition, index);
  }
  return index.get(taskId);
}

/**
 * How `flow`'s view is stored now. The layout depends only on the state, so a restart or a rebuild
 * stores the same keys: paged when the flow has more than PAGED_VIEW_TASKS tasks or its whole view
 * would pass MAX_VIEW_BYTES, else one key. A paged view renews the tasks in `touched`, or every
 * task when the stored view was not paged before; a view that stops being paged deletes its task
 * keys.
 */
export function planViewWrite(flow: Pick<ProjectedFlow, 'state' | 'paged'>, touched: TouchedTasks): ViewWrite {
  const { state } = flow;
  const flowId = state.flow_id;
  const specs = state.definition.tasks;
  if (specs.length <= PAGED_VIEW_TASKS) {
    const whole = encodeJson(toFlowView(state));
    if (whole.length <= MAX_VIEW_BYTES) {
      return { flowId, paged: false, header: whole, tasks: [], deletes: flow.paged ? specs.map((spec) => taskViewKey(flowId, spec.id)) : [] };
    }
  }
  const task = (index: number) => ({ key: taskViewKey(flowId, specs[index]!.id), bytes: encodeJson(toStoredTaskView(state, index)) });
  let tasks: ViewWrite['tasks'];
  if (touched === 'all' || !flow.paged) {
    tasks = specs.map((_, index) => task(index));
  } else {
    tasks = [];
    for (const taskId of touched) {
      const index = indexOf(state.definition, taskId);
      if (index !== undefined) tasks.push(task(index));
    }
  }
  return { flowId, paged: true, header: encodeJson(toFlowViewHeader(state)), tasks, deletes: [] };
}
