import {
  MAX_VIEW_BYTES,
  PAGED_VIEW_TASKS,
  taskViewKey,
  toFlowView,
  toFlowViewHeader,
  toStoredTaskView,
  type FlowDefinition,
  type FlowState,
} from '@taskstream/domain';
import { encodeJson, type KV } from '@taskstream/nats';

/** A flow the projector holds, with what it knows of the view stored for it. */
export interface ProjectedFlow {
  state: FlowState;
  /** The stored view is paged: its task keys exist. */
  paged: boolean;
}

/** Tasks whose stored views a write renews: those its events touched, or every one. */
export type TouchedTasks = Set<string> | 'all';

/** One flow's view, encoded as the key-value writes that store it. */
export interface ViewWrite {
  flowId: string;
  paged: boolean;
  /** Under `<flow id>`: the whole view, or the header of a paged one. */
  header: Uint8Array;
  tasks: Array<{ key: string; bytes: Uint8Array }>;
  /** Task keys of a view that is no longer paged. */
  deletes: string[];
}

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
export function planViewWrite(flow: ProjectedFlow, touched: TouchedTasks): ViewWrite {
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

/** Writes in flight at once: a 10,000-task flow's first write is one put per task. */
const IN_FLIGHT = 1_000;

async function eachLimited<T>(items: T[], run: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += IN_FLIGHT) await Promise.all(items.slice(i, i + IN_FLIGHT).map(run));
}

/**
 * Stores `writes`: task keys first, so a reader that finds a paged header finds every task it
 * counts; then the headers (with `beside`, written at the same time); then the task keys of views
 * no longer paged, once no header points to them.
 */
export async function storeViews(views: KV, writes: ViewWrite[], beside: () => Array<Promise<unknown>> = () => []): Promise<void> {
  await eachLimited(
    writes.flatMap((write) => write.tasks),
    ({ key, bytes }) => views.put(key, bytes),
  );
  await Promise.all([...writes.map(({ flowId, header }) => views.put(flowId, header)), ...beside()]);
  await eachLimited(
    writes.flatMap((write) => write.deletes),
    (key) => views.delete(key),
  );
}
