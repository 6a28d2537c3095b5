import type { FlowState } from '../decider/state.js';
import { SAFE_TOKEN } from '../ids.js';
import { countTasks, TASK_PAGE_SIZE, toTaskView, type FlowView, type TaskView } from './flow-view.js';

/*
 * A paged view is stored as a header under the flow's id (the view without its tasks, with
 * `tasks_paged: true` and `task_page_size`) and the tasks in pages of TASK_PAGE_SIZE, in definition
 * order, so a batch of events rewrites only the pages it touched and no value has to hold the
 * whole flow. A task whose view is large is kept under a key of its own, and its page holds null
 * in its place, so a page stays under MAX_VIEW_BYTES whatever its tasks hold. Headers written
 * before pages existed have no `task_page_size`: their tasks are all under keys of their own.
 */

/**
 * Flows with more tasks than this are stored paged whatever their size: re-encoding a whole view
 * costs O(tasks) per write. A smaller flow is paged when its whole view would pass MAX_VIEW_BYTES.
 */
export const PAGED_VIEW_TASKS = 500;

/** A task view whose JSON passes this many bytes is stored under its own key, not in its page. */
export const INLINE_TASK_VIEW_BYTES = 16 * 1024;

/** One page of a paged view: the tasks from index `first` on, null for those stored on their own. */
export interface StoredTaskPage {
  first: number;
  tasks: Array<TaskView | null>;
}

/** The page holding the task at `index`. */
export function pageOf(index: number): number {
  return Math.floor(index / TASK_PAGE_SIZE);
}

/** How many pages hold `total` tasks. */
export function pageCount(total: number): number {
  return Math.ceil(total / TASK_PAGE_SIZE);
}

/**
 * The stored tasks a paged view's pages (in any order) make up, with the tasks stored on their
 * own filling the places their pages leave empty; null when a page is malformed or leaves a place
 * that no task of its own fills (a write under way).
 */
export function tasksFromPages(pages: readonly StoredTaskPage[], ownKeys: readonly StoredTaskView[]): StoredTaskView[] | null {
  const own = new Map(ownKeys.map((stored) => [stored.index, stored.task]));
  const tasks: StoredTaskView[] = [];
  for (const { first, tasks: page } of [...pages].sort((a, b) => a.first - b.first)) {
    if (!Number.isInteger(first) || first % TASK_PAGE_SIZE !== 0 || page.length > TASK_PAGE_SIZE) return null;
    for (let i = 0; i < page.length; i++) {
      const task = page[i] ?? own.get(first + i);
      if (task === undefined) return null;
      tasks.push({ index: first + i, task });
    }
  }
  return tasks;
}

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
  const { tasks_paged: _paged, tasks_omitted: _omitted, task_page_size: _pageSize, ...view } = header;
  return { ...view, counts: countTasks(tasks.map((task) => task.status)), tasks };
}
