import {
  INLINE_TASK_VIEW_BYTES,
  MAX_VIEW_BYTES,
  PAGED_VIEW_TASKS,
  pageCount,
  pageOf,
  TASK_PAGE_SIZE,
  toFlowView,
  toFlowViewHeader,
  toStoredTaskView,
  toTaskView,
  type FlowDefinition,
  type FlowState,
  type FlowTally,
} from '@taskstream/domain';
import { encodeJson, taskPageKey, taskViewKey, type ViewWrite } from '@taskstream/nats';

/** A flow the projector holds, with what it knows of the view stored for it. */
export interface ProjectedFlow {
  state: FlowState;
  /** The stored view is paged in pages of TASK_PAGE_SIZE: its pages exist. */
  paged: boolean;
  /** The stored view was paged before pages existed, with a key per task: the next write deletes those keys. */
  keyPerTask?: boolean;
  /**
   * Every event of the flow up to this sequence is known to be in `state`: it was folded from the
   * log. Events after it arrived one by one, and one of them may have been lost in transit and come
   * again later, behind newer ones.
   */
  completeThrough: number;
  /** The summary this process last stored for the flow, as JSON: an unchanged one is not written again. */
  storedSummary?: string;
  /** The flow's task counts and queue loads, brought up to date before each write. */
  tally: FlowTally;
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
 * would pass MAX_VIEW_BYTES, else one key. A paged view renews the pages holding the tasks in
 * `touched`, or every page when the stored view was not paged (in pages) before; a view that stops
 * being paged deletes its pages and task keys, and a view stored with a key per task (before
 * pages) deletes those keys once it is stored again.
 */
export function planViewWrite(flow: Pick<ProjectedFlow, 'state' | 'paged' | 'keyPerTask'> & { tally?: FlowTally }, touched: TouchedTasks): ViewWrite {
  const { state } = flow;
  const flowId = state.flow_id;
  const specs = state.definition.tasks;
  if (specs.length <= PAGED_VIEW_TASKS) {
    const whole = encodeJson(toFlowView(state));
    if (whole.length <= MAX_VIEW_BYTES) {
      const deletes = [...(flow.paged || flow.keyPerTask ? specs.map((spec) => taskViewKey(flowId, spec.id)) : []), ...(flow.paged ? pageKeys(flowId, specs.length) : [])];
      return { flowId, paged: false, header: whole, ownTasks: [], pages: [], deletes };
    }
  }
  const pages = new Set<number>();
  if (touched === 'all' || !flow.paged) {
    for (let page = 0; page < pageCount(specs.length); page++) pages.add(page);
  } else {
    for (const taskId of touched) {
      const index = indexOf(state.definition, taskId);
      if (index !== undefined) pages.add(pageOf(index));
    }
  }
  const write: ViewWrite = { flowId, paged: true, header: encodeJson(toFlowViewHeader(state, flow.tally)), ownTasks: [], pages: [], deletes: [] };
  for (const page of [...pages].sort((a, b) => a - b)) encodePage(state, page, write);
  if (flow.keyPerTask) {
    // Readers older than pages would go on serving these keys as the view; they go once the pages are stored.
    const own = new Set(write.ownTasks.map((task) => task.key));
    write.deletes = specs.map((spec) => taskViewKey(flowId, spec.id)).filter((key) => !own.has(key));
  }
  return write;
}

/**
 * Adds page `page` of `state`'s tasks to `write`, encoding each task once: a task too large to
 * share its page is stored under its own key and leaves null in its place.
 */
function encodePage(state: FlowState, page: number, write: ViewWrite): void {
  const flowId = state.flow_id;
  const specs = state.definition.tasks;
  const first = page * TASK_PAGE_SIZE;
  const parts: string[] = [];
  for (let index = first; index < Math.min(first + TASK_PAGE_SIZE, specs.length); index++) {
    const task = JSON.stringify(toTaskView(state.tasks[specs[index]!.id]!));
    if (fitsInPage(task)) parts.push(task);
    else {
      parts.push('null');
      write.ownTasks.push({ key: taskViewKey(flowId, specs[index]!.id), bytes: encodeJson(toStoredTaskView(state, index)) });
    }
  }
  write.pages.push({ key: taskPageKey(flowId, page), bytes: textEncoder.encode(`{"first":${first},"tasks":[${parts.join(',')}]}`) });
}

function pageKeys(flowId: string, tasks: number): string[] {
  return Array.from({ length: pageCount(tasks) }, (_, page) => taskPageKey(flowId, page));
}

const textEncoder = new TextEncoder();

/** Whether a task view's JSON may share its page; most are too short to need counting their bytes. */
function fitsInPage(json: string): boolean {
  return json.length * 3 <= INLINE_TASK_VIEW_BYTES || Buffer.byteLength(json) <= INLINE_TASK_VIEW_BYTES;
}
