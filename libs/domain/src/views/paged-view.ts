import type { FlowState } from '../decider/state.js';
import { SAFE_TOKEN } from '../ids.js';
import { countTasks, toTaskView, type FlowView, type TaskView } from './flow-view.js';

/*
 * A paged view is stored as a header under the flow's id (the view without its tasks, with
 * `tasks_paged: true`) and one key per task, so a batch of events rewrites only the tasks it
 * touched and no value has to hold the whole flow.
 */

/**
 * Flows with more tasks than this are stored paged whatever their size: re-encoding a whole view
 * costs O(tasks) per write. A smaller flow is paged when its whole view would pass MAX_VIEW_BYTES.
 */
export const PAGED_VIEW_TASKS = 500;

/** One task of a paged view, with its position in the flow's definition. */
export interface StoredTaskView {
  index: number;
  task: TaskView;
}

const hexEncoder = new TextEncoder();

/**
 * A task id as one subject or key token. Ids of letters, digits, "-" and "_" stand for themselves;
 * any other id ("build.linux", "gen/x") becomes "=" and the hex of its UTF-8 bytes, which no plain
 * id can equal.
 */
export function taskKeyToken(taskId: string): string {
  if (SAFE_TOKEN.test(taskId)) return taskId;
  let hex = '=';
  for (const byte of hexEncoder.encode(taskId)) hex += byte.toString(16).padStart(2, '0');
  return hex;
}

/** The task at `index` in the definition, as a paged view stores it. */
export function toStoredTaskView(state: FlowState, index: number): StoredTaskView {
  return { index, task: toTaskView(state.tasks[state.definition.tasks[index]!.id]!) };
}

/**
 * The whole view from a paged header and its stored tasks, in any order; null when the tasks do
 * not make up the header's flow exactly (a layout change or purge under way). Tasks are written
 * before their header, so they can be one write ahead of it: the counts are taken from the tasks.
 */
export function assemblePagedView(header: FlowView, stored: readonly StoredTaskView[]): FlowView | null {
  if (stored.length !== header.total) return null;
  const tasks = new Array<TaskView>(header.total);
  for (const { index, task } of stored) {
    if (!Number.isInteger(index) || index < 0 || index >= header.total || tasks[index] !== undefined) return null;
    tasks[index] = task;
  }
  const { tasks_paged: _paged, tasks_omitted: _omitted, ...view } = header;
  return { ...view, counts: countTasks(tasks.map((task) => task.status)), tasks };
}
