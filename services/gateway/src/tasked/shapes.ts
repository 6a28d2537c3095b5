import { createHash } from 'node:crypto';
import {
  DEFAULT_RETRIES,
  DEFAULT_TIMEOUT_SECS,
  toFlowViewHeader,
  toTaskView,
  type Backoff,
  type FlowDefinition,
  type FlowState,
  type FlowView,
  type QueuePolicy,
  type TaskError,
  type TaskSpec,
  type TaskState,
  type TaskStatus,
} from '@taskstream/domain';
import type { ScheduleView } from '../schedules.js';
import { taskedCounts, taskedFlowState, taskedTaskState, type TaskedFlowState, type TaskedTaskState } from '@taskstream/domain';

/**
 * Taskstream's views in Tasked's shapes (server/src/dto.rs and src/types.rs of Tasked): what a
 * Tasked client reads. Pure functions of a view, a definition and a queue policy.
 */

/** Tasked's FlowResponse: a flow without its tasks (submit and list answers). */
export interface FlowResponse {
  id: string;
  queue_id: string;
  state: TaskedFlowState;
  task_count: number;
  tasks_succeeded: number;
  tasks_failed: number;
  fail_fast: boolean;
  created_at: string;
  updated_at: string;
}

/** Tasked's TaskResponse. */
export interface TaskResponse {
  id: string;
  flow_id: string;
  queue_id: string;
  state: TaskedTaskState;
  executor_type: string;
  input: unknown;
  output: unknown;
  error: string | null;
  retries_remaining: number;
  timeout_secs: number;
  started_at: string | null;
  completed_at: string | null;
  created_at: string;
}

/** What a task's Tasked form is made from: its view's state, and the spec it was submitted with. */
export interface TaskFacts {
  id: string;
  executor: string;
  queue: string;
  status: TaskStatus;
  /** Outcomes of the attempts made, oldest first (the view's last ones are enough). */
  attempts: ReadonlyArray<{ outcome?: string }>;
  /** Every attempt made, including those `attempts` leaves out. */
  attemptsTotal: number;
  output?: unknown;
  error?: Pick<TaskError, 'message'>;
  started_at?: string;
  finished_at?: string;
  spec?: Pick<TaskSpec, 'retries' | 'timeout_secs' | 'input' | 'config' | 'depends_on' | 'condition' | 'backoff'>;
}

/** A queue's task defaults, as a queue policy sets them (Tasked's queue config). */
export type QueueDefaults = Pick<QueuePolicy, 'max_retries' | 'timeout_secs'> | undefined;

const lastOutcome = (facts: Pick<TaskFacts, 'attempts'>) => facts.attempts.at(-1)?.outcome;

export function taskState(facts: Pick<TaskFacts, 'status' | 'attempts'>): TaskedTaskState {
  return taskedTaskState(facts.status, lastOutcome(facts));
}

/**
 * Retries left, as Tasked counts them: the task's retries (else its queue's max_retries, else 3)
 * less the attempts that failed.
 */
export function retriesRemaining(facts: TaskFacts, queue: QueueDefaults): number {
  const retries = facts.spec?.retries ?? queue?.max_retries ?? DEFAULT_RETRIES;
  const last = lastOutcome(facts);
  const failedAttempts = facts.attemptsTotal - (last === 'failed' || last === 'timed_out' ? 0 : facts.attemptsTotal > 0 ? 1 : 0);
  return Math.max(0, retries - failedAttempts);
}

/** The task's timeout in whole seconds (Tasked's is an integer; a fractional one is rounded up). */
export function timeoutSecs(facts: TaskFacts, queue: QueueDefaults): number {
  return Math.ceil(facts.spec?.timeout_secs ?? queue?.timeout_secs ?? DEFAULT_TIMEOUT_SECS);
}

export function taskResponse(facts: TaskFacts, flowId: string, createdAt: string, queue: QueueDefaults): TaskResponse {
  return {
    id: facts.id,
    flow_id: flowId,
    queue_id: facts.queue,
    state: taskState(facts),
    executor_type: facts.executor,
    input: facts.spec?.input ?? null,
    output: facts.output ?? null,
    error: facts.error?.message ?? null,
    retries_remaining: retriesRemaining(facts, queue),
    timeout_secs: timeoutSecs(facts, queue),
    started_at: facts.started_at ?? null,
    completed_at: facts.finished_at ?? null,
    created_at: createdAt,
  };
}

/** The latest time anything of the flow changed: its end, else its tasks' latest start or end. */
export function updatedAt(view: Pick<FlowView, 'submitted_at' | 'started_at' | 'finished_at'> & { tasks: ReadonlyArray<{ started_at?: string; finished_at?: string; ready_at?: string }> }): string {
  if (view.finished_at !== undefined) return view.finished_at;
  let latest = view.started_at ?? view.submitted_at;
  for (const task of view.tasks) {
    for (const at of [task.ready_at, task.started_at, task.finished_at]) if (at !== undefined && at > latest) latest = at;
  }
  return latest;
}

export function flowResponse(view: FlowView, failFast: boolean): FlowResponse {
  return {
    id: view.flow_id,
    queue_id: view.queue,
    state: taskedFlowState(view.status),
    task_count: view.total,
    ...taskedCounts(view.counts),
    fail_fast: failFast,
    created_at: view.submitted_at,
    updated_at: updatedAt(view),
  };
}

/** The facts of a view's task, with its spec from the definition (a map's instance takes its map task's). */
export function viewTaskFacts(task: FlowView['tasks'][number], specs: ReadonlyMap<string, TaskSpec>): TaskFacts {
  const spec = specs.get(task.id) ?? (task.instance_of !== undefined ? specs.get(task.instance_of) : undefined);
  return {
    id: task.id,
    executor: task.executor,
    queue: task.queue,
    status: task.status,
    attempts: task.attempts,
    attemptsTotal: task.attempts_total,
    ...(task.output !== undefined && { output: task.output }),
    ...(task.error !== undefined && { error: task.error }),
    ...(task.started_at !== undefined && { started_at: task.started_at }),
    ...(task.finished_at !== undefined && { finished_at: task.finished_at }),
    ...(spec !== undefined && { spec }),
  };
}

/** Tasked's FlowDetailResponse: the flow with every task. */
export function flowDetail(view: FlowView, definition: FlowDefinition | undefined, policies: (queue: string) => QueueDefaults) {
  const specs = new Map((definition?.tasks ?? []).map((t) => [t.id, t]));
  const { fail_fast: _failFast, ...flow } = flowResponse(view, definition?.fail_fast ?? false);
  return {
    ...flow,
    // As Tasked's answer, with fail_fast too (Tasked's client reads it when present).
    fail_fast: definition?.fail_fast ?? false,
    tasks: view.tasks.map((task) => taskResponse(viewTaskFacts(task, specs), view.flow_id, view.submitted_at, policies(task.queue))),
  };
}

// -- Flows as Tasked clients send them --

/** Optional fields of Tasked's TaskDef and FlowDef: serde writes an absent one as null. */
const NULLABLE_TASK_FIELDS = ['input', 'timeout_secs', 'retries', 'backoff', 'condition', 'config'];
const NULLABLE_FLOW_FIELDS = ['webhooks'];

const isObject = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value);

function withoutNulls(value: Record<string, unknown>, fields: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) if (!(item === null && fields.includes(key))) out[key] = item;
  return out;
}

/**
 * A flow as Tasked's clients send it, as Taskstream's flow language reads it: Tasked's absent
 * optional fields (`null`) left out, an empty `spawn_output` (which Tasked's client always sends)
 * dropped, webhooks' null URLs left out, and the queue taken from `queue` (the URL's), not the body.
 * Anything else is judged by the flow's validation as any submission is.
 */
export function fromTaskedFlow(body: unknown, queue?: string): unknown {
  if (!isObject(body)) return body;
  const flow = withoutNulls(body, NULLABLE_FLOW_FIELDS);
  if (isObject(flow.webhooks)) flow.webhooks = withoutNulls(flow.webhooks, ['on_complete', 'on_failure']);
  if (flow.fail_fast === false) delete flow.fail_fast;
  if (Array.isArray(flow.tasks)) {
    flow.tasks = flow.tasks.map((task) => {
      if (!isObject(task)) return task;
      const out = withoutNulls(task, NULLABLE_TASK_FIELDS);
      if (Array.isArray(out.spawn_output) && out.spawn_output.length === 0) delete out.spawn_output;
      return out;
    });
  }
  if (queue !== undefined) flow.queue = queue;
  return flow;
}

// -- Queues --

/** Tasked's QueueConfig defaults: what a queue created without a config gets. */
export const TASKED_QUEUE_DEFAULTS = { concurrency: 10, max_retries: 3, timeout_secs: 300, backoff: { exponential: { initial_delay_ms: 1000 } } } as const;

/** Tasked's fields Taskstream's policies have no room for, and what to do instead. */
const UNSUPPORTED_QUEUE_FIELDS: Record<string, string> = {
  max_pending_flows:
    'is not supported: Taskstream does not refuse submissions by the number of running flows; a queue\'s concurrency and rate_limit bound what runs at once',
};

/**
 * A Tasked queue config as a Taskstream queue policy (unparsed: Queues.parsePolicy judges it):
 * Tasked's defaults for fields left out (concurrency 10, 3 retries, 300 s, exponential from 1 s),
 * `rate_limit: null` and `retention_secs` (Taskstream keeps history by the events stream's max
 * age) left out. Returns the problems of fields it cannot honour instead.
 */
export function policyFromTasked(config: unknown): { policy: Record<string, unknown> } | { problems: Array<{ path: string; message: string }> } {
  if (config === undefined || config === null) return { policy: { ...TASKED_QUEUE_DEFAULTS } };
  if (!isObject(config)) return { problems: [{ path: 'config', message: 'must be an object, such as {"concurrency": 5, "max_retries": 3}' }] };
  const problems = Object.keys(UNSUPPORTED_QUEUE_FIELDS)
    .filter((key) => config[key] !== undefined && config[key] !== null)
    .map((key) => ({ path: `config.${key}`, message: UNSUPPORTED_QUEUE_FIELDS[key]! }));
  if (problems.length > 0) return { problems };
  const { retention_secs: _retention, max_pending_flows: _pending, ...fields } = config;
  const policy: Record<string, unknown> = { ...TASKED_QUEUE_DEFAULTS };
  for (const [key, value] of Object.entries(fields)) if (value !== null) policy[key] = value;
  if (isObject(policy.secrets) && Object.keys(policy.secrets).length === 0) delete policy.secrets;
  return { policy };
}

/** Tasked's tagged backoff for a stored one (a linear backoff, which Tasked lacks, keeps its own tag). */
export function taskedBackoff(backoff: Backoff): Record<string, Record<string, number>> {
  if (backoff.type === 'fixed') return { fixed: { delay_ms: backoff.initial_delay_ms } };
  if (backoff.type === 'exponential') return { [backoff.jitter ? 'exponential_jitter' : 'exponential']: { initial_delay_ms: backoff.initial_delay_ms } };
  return { linear: { initial_delay_ms: backoff.initial_delay_ms } };
}

/** A policy as Tasked's QueueConfig: the fields it sets, `rate_limit` and `retention_secs` null when unset. */
export function taskedQueueConfig(policy: QueuePolicy) {
  const rate = policy.rate_limit;
  return {
    ...(policy.concurrency !== undefined && { concurrency: policy.concurrency }),
    ...(policy.max_retries !== undefined && { max_retries: policy.max_retries }),
    ...(policy.timeout_secs !== undefined && { timeout_secs: Math.ceil(policy.timeout_secs) }),
    ...(policy.backoff !== undefined && { backoff: taskedBackoff(policy.backoff) }),
    rate_limit: rate === undefined ? null : { max_burst: rate.max_burst ?? Math.max(1, Math.ceil(rate.per_second)), per_second: rate.per_second },
    retention_secs: null,
    ...(policy.secrets !== undefined && Object.keys(policy.secrets).length > 0 && { secrets: policy.secrets }),
  };
}

export function queueResponse(id: string, policy: QueuePolicy, writtenAt: string) {
  return { id, config: taskedQueueConfig(policy), created_at: writtenAt, updated_at: writtenAt };
}

// -- Schedules --

export function scheduleResponse(view: ScheduleView) {
  return {
    id: view.id,
    queue_id: view.queue_id ?? view.queue ?? 'default',
    name: view.name ?? null,
    cron: view.cron,
    enabled: view.enabled,
    last_triggered_at: view.last_triggered_at,
    next_run_at: view.next_run_at,
    created_at: view.created_at,
    updated_at: view.updated_at,
  };
}

// -- Export --

/** A task's definition as Tasked's TaskDef, for the export's `flow_def`. */
function taskDef(spec: TaskSpec) {
  return {
    id: spec.id,
    executor: spec.executor,
    config: spec.config,
    input: spec.input ?? null,
    depends_on: spec.depends_on,
    timeout_secs: spec.timeout_secs ?? null,
    retries: spec.retries ?? null,
    backoff: spec.backoff !== undefined ? taskedBackoff(spec.backoff) : null,
    condition: spec.condition ?? null,
    spawn_output: [],
  };
}

export interface ArtifactExport {
  name: string;
  size_bytes: number;
  /** The task that stored it (Taskstream's artifacts are per task). */
  task?: string;
  /** Where the file is in a `format=tar` export. */
  path?: string;
  data_base64?: string;
}

/** The facts of a folded task: its whole output and every attempt, as the log holds them. */
export function stateTaskFacts(task: TaskState): TaskFacts {
  return {
    id: task.id,
    executor: task.spec.executor,
    queue: task.spec.queue,
    status: task.status,
    attempts: task.attempts,
    attemptsTotal: task.attempts.length,
    ...(task.output !== undefined && { output: task.output }),
    ...(task.error !== undefined && { error: task.error }),
    ...(task.started_at !== undefined && { started_at: task.started_at }),
    ...(task.finished_at !== undefined && { finished_at: task.finished_at }),
    spec: task.spec,
  };
}

/**
 * Tasked's export document (version 1) from the flow folded from its log: the flow with its counts
 * and definition, every task with its config, whole output, state and dependencies, the artifacts
 * when asked for, and `checksum`: the SHA-256 (hex) of the document's JSON without `checksum`, in
 * the order written here, as Tasked computes it.
 */
export function exportDocument(state: FlowState, policies: (queue: string) => QueueDefaults, artifacts: ArtifactExport[], exportedAt: string) {
  const { definition } = state;
  const view = toFlowViewHeader(state);
  const webhooks = definition.webhooks;
  const taskedWebhooks =
    webhooks && (webhooks.on_complete !== undefined || webhooks.on_failure !== undefined)
      ? { ...(webhooks.on_complete !== undefined && { on_complete: webhooks.on_complete }), ...(webhooks.on_failure !== undefined && { on_failure: webhooks.on_failure }) }
      : undefined;
  const tasks = state.order.map((id) => state.tasks[id]!);
  const flow = flowResponse({ ...view, tasks: tasks.map(toTaskView) }, definition.fail_fast ?? false);
  const document = {
    version: 1,
    flow: {
      id: flow.id,
      queue_id: flow.queue_id,
      state: flow.state,
      task_count: flow.task_count,
      tasks_succeeded: flow.tasks_succeeded,
      tasks_failed: flow.tasks_failed,
      trigger_depth: state.origin?.parent?.depth ?? 0,
      ...(taskedWebhooks !== undefined && { webhooks: taskedWebhooks }),
      flow_def: { tasks: definition.tasks.map(taskDef), webhooks: taskedWebhooks ?? null, fail_fast: definition.fail_fast ?? false },
      created_at: flow.created_at,
      updated_at: flow.updated_at,
    },
    tasks: tasks.map((task) => {
      const facts = stateTaskFacts(task);
      const queue = policies(task.spec.queue);
      return {
        id: task.id,
        executor_type: task.spec.executor,
        executor_config: task.spec.config,
        ...(task.spec.input !== undefined && { input: task.spec.input }),
        ...(facts.output !== undefined && { output: facts.output }),
        ...(facts.error !== undefined && { error: facts.error.message }),
        state: taskState(facts),
        ...(task.spec.depends_on.length > 0 && { depends_on: task.spec.depends_on }),
        retries_remaining: retriesRemaining(facts, queue),
        timeout_secs: timeoutSecs(facts, queue),
        ...(task.spec.condition !== undefined && { condition: task.spec.condition }),
        ...(facts.started_at !== undefined && { started_at: facts.started_at }),
        ...(facts.finished_at !== undefined && { completed_at: facts.finished_at }),
        created_at: state.submitted_at,
      };
    }),
    ...(artifacts.length > 0 && { artifacts }),
  };
  const checksum = createHash('sha256').update(JSON.stringify({ ...document, exported_at: exportedAt })).digest('hex');
  return { ...document, checksum, exported_at: exportedAt };
}
