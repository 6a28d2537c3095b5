import { z } from 'zod';
import { Backoff, FlowDefinition, QueueName, TaskId, TaskSpec } from '../flow/definition.js';
import { ULID_PATTERN } from '../ids.js';

export const EVENT_VERSION = 1 as const;

export const EventId = z.string().regex(ULID_PATTERN, 'must be a ULID');
export const FlowId = z.string().regex(ULID_PATTERN, 'must be a ULID');

/** Why an attempt or a task failed, in a form a person can act on. */
export const TaskError = z.object({
  message: z.string(),
  /** Machine-readable cause: EXIT_CODE, SPAWN, TIMEOUT, HTTP_STATUS, NETWORK, OUTPUT_TOO_DEEP, OUTPUT_TOO_LARGE, SHELL_DISABLED, ... */
  code: z.string(),
  retryable: z.boolean(),
  exit_code: z.number().int().optional(),
  signal: z.string().optional(),
  http_status: z.number().int().optional(),
  stdout_tail: z.string().optional(),
  stderr_tail: z.string().optional(),
});
export type TaskError = z.infer<typeof TaskError>;

type Shape = z.ZodRawShape;

function envelope<T extends string, D extends z.ZodType, S extends Shape>(type: T, data: D, scope: S) {
  return z.strictObject({
    id: EventId,
    type: z.literal(type),
    version: z.literal(EVENT_VERSION),
    flow_id: FlowId,
    ...scope,
    time: z.iso.datetime({ offset: true }),
    data,
  });
}

const flowScope = {};
const taskScope = { task_id: TaskId };
const attemptScope = { task_id: TaskId, attempt: z.number().int().min(1) };

// Flow lifecycle.
/** A file a reused task stored in the parent flow, carried into its rerun or fork (its object stays the parent's). */
const ReusedArtifact = z.object({ name: z.string().min(1), bytes: z.number().int().min(0), sha256: z.string().regex(/^[0-9a-f]{64}$/), object: z.string().min(1), attempt: z.number().int().min(1) });

/** Where a rerun or fork came from, and the outputs (and artifacts) of the tasks it reuses instead of running. */
export const Lineage = z.object({
  kind: z.enum(['rerun', 'fork']),
  parent_flow_id: FlowId,
  /** The parent's stream sequence the new flow starts from (forks), or its last event (reruns). */
  at_seq: z.number().int().min(0),
  reused: z.record(TaskId, z.object({ output: z.unknown().optional(), duration_ms: z.number().min(0).optional(), artifacts: z.record(z.string(), ReusedArtifact).optional() })),
});
export type Lineage = z.infer<typeof Lineage>;

/**
 * Where a definition too large to travel in its `flow.submitted` is stored: the definitions object
 * store holds `{ definition, lineage? }` under `object`, and the digest proves it unchanged.
 */
export const DefinitionRef = z.object({
  object: z.string().min(1),
  bytes: z.number().int().min(0),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  tasks: z.number().int().min(1),
});
export type DefinitionRef = z.infer<typeof DefinitionRef>;

/**
 * What started a flow other than a direct submission: a template run, a schedule's tick, a webhook
 * trigger, or a parent flow's task (a sub-flow). Recorded once, in `flow.submitted`.
 */
export const FlowOrigin = z.object({
  template: z.object({ name: z.string().min(1), version: z.number().int().min(1) }).optional(),
  schedule: z.object({ id: z.string().min(1), scheduled_at: z.iso.datetime({ offset: true }) }).optional(),
  trigger: z.object({ name: z.string().min(1), delivery_id: z.string().min(1) }).optional(),
  parent: z.object({ flow_id: FlowId, task_id: TaskId, depth: z.number().int().min(1) }).optional(),
});
export type FlowOrigin = z.infer<typeof FlowOrigin>;

/**
 * Carries the definition, or for a large one `definition_ref` instead (with its lineage, which
 * holds reused outputs). Readers fold only hydrated submissions: the shell puts the stored
 * definition back before the event reaches `evolve`.
 */
export const FlowSubmitted = envelope(
  'flow.submitted',
  z
    .object({
      definition: FlowDefinition.optional(),
      definition_ref: DefinitionRef.optional(),
      idempotency_key: z.string().optional(),
      submitted_by: z.string().optional(),
      lineage: Lineage.optional(),
      origin: FlowOrigin.optional(),
    })
    .refine((data) => (data.definition === undefined) !== (data.definition_ref === undefined), 'must carry either definition or definition_ref'),
  flowScope,
);
/** Recorded in a flow's history when a rerun or fork of it is created. */
export const FlowDerived = envelope(
  'flow.derived',
  z.object({ kind: z.enum(['rerun', 'fork']), child_flow_id: FlowId, at_seq: z.number().int().min(0) }),
  flowScope,
);
export const FlowStarted = envelope('flow.started', z.object({}), flowScope);
export const FlowSucceeded = envelope(
  'flow.succeeded',
  z.object({ succeeded: z.number().int(), total: z.number().int() }),
  flowScope,
);
export const FlowFailed = envelope(
  'flow.failed',
  z.object({
    failed_tasks: z.array(TaskId),
    skipped_tasks: z.array(TaskId),
    /** Tasks that never ran because of the failures. */
    upstream_failed_tasks: z.array(TaskId).optional(),
    succeeded: z.number().int(),
    total: z.number().int(),
    reason: z.string(),
    /** Set when the flow as a whole failed for a reason of its own: FLOW_TIMEOUT. */
    code: z.string().optional(),
  }),
  flowScope,
);
export const FlowCancelRequested = envelope(
  'flow.cancel_requested',
  z.object({ reason: z.string().optional(), requested_by: z.string().optional() }),
  flowScope,
);
/** The flow's `timeout_secs` passed before it finished: it winds down like a cancel and then fails. */
export const FlowDeadlinePassed = envelope(
  'flow.deadline_passed',
  z.object({ timeout_secs: z.number().positive() }),
  flowScope,
);
/**
 * A task failed in a flow submitted with `fail_fast`: its unfinished tasks are cancelled (running
 * steps stopped) except those whose trigger rule is `always`, and the flow then fails.
 */
export const FlowFailFast = envelope('flow.fail_fast', z.object({ task_id: TaskId, reason: z.string() }), flowScope);
/**
 * Tasks were added to the flow while it runs: a `map` task's instances (one per item) or the tasks
 * a `spawn` task generated. `tasks` are specs normalised like a submission's; `by_task` is the task
 * that added them. A large set is split into several events (`part` counts from 0), each keyed
 * `<flow>:<by_task>:flow.tasks_added:<part>`, so a repeated decision adds nothing twice.
 */
export const FlowTasksAdded = envelope(
  'flow.tasks_added',
  z.object({ by_task: TaskId, kind: z.enum(['map', 'spawn']), part: z.number().int().min(0), tasks: z.array(TaskSpec).min(1) }),
  flowScope,
);
export const FlowCancelled = envelope(
  'flow.cancelled',
  z.object({ reason: z.string(), succeeded: z.number().int(), total: z.number().int() }),
  flowScope,
);

// Completion webhooks: delivered after the flow ended, never part of its outcome.
/** Which of the flow's webhooks is called: `on_complete` after flow.succeeded, `on_failure` after flow.failed or flow.cancelled. */
export const WEBHOOK_KINDS = ['on_complete', 'on_failure'] as const;
const webhookFields = {
  webhook: z.enum(WEBHOOK_KINDS),
  /** The URL called, without its query string, fragment or credentials (they may hold secrets). */
  url: z.string(),
  /** The `webhook-id` header: the same on every attempt, so the receiver can drop repeats. */
  webhook_id: z.string(),
};
/** One POST of the webhook (or one that could not be made): its answer or error, and whether it was signed. */
export const FlowWebhookAttempted = envelope(
  'flow.webhook_attempted',
  z.object({
    ...webhookFields,
    attempt: z.number().int().min(1),
    /** Tasked's body `event`: flow_completed or flow_failed. */
    event: z.enum(['flow_completed', 'flow_failed']),
    /** The HTTP status of the answer, when there was one. */
    status: z.number().int().optional(),
    /** Why the attempt did not deliver (no answer, a status that is not 2xx, a refusal), when it did not. */
    failure: z.string().optional(),
    duration_ms: z.number().min(0),
    signed: z.boolean(),
    /** The secret (its name, never its value) that signed it. */
    secret: z.string().optional(),
    /** When delivery will be tried again, if it will. */
    retry_in_ms: z.number().int().min(0).optional(),
  }),
  flowScope,
);
/** The receiver answered 2xx: the webhook is delivered and will not be sent again. */
export const FlowWebhookDelivered = envelope(
  'flow.webhook_delivered',
  z.object({ ...webhookFields, attempts: z.number().int().min(1), status: z.number().int() }),
  flowScope,
);
/** Delivery gave up: attempts used up, a URL the SSRF policy refuses, or deliveries used up. */
export const FlowWebhookAbandoned = envelope(
  'flow.webhook_abandoned',
  z.object({
    ...webhookFields,
    attempts: z.number().int().min(0),
    reason: z.string(),
    /** ATTEMPTS_EXHAUSTED, SSRF_BLOCKED or DELIVERIES_EXHAUSTED. */
    code: z.string(),
  }),
  flowScope,
);

// Task lifecycle.
export const TaskReady = envelope(
  'task.ready',
  z.object({ queue: QueueName, priority: z.number().int(), concurrency_key: z.string().optional(), spec: TaskSpec }),
  taskScope,
);
export const THROTTLE_REASONS = ['rate', 'concurrency', 'key_concurrency'] as const;
export const TaskThrottled = envelope(
  'task.throttled',
  z.object({ queue: QueueName, reason: z.enum(THROTTLE_REASONS), concurrency_key: z.string().optional() }),
  taskScope,
);
/** How a task was dispatched: its queue and the retries, timeout and backoff it runs with, after the queue's defaults applied. */
const Dispatch = z.object({
  queue: QueueName,
  retries: z.number().int().min(0).optional(),
  timeout_secs: z.number().positive().optional(),
  backoff: Backoff.optional(),
});
/** Recorded by the dispatcher of earlier versions; a dispatch is now in its work item, and in its first `task.started` (`dispatch`). */
export const TaskDispatched = envelope('task.dispatched', Dispatch, taskScope);
export const TaskStarted = envelope(
  'task.started',
  z.object({
    executor_id: z.string(),
    /** When and how the task was dispatched (the work item's record of it), on the first attempt's start. */
    dispatch: Dispatch.extend({ at: z.iso.datetime({ offset: true }) }).optional(),
  }),
  attemptScope,
);
export const TaskAttemptFailed = envelope(
  'task.attempt_failed',
  z.object({ error: TaskError, duration_ms: z.number().min(0) }),
  attemptScope,
);
export const TaskRetryScheduled = envelope(
  'task.retry_scheduled',
  z.object({ next_attempt: z.number().int().min(2), delay_ms: z.number().min(0) }),
  attemptScope,
);
/** What a wait task waits for: a signal of this name whose payload `match` accepts. */
export const SignalWait = z.object({
  name: z.string().min(1),
  match: z.string().optional(),
  /** Signals sent up to this many seconds before the wait began count too. */
  lookback_secs: z.number().min(0),
});
export type SignalWait = z.infer<typeof SignalWait>;

/**
 * The child flow a trigger task started: its id is derived from the parent and the task, so it is
 * submitted once whoever submits it. The decision leaves `flow_id` empty; the planner's shell
 * submits the child (from `definition`, or from `template` with `params`) and stores its id.
 */
export const ChildFlow = z.object({
  flow_id: z.string(),
  /** The child's queue (for a template, filled in by the shell with the id). */
  queue: z.string(),
  wait: z.boolean(),
  definition: FlowDefinition.optional(),
  template: z.object({ name: z.string().min(1), version: z.number().int().min(1).optional() }).optional(),
  params: z.record(z.string(), z.unknown()).optional(),
  /** How deep the child is: the parent's depth plus one. */
  depth: z.number().int().min(1),
});
export type ChildFlow = z.infer<typeof ChildFlow>;

/**
 * A task that holds no executor, queue or concurrency slot while it waits, once its dependencies,
 * trigger rule and condition let it run: an approval (`output` is Tasked's; `code` is 128 random
 * bits, 32 hex digits, the planner's shell draws when it stores the event, which is what makes it
 * the code), a wait for a `signal`, or a trigger task's `child` flow.
 */
export const TaskWaiting = envelope(
  'task.waiting',
  z.object({
    output: z.object({ awaiting_approval: z.literal(true), message: z.string(), code: z.string() }).optional(),
    /** When set, the task times out (task.timed_out) if it still waits this many seconds after this event. */
    timeout_secs: z.number().positive().optional(),
    signal: SignalWait.optional(),
    child: ChildFlow.optional(),
    /** A map task waiting for its instances: how many there are, and how many may run at once. */
    map: z.object({ instances: z.number().int().min(1), concurrency: z.number().int().min(1) }).optional(),
  }),
  taskScope,
);
/** The signal that completed a wait task: its id and stream sequence in the signals stream. */
export const SignalMatch = z.object({ id: z.string(), seq: z.number().int().min(1), name: z.string() });
export type SignalMatch = z.infer<typeof SignalMatch>;
/** The child flow that ended a trigger task. */
export const ChildEnd = z.object({ flow_id: FlowId, status: z.enum(['succeeded', 'failed', 'cancelled']) });
export type ChildEnd = z.infer<typeof ChildEnd>;
/** Who ended a waiting task through the ack route: the approver's name as given, and the API key used. */
export const Ack = z.object({
  approved_by: z.string().optional(),
  /** `key:<id>` of the API key that sent the ack, when keys are on. */
  requested_by: z.string().optional(),
});
export type Ack = z.infer<typeof Ack>;
/**
 * A file a step left in its artifacts directory, stored in the artifacts object store under
 * `object` before the attempt's task.succeeded: a task's artifacts are known once it has succeeded.
 */
export const TaskArtifactStored = envelope(
  'task.artifact_stored',
  z.object({
    /** The file's name in the directory (a relative path with `/`). */
    name: z.string().min(1),
    bytes: z.number().int().min(0),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    /** The object's name in the artifacts store. */
    object: z.string().min(1),
  }),
  attemptScope,
);
export const TaskSucceeded = envelope(
  'task.succeeded',
  z.object({ output: z.unknown().optional(), duration_ms: z.number().min(0), ack: Ack.optional(), signal: SignalMatch.optional(), child: ChildEnd.optional() }),
  attemptScope,
);
export const TaskFailed = envelope(
  'task.failed',
  z.object({
    error: TaskError,
    duration_ms: z.number().min(0),
    ack: Ack.optional(),
    child: ChildEnd.optional(),
    /** A map task that failed still lists each instance's outcome (`[{item, status, output}]`). */
    output: z.unknown().optional(),
  }),
  attemptScope,
);
export const TaskTimedOut = envelope(
  'task.timed_out',
  z.object({ timeout_ms: z.number().min(0), error: TaskError }),
  attemptScope,
);
/**
 * The task will not run and that is not a failure: its condition was false (`condition` says which),
 * or its trigger rule decided so from skipped or succeeded dependencies (`upstream` names them).
 * Its output is `{ skipped: true, condition }` or `{ skipped: true, reason }`.
 */
export const TaskSkipped = envelope(
  'task.skipped',
  z.object({ reason: z.string(), condition: z.string().optional(), upstream: z.array(TaskId).optional() }),
  taskScope,
);
/** The task can never run because dependencies it needed failed, timed out or were cancelled (`upstream`). */
export const TaskUpstreamFailed = envelope(
  'task.upstream_failed',
  z.object({ reason: z.string(), upstream: z.array(TaskId) }),
  taskScope,
);
export const TaskCancelled = envelope('task.cancelled', z.object({ reason: z.string() }), taskScope);

export const FlowEvent = z.discriminatedUnion('type', [
  FlowSubmitted,
  FlowStarted,
  FlowSucceeded,
  FlowFailed,
  FlowCancelRequested,
  FlowDeadlinePassed,
  FlowFailFast,
  FlowCancelled,
  FlowDerived,
  FlowTasksAdded,
  FlowWebhookAttempted,
  FlowWebhookDelivered,
  FlowWebhookAbandoned,
  TaskReady,
  TaskWaiting,
  TaskThrottled,
  TaskDispatched,
  TaskStarted,
  TaskAttemptFailed,
  TaskRetryScheduled,
  TaskArtifactStored,
  TaskSucceeded,
  TaskFailed,
  TaskTimedOut,
  TaskSkipped,
  TaskUpstreamFailed,
  TaskCancelled,
]);
export type FlowEvent = z.infer<typeof FlowEvent>;
export type EventType = FlowEvent['type'];
export type EventOf<T extends EventType> = Extract<FlowEvent, { type: T }>;

export const EVENT_TYPES = FlowEvent.options.map((o) => o.shape.type.value) as EventType[];

export const TERMINAL_FLOW_EVENTS = new Set<EventType>(['flow.succeeded', 'flow.failed', 'flow.cancelled']);
/** Events that report on a finished flow (its webhook's delivery): the fold changes nothing for them, and nothing is decided on them. */
export const REPORT_EVENTS = new Set<EventType>(['flow.webhook_attempted', 'flow.webhook_delivered', 'flow.webhook_abandoned']);
export const TERMINAL_TASK_EVENTS = new Set<EventType>([
  'task.succeeded',
  'task.failed',
  'task.timed_out',
  'task.skipped',
  'task.upstream_failed',
  'task.cancelled',
]);

/** An event minus what the shell stamps on it (id, version, time). The decider only produces drafts. */
export type EventDraft = {
  [T in EventType]: Omit<EventOf<T>, 'id' | 'version' | 'time'> & {
    /** Deterministic de-duplication key: the same decision always gets the same key. */
    key: string;
  };
}[EventType];

/** The body of an event of any type, minus the given envelope fields (distributes over the union). */
export type EventBody<K extends keyof FlowEvent | 'task_id' | 'attempt'> = {
  [T in EventType]: Omit<EventOf<T>, K>;
}[EventType];
