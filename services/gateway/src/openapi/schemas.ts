import {
  Backoff,
  FLOW_STATUSES_FOR_QUERY,
  FlowDefinition,
  FlowEvent,
  FlowOrigin,
  FlowSubmission,
  QueuePolicyInput,
  QueueSecretSource,
  TaskError,
  TASK_STATUS_RANK,
  ULID_PATTERN,
  type AttemptRecord,
  type FlowSummary,
  type FlowView,
  type MinuteCounts,
  type QueueLoad,
  type QueuePolicy,
  type QueueStatsView,
  type TaskStatus,
  type TaskView,
} from '@taskstream/domain';
import { ApiKeyRecord, type ApiKeyInfo, type DeadLetter, type SecretInfo, type StoredEvent } from '@taskstream/nats';
import { z } from 'zod';
import { ERROR_WHEN, ERRORS, type ErrorCode } from '../errors.js';
import { described, named } from './registry.js';

/**
 * The zod schemas of the gateway's answers, for the OpenAPI document. Events, definitions, errors
 * of tasks and queue policies are the domain's own schemas; the views, which the domain declares as
 * TypeScript types, are described here, and `Describes` below holds each description to its type
 * at compile time (same fields, same types), so neither can change without the other.
 */

/** True when the schema's output and T have the same fields and each accepts the other. */
type Describes<S extends z.ZodType, T> = [z.output<S>] extends [T] ? ([T] extends [z.output<S>] ? (keyof T extends keyof z.output<S> ? (keyof z.output<S> extends keyof T ? true : false) : false) : false) : false;
/** Compiles only when given `true`. */
function describes<Check extends true>(): Check | void {}

const flowId = z.string().regex(ULID_PATTERN);
const time = described(z.string(), 'an RFC 3339 time');
const seq = () => z.number().int().min(1);

// Named domain schemas: every event type a component, and the flow definitions.
for (const option of FlowEvent.options) {
  const type = option.shape.type.value;
  const id = `${type.replace(/(^|[._])([a-z])/g, (_m, _sep, c: string) => c.toUpperCase())}Event`;
  named(id, option, `The \`${type}\` event.`);
}
named('FlowEvent', FlowEvent, 'An event of the flow log; `type` says which.');
named('FlowDefinition', FlowDefinition, 'A flow as validated and recorded: defaults made explicit.');
named('FlowSubmission', FlowSubmission, 'A flow as submitted (JSON or YAML); see schemas/flow.schema.json and docs/flow-language.md.');
named('TaskError', TaskError, 'Why an attempt or a task failed.');
named('QueuePolicyBody', QueuePolicyInput, 'A queue policy as sent: limits and task defaults for the queue (see docs/api.md, Queues).');

const TASK_STATUSES = Object.keys(TASK_STATUS_RANK) as [TaskStatus, ...TaskStatus[]];
const FLOW_STATUSES = FLOW_STATUSES_FOR_QUERY;

const Attempt = named(
  'Attempt',
  z.object({
    attempt: z.number().int().min(1),
    started_at: time.optional(),
    finished_at: time.optional(),
    duration_ms: z.number().optional(),
    outcome: z.enum(['succeeded', 'failed', 'timed_out', 'cancelled']).optional(),
    error: TaskError.optional(),
    retry_delay_ms: z.number().optional(),
    executor_id: z.string().optional(),
  }),
);
describes<Describes<typeof Attempt, AttemptRecord>>();

const TaskViewSchema = named(
  'TaskView',
  z.object({
    id: z.string(),
    name: z.string().optional(),
    executor: z.string(),
    queue: z.string(),
    depends_on: z.array(z.string()),
    depends_on_total: described(z.number().int().optional(), 'set when depends_on lists only the first of them'),
    status: z.enum(TASK_STATUSES),
    attempts: described(z.array(Attempt), 'the last attempts'),
    attempts_total: z.number().int(),
    ready_at: time.optional(),
    started_at: time.optional(),
    finished_at: time.optional(),
    duration_ms: z.number().optional(),
    error: TaskError.optional(),
    output: z.unknown().optional(),
    upstream: z.array(z.string()).optional(),
    upstream_total: z.number().int().optional(),
    condition: z.string().optional(),
    reason: z.string().optional(),
    waiting_reason: described(z.string().optional(), 'rate, concurrency or key_concurrency: why a ready task waits for its queue'),
    reused: described(z.boolean().optional(), 'succeeded in the parent flow of a rerun or fork; not run again'),
    artifacts: described(
      z.array(z.object({ name: z.string(), bytes: z.number().int(), sha256: z.string(), attempt: z.number().int() })).optional(),
      'files the task stored, in name order; download them from the artifacts route',
    ),
    instance_of: described(z.string().optional(), 'set on an instance of a map task (added while the flow ran): the map task'),
  }),
  'One task of a flow view.',
);
describes<Describes<typeof TaskViewSchema, TaskView>>();

const LineageSchema = z.object({ kind: z.enum(['rerun', 'fork']), parent_flow_id: flowId, at_seq: z.number().int() });
const OriginSchema = described(FlowOrigin.optional(), 'what started the flow when not a direct submission: a template run, a schedule, a webhook trigger or a parent flow');
const DerivedSchema = z.array(z.object({ kind: z.enum(['rerun', 'fork']), child_flow_id: flowId, at_seq: z.number().int() }));

export const FlowViewSchema = named(
  'FlowView',
  z.object({
    flow_id: flowId,
    name: z.string().optional(),
    status: z.enum(FLOW_STATUSES),
    queue: z.string(),
    labels: z.record(z.string(), z.string()).optional(),
    submitted_at: time,
    started_at: time.optional(),
    finished_at: time.optional(),
    duration_ms: z.number().optional(),
    error: z.string().optional(),
    counts: z.record(z.enum(TASK_STATUSES), z.number().int()),
    total: z.number().int(),
    tasks: z.array(TaskViewSchema),
    lineage: LineageSchema.optional(),
    origin: OriginSchema,
    derived: DerivedSchema.optional(),
    tasks_paged: z.literal(true).optional(),
    task_page_size: z.number().int().optional(),
    tasks_omitted: z.boolean().optional(),
    last_seq: described(z.number().int(), 'the stream sequence of the last event the view folds'),
  }),
  'What a person wants to see about one flow: its status, times and every task.',
);
describes<Describes<typeof FlowViewSchema, FlowView>>();

const Minute = z.object({ succeeded: z.number().int(), failed: z.number().int() });
describes<Describes<typeof Minute, MinuteCounts>>();
const Minutes = z.record(z.string(), Minute);
const Load = z.object({ waiting: z.number().int(), running: z.number().int(), throttled: z.number().int(), minutes: Minutes.optional() });
describes<Describes<typeof Load, QueueLoad>>();

const FlowSummarySchema = named(
  'FlowSummary',
  z.object({
    flow_id: flowId,
    name: z.string().optional(),
    status: z.enum(FLOW_STATUSES),
    queue: z.string(),
    labels: z.record(z.string(), z.string()).optional(),
    submitted_at: time,
    finished_at: time.optional(),
    total: z.number().int(),
    lineage: LineageSchema.optional(),
    origin: OriginSchema,
    load: described(z.record(z.string(), Load).optional(), "the flow's share of each queue's statistics"),
  }),
  'A flow in the flows list.',
);
describes<Describes<typeof FlowSummarySchema, FlowSummary>>();

export const FlowPage = z.object({
  flows: described(z.array(FlowSummarySchema), 'newest first'),
  next_cursor: described(z.string().optional(), 'pass as `cursor` for the next page; absent on the last one'),
});

const Links = z.object({ self: z.string(), events: z.string(), feed: z.string(), cancel: z.string() });

export const Submitted = z.object({
  flow_id: flowId,
  status: z.literal('submitted'),
  tasks: z.number().int(),
  replayed: described(z.boolean(), 'true when the Idempotency-Key was already used for this flow: no new flow was submitted'),
  warnings: described(z.array(z.string()).optional(), 'fields of the submission Taskstream ignored'),
  links: Links,
});

export const Cancelling = z.object({ flow_id: flowId, status: z.literal('cancelling'), links: Links });
export const Rerun = z.object({ flow_id: flowId, rerun_of: flowId, status: z.literal('submitted') });
export const Fork = z.object({ flow_id: flowId, forked_from: flowId, at_seq: seq(), status: z.literal('submitted') });

export const StoredEventSchema = named(
  'StoredEvent',
  z.object({ seq: described(seq(), 'the stream sequence of the event'), stored_at: time, event: FlowEvent }),
  'An event as the log stores it, with its stream sequence. In NDJSON, one per line.',
);
describes<Describes<typeof StoredEventSchema, StoredEvent>>();

export const FlowEvents = z.object({ flow_id: flowId, events: z.array(StoredEventSchema) });

export const FlowStateAt = z.object({
  flow_id: flowId,
  at_seq: seq(),
  folded_through_seq: described(z.number().int(), "the last of the flow's events at or before at_seq"),
  state: FlowViewSchema,
});

/** What a feed sends: stored events, undecodable ones by sequence, and one `resync` to a client that fell behind. */
export const FeedMessage = named(
  'FeedMessage',
  z.union([
    StoredEventSchema,
    z.object({ seq: seq(), stored_at: time, invalid: described(z.string(), 'why the stored message is not a valid event') }),
    described(z.object({ type: z.literal('resync'), after: z.number().int(), message: z.string() }), 'sent once before closing with code 4008: reconnect with after=<after>'),
  ]),
  'One WebSocket text message of a feed.',
);

const QueuePolicySchema = named(
  'QueuePolicy',
  z.object({
    concurrency: z.number().int().optional(),
    per_key_concurrency: z.number().int().optional(),
    rate_limit: z.object({ per_second: z.number(), max_burst: z.number().int().optional() }).optional(),
    max_retries: z.number().int().optional(),
    timeout_secs: z.number().optional(),
    backoff: Backoff.optional(),
    secrets: z.record(z.string(), QueueSecretSource).optional(),
  }),
  'A queue policy as stored: its limits and task defaults.',
);
describes<Describes<typeof QueuePolicySchema, QueuePolicy>>();

export const QueueViewSchema = named(
  'Queue',
  z.object({
    name: z.string(),
    policy: QueuePolicySchema,
    running: described(z.number().int(), 'tasks holding a concurrency slot now'),
    tokens: described(z.number().optional(), 'tokens in the rate-limit bucket now'),
  }),
);

export const QueueList = z.object({ queues: z.array(QueueViewSchema) });

export const QueueStats = z.object({ queue: z.string(), waiting: z.number().int(), running: z.number().int(), throttled: z.number().int(), minutes: described(Minutes, 'tasks finished per minute (YYYY-MM-DDTHH:MM), the last hour') });
describes<Describes<typeof QueueStats, QueueStatsView>>();

const Letter = named(
  'DeadLetter',
  z.object({
    dlq_seq: seq(),
    reason: z.string(),
    source: z.string(),
    stream: z.string(),
    consumer: z.string(),
    subject: z.string(),
    stream_seq: z.number().int(),
    delivery_count: z.number().int(),
    time,
    data: described(z.string(), 'the payload: text, base64, or empty when omitted'),
    encoding: z.enum(['utf8', 'base64', 'omitted']),
    bytes: z.number().int(),
  }),
  'A message set aside, with the reason.',
);
describes<Describes<typeof Letter, DeadLetter & { dlq_seq: number }>>();
export { Letter as DeadLetterSchema };

export const LetterList = z.object({ letters: z.array(Letter) });
export const Republished = z.object({ republished_to: z.string(), seq: seq() });

const Secret = named('SecretInfo', z.object({ name: z.string(), updated_at: time }), "A secret's name and when it was last set; never its value.");
describes<Describes<typeof Secret, SecretInfo>>();
export { Secret as SecretInfoSchema };
export const SecretList = z.object({ secrets: z.array(Secret) });

const KeyInfo = named('ApiKeyInfo', ApiKeyRecord.omit({ hash: true }), 'An API key without its secret or hash.');
describes<Describes<typeof KeyInfo, ApiKeyInfo>>();
export const KeyList = z.object({ keys: described(z.array(KeyInfo), 'oldest first, revoked and expired keys included') });
export const CreatedKey = KeyInfo.extend({ key: described(z.string(), 'the whole key, ts_<id>_<secret>: answered this once only') });

export const Health = z.object({ status: z.literal('ok') });
export const Readiness = z.object({ status: z.enum(['ready', 'not ready']), checks: described(z.record(z.string(), z.string()), '"ok", or what failed') });

const CODES = Object.keys(ERRORS) as [ErrorCode, ...ErrorCode[]];

/** Every error answer: the code, a message saying what to do, and details some codes add. */
export const ErrorBody = named(
  'Error',
  z.object({
    error: z.object({
      code: z.enum(CODES),
      message: described(z.string(), 'what is wrong and what to do'),
      problems: described(z.array(z.object({ path: z.string(), message: z.string() })).optional(), 'INVALID_FLOW, INVALID_REQUEST, INVALID_QUEUE_POLICY: every problem, with where it is'),
      parameter: described(z.string().optional(), 'INVALID_PARAMETER: the parameter'),
      required_scope: described(z.string().optional(), 'FORBIDDEN: the scope the route needs'),
    }),
  }),
  `Every error has this shape. The codes:\n\n${CODES.map((code) => `- \`${code}\` (${ERRORS[code].status}): ${ERROR_WHEN[code]}`).join('\n')}`,
);

