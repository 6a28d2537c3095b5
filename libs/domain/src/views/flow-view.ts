import type { FlowTally } from './flow-tally.js';
import { queueLoads, type QueueLoad } from './queue-stats.js';
import type { AttemptRecord, FlowState, FlowStatus, TaskState, TaskStatus } from '../decider/state.js';
import type { TaskError } from '../events/catalogue.js';

/** The read model served by the gateway: what a person wants to see about one flow. */
export interface FlowView {
  flow_id: string;
  name?: string;
  status: FlowStatus;
  queue: string;
  labels?: Record<string, string>;
  submitted_at: string;
  started_at?: string;
  finished_at?: string;
  duration_ms?: number;
  error?: string;
  counts: Record<TaskStatus, number>;
  total: number;
  tasks: TaskView[];
  lineage?: FlowState['lineage'];
  origin?: FlowState['origin'];
  derived?: FlowState['derived'];
  /** Set on the header of a paged view, stored without its tasks (see paged-view.ts). */
  tasks_paged?: true;
  /** Set on a paged header: its tasks are stored in pages of this many (absent: one key per task, as before pages). */
  task_page_size?: number;
  /**
   * Set on a stored view without its tasks: on a paged header, so that readers older than paged
   * views fold the tasks from the log rather than serve none; and, without `tasks_paged`, on a view
   * too large for projectors older than paged views, whose tasks readers fold from the log until a
   * rebuild replaces it.
   */
  tasks_omitted?: boolean;
  last_seq: number;
}

/** What the flows list shows; changes only when the flow's own status does. The view extends it. */
export interface FlowSummary {
  flow_id: string;
  name?: string;
  status: FlowStatus;
  queue: string;
  labels?: Record<string, string>;
  submitted_at: string;
  finished_at?: string;
  total: number;
  lineage?: FlowState['lineage'];
  origin?: FlowState['origin'];
  /** The flow's share of each queue's statistics (see queueLoads). */
  load?: Record<string, QueueLoad>;
}

export interface TaskView {
  id: string;
  name?: string;
  executor: string;
  queue: string;
  depends_on: string[];
  /** Set when `depends_on` lists only the first VIEW_TASK_IDS of them. */
  depends_on_total?: number;
  status: TaskStatus;
  /** The last VIEW_ATTEMPTS attempts. */
  attempts: AttemptRecord[];
  /** Attempts made in all, including those `attempts` leaves out. */
  attempts_total: number;
  ready_at?: string;
  started_at?: string;
  finished_at?: string;
  duration_ms?: number;
  error?: TaskError;
  output?: unknown;
  /** The dependencies that made it upstream_failed, or skipped by its trigger rule. */
  upstream?: string[];
  /** Set when `upstream` lists only the first VIEW_TASK_IDS of them. */
  upstream_total?: number;
  /** The condition that was false, for a task it skipped. */
  condition?: string;
  reason?: string;
  /** Set while a ready task waits for its queue: rate, concurrency or key_concurrency. */
  waiting_reason?: string;
  /** Succeeded in the parent flow of a rerun or fork; not run again. */
  reused?: boolean;
  /** Files the task stored (see task.artifact_stored), in name order. */
  artifacts?: Array<{ name: string; bytes: number; sha256: string; attempt: number }>;
  /** An instance of a map task, added while the flow ran: the map task's id. */
  instance_of?: string;
}

/*
 * Bounds of a view. Whatever a task's history, its view fits one stored value: the view keeps the
 * last attempts, cuts long texts and long lists of task ids, and summarises large outputs; the
 * events keep everything whole. Worst case, with every text at its bound and made of characters
 * JSON escapes to six bytes, and both id lists full of 128-character ids: about 650 KB, under
 * MAX_VIEW_BYTES.
 */

/** Attempts a task view keeps: the most recent ones. */
export const VIEW_ATTEMPTS = 10;
/** Error messages, skip and cancel reasons and the flow's error keep their first this many characters. */
export const VIEW_MESSAGE_CHARS = 1_000;
/** `stdout_tail` and `stderr_tail` keep their last this many characters. */
export const VIEW_TAIL_CHARS = 2_000;
/** Other texts (task name, error code, signal, executor id) keep their first this many characters. */
export const VIEW_TEXT_CHARS = 200;
/** `depends_on` and `upstream` keep their first this many task ids. */
export const VIEW_TASK_IDS = 1_000;
/** Outputs larger than this (as JSON) are summarised in views; the full output stays in the history. */
export const VIEW_OUTPUT_LIMIT = 4096;
/** Characters of an output's JSON a summary shows. */
export const VIEW_OUTPUT_PREVIEW_CHARS = 1024;
/**
 * Tasks per page of a paged view. Events of one batch mostly touch neighbouring tasks (a flow's
 * tasks are readied and dispatched in definition order), so one page write carries several of
 * them, where a key per task cost a write per task and batch.
 */
export const TASK_PAGE_SIZE = 32;
/** The most one stored view value (a whole view, a paged view's header or one task) may take: under NATS's default 1 MiB payload. */
export const MAX_VIEW_BYTES = 768 * 1024;

const isHighSurrogate = (code: number) => code >= 0xd800 && code <= 0xdbff;
const isLowSurrogate = (code: number) => code >= 0xdc00 && code <= 0xdfff;

/** The start of `text`; a cut never splits a surrogate pair, half of which is not text. */
function head(text: string, limit: number): string {
  if (text.length <= limit) return text;
  const end = isHighSurrogate(text.charCodeAt(limit - 1)) ? limit - 1 : limit;
  return `${text.slice(0, end)}… [${text.length - end} more characters in the events]`;
}

function tail(text: string, limit: number): string {
  if (text.length <= limit) return text;
  const start = isLowSurrogate(text.charCodeAt(text.length - limit)) ? text.length - limit + 1 : text.length - limit;
  return `[${start} earlier characters in the events] …${text.slice(start)}`;
}

function boundError(error: TaskError): TaskError {
  return {
    ...error,
    message: head(error.message, VIEW_MESSAGE_CHARS),
    code: head(error.code, VIEW_TEXT_CHARS),
    ...(error.signal !== undefined && { signal: head(error.signal, VIEW_TEXT_CHARS) }),
    ...(error.stdout_tail !== undefined && { stdout_tail: tail(error.stdout_tail, VIEW_TAIL_CHARS) }),
    ...(error.stderr_tail !== undefined && { stderr_tail: tail(error.stderr_tail, VIEW_TAIL_CHARS) }),
  };
}

function boundAttempt(attempt: AttemptRecord): AttemptRecord {
  // Most attempts have nothing to cut; sharing them keeps encoding a large flow cheap.
  if (attempt.error === undefined && (attempt.executor_id === undefined || attempt.executor_id.length <= VIEW_TEXT_CHARS)) return attempt;
  return {
    ...attempt,
    ...(attempt.error !== undefined && { error: boundError(attempt.error) }),
    ...(attempt.executor_id !== undefined && { executor_id: head(attempt.executor_id, VIEW_TEXT_CHARS) }),
  };
}

export interface OutputSummary {
  truncated: true;
  bytes: number;
  preview: string;
  /** Where the whole output is. */
  see: 'events';
}

export function summariseOutput(output: unknown): unknown {
  if (output === undefined || output === null) return output;
  const json = JSON.stringify(output);
  if (json === undefined || json.length <= VIEW_OUTPUT_LIMIT) return output;
  const end = isHighSurrogate(json.charCodeAt(VIEW_OUTPUT_PREVIEW_CHARS - 1)) ? VIEW_OUTPUT_PREVIEW_CHARS - 1 : VIEW_OUTPUT_PREVIEW_CHARS;
  return { truncated: true, bytes: json.length, preview: json.slice(0, end), see: 'events' } satisfies OutputSummary;
}

/** One task as views show it, within the bounds above. */
export function toTaskView(task: TaskState): TaskView {
  const { spec } = task;
  return {
    id: task.id,
    ...(spec.name !== undefined && { name: head(spec.name, VIEW_TEXT_CHARS) }),
    executor: spec.executor,
    queue: spec.queue,
    depends_on: spec.depends_on.length > VIEW_TASK_IDS ? spec.depends_on.slice(0, VIEW_TASK_IDS) : spec.depends_on,
    ...(spec.depends_on.length > VIEW_TASK_IDS && { depends_on_total: spec.depends_on.length }),
    status: task.status,
    attempts: task.attempts.slice(-VIEW_ATTEMPTS).map(boundAttempt),
    attempts_total: task.attempts.length,
    ...(task.ready_at !== undefined && { ready_at: task.ready_at }),
    ...(task.started_at !== undefined && { started_at: task.started_at }),
    ...(task.finished_at !== undefined && { finished_at: task.finished_at }),
    ...(task.duration_ms !== undefined && { duration_ms: task.duration_ms }),
    ...(task.error !== undefined && { error: boundError(task.error) }),
    ...(task.output !== undefined && { output: summariseOutput(task.output) }),
    ...(task.upstream !== undefined && { upstream: task.upstream.slice(0, VIEW_TASK_IDS) }),
    ...(task.upstream !== undefined && task.upstream.length > VIEW_TASK_IDS && { upstream_total: task.upstream.length }),
    ...(task.condition !== undefined && { condition: head(task.condition, VIEW_MESSAGE_CHARS) }),
    ...(task.reason !== undefined && { reason: head(task.reason, VIEW_MESSAGE_CHARS) }),
    ...(task.waiting_reason !== undefined && { waiting_reason: task.waiting_reason }),
    ...(task.reused && { reused: true }),
    ...(spec.instance_of !== undefined && { instance_of: spec.instance_of.task }),
    ...(task.artifacts !== undefined && {
      artifacts: Object.values(task.artifacts)
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
        .map(({ name, bytes, sha256, attempt }) => ({ name, bytes, sha256, attempt })),
    }),
  };
}

const EMPTY_COUNTS: Record<TaskStatus, number> = {
  pending: 0,
  ready: 0,
  waiting: 0,
  dispatched: 0,
  running: 0,
  succeeded: 0,
  failed: 0,
  timed_out: 0,
  skipped: 0,
  upstream_failed: 0,
  cancelled: 0,
};

/** Tasks per status, over `statuses`. */
export function countTasks(statuses: Iterable<TaskStatus>): Record<TaskStatus, number> {
  const counts = { ...EMPTY_COUNTS };
  for (const status of statuses) counts[status]++;
  return counts;
}

function* statusesOf(state: FlowState): Iterable<TaskStatus> {
  for (const spec of state.definition.tasks) yield state.tasks[spec.id]!.status;
}

function withTasks(state: FlowState, tasks: TaskView[], counts: Record<TaskStatus, number> = countTasks(statusesOf(state))): FlowView {
  return {
    ...toFlowSummary(state),
    ...(state.started_at !== undefined && { started_at: state.started_at }),
    ...(state.finished_at !== undefined && {
      duration_ms: Date.parse(state.finished_at) - Date.parse(state.submitted_at),
    }),
    ...(state.error !== undefined && { error: head(state.error, VIEW_MESSAGE_CHARS) }),
    counts,
    tasks,
    ...(state.derived && { derived: state.derived }),
    last_seq: state.last_seq,
  };
}

export function toFlowView(state: FlowState): FlowView {
  return withTasks(
    state,
    state.definition.tasks.map((spec) => toTaskView(state.tasks[spec.id]!)),
  );
}

/** The view without its tasks, as a paged view stores it under the flow's own key; `tally`, when kept, spares counting every task. */
export function toFlowViewHeader(state: FlowState, tally?: FlowTally): FlowView {
  return { ...withTasks(state, [], tally?.counts()), tasks_paged: true, task_page_size: TASK_PAGE_SIZE, tasks_omitted: true };
}

export function toFlowSummary(state: FlowState): FlowSummary {
  const { definition } = state;
  return {
    flow_id: state.flow_id,
    ...(definition.name !== undefined && { name: definition.name }),
    status: state.status,
    queue: definition.queue,
    ...(definition.labels !== undefined && { labels: definition.labels }),
    submitted_at: state.submitted_at,
    ...(state.finished_at !== undefined && { finished_at: state.finished_at }),
    total: state.order.length,
    ...(state.lineage && { lineage: state.lineage }),
    ...(state.origin && { origin: state.origin }),
  };
}

/** The summary the flow list and queue statistics read: the flow's summary with its queue loads (from `tally` when kept). */
export function toFlowListing(state: FlowState, tally?: FlowTally): FlowSummary {
  const load = tally?.loads() ?? queueLoads(state);
  return { ...toFlowSummary(state), ...(Object.keys(load).length > 0 && { load }) };
}
