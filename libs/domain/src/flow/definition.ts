import { z } from 'zod';
import { MAX_ID_LENGTH, SAFE_TOKEN } from '../ids.js';
import {
  MAX_BACKOFF_DELAY_MS,
  MAX_BACKOFF_MULTIPLIER,
  MAX_BURST,
  MAX_CONCURRENCY,
  MAX_CONDITION_LENGTH,
  MAX_LABEL_KEY_LENGTH,
  MAX_LABEL_VALUE_LENGTH,
  MAX_LABELS,
  MAX_PRIORITY,
  MAX_RATE_PER_SECOND,
  MAX_RETRIES,
  MIN_PRIORITY,
  MIN_RATE_PER_SECOND,
} from './limits.js';
import { backoffMs, bounded, durationSecs, wholeNumber } from './numbers.js';

const idMessage =
  'may only contain letters, digits, "-" and "_" (at most 128 characters), because it becomes part of NATS subjects and KV keys';

/**
 * Any text Tasked allows ("build.linux", "gen/x"), without control characters. Where an id must be
 * a single subject or key token it is encoded (see `taskKeyToken`), so users are not restricted.
 */
export const TaskId = z
  .string()
  .min(1, 'must not be empty')
  .max(MAX_ID_LENGTH, `must be at most ${MAX_ID_LENGTH} characters`)
  .regex(/^[^\u0000-\u001f\u007f]+$/, 'must not contain control characters (newlines, tabs, ...)');
export const QueueName = z.string().min(1, 'must not be empty').max(64, idMessage).regex(SAFE_TOKEN, idMessage);

export const BACKOFF_TYPES = ['exponential', 'fixed', 'linear'] as const;
/** Tasked's spellings also include `exponential_jitter` (exponential with jitter on). */
const BACKOFF_SPELLINGS = [...BACKOFF_TYPES, 'exponential_jitter'] as const;

export const Backoff = z.strictObject({
  type: z.enum(BACKOFF_TYPES),
  initial_delay_ms: z.number().int().min(0),
  max_delay_ms: z.number().int().min(0),
  multiplier: z.number().min(1),
  jitter: z.boolean(),
});
export type Backoff = z.infer<typeof Backoff>;

/** Tasked's default: exponential from 1 s, doubling, no jitter; capped only by the one-day bound. */
export const DEFAULT_BACKOFF: Backoff = {
  type: 'exponential',
  initial_delay_ms: 1000,
  max_delay_ms: MAX_BACKOFF_DELAY_MS,
  multiplier: 2,
  jitter: false,
};
/** Tasked's defaults for a task whose flow and queue say nothing. */
export const DEFAULT_RETRIES = 3;
export const DEFAULT_TIMEOUT_SECS = 300;

const backoffFields = {
  initial_delay_ms: backoffMs().optional(),
  delay_ms: backoffMs().optional(),
  max_delay_ms: backoffMs().optional(),
  multiplier: bounded(1, 'must be 1 or more', MAX_BACKOFF_MULTIPLIER, `must be at most ${MAX_BACKOFF_MULTIPLIER}`).optional(),
  jitter: z.boolean().optional(),
};
const TaggedFields = z.strictObject(backoffFields);

type BackoffSpelling = (typeof BACKOFF_SPELLINGS)[number];
const spelled = (spelling: BackoffSpelling): { type: Backoff['type']; jitter?: boolean } =>
  spelling === 'exponential_jitter' ? { type: 'exponential', jitter: true } : { type: spelling };

/**
 * Accepted spellings: "exponential"; { "type": "fixed", "delay_ms": 200 };
 * and Tasked's externally tagged forms { "exponential": { "initial_delay_ms": 100 } },
 * { "exponential_jitter": { ... } }, { "fixed": { "delay_ms": 200 } }.
 * Each object form refuses the others' keys outright, so a mistake inside one is reported at its
 * field rather than as "matches none of the forms".
 */
export const BackoffInput = z
  .union(
    [
      z.enum(BACKOFF_SPELLINGS, { error: `must be one of ${BACKOFF_SPELLINGS.join(', ')} or an object` }),
      z.strictObject({
        type: z.enum(BACKOFF_SPELLINGS, { error: `must be one of ${BACKOFF_SPELLINGS.join(', ')}` }).optional(),
        ...backoffFields,
        exponential: z.never().optional(),
        exponential_jitter: z.never().optional(),
        fixed: z.never().optional(),
        linear: z.never().optional(),
      }),
      z.strictObject({ exponential: TaggedFields }),
      z.strictObject({ exponential_jitter: TaggedFields }),
      z.strictObject({ fixed: TaggedFields }),
      z.strictObject({ linear: TaggedFields }),
    ],
    { error: `must be one of ${BACKOFF_SPELLINGS.join(', ')} or an object` },
  )
  .transform((input): Backoff => {
    if (typeof input === 'string') return { ...DEFAULT_BACKOFF, ...spelled(input) };
    const tagged = BACKOFF_SPELLINGS.find((name) => name in input && (input as Record<string, unknown>)[name] !== undefined);
    const [form, fields] =
      tagged !== undefined
        ? [spelled(tagged), (input as Record<string, z.infer<typeof TaggedFields>>)[tagged]!]
        : [spelled(('type' in input && input.type) || DEFAULT_BACKOFF.type), input as z.infer<typeof TaggedFields>];
    return {
      type: form.type,
      initial_delay_ms: fields.initial_delay_ms ?? fields.delay_ms ?? DEFAULT_BACKOFF.initial_delay_ms,
      max_delay_ms: fields.max_delay_ms ?? DEFAULT_BACKOFF.max_delay_ms,
      multiplier: fields.multiplier ?? DEFAULT_BACKOFF.multiplier,
      jitter: fields.jitter ?? form.jitter ?? DEFAULT_BACKOFF.jitter,
    };
  });

/**
 * Where a queue's executors read a secret on their own host (Tasked's queue `secrets`): an
 * environment variable of the executor process, or a file (absolute path, no "..", not a symlink).
 */
export const QueueSecretSource = z.union([z.strictObject({ env: z.string().min(1).max(256) }), z.strictObject({ file: z.string().min(1).max(4096).startsWith('/', 'must be an absolute path') })], {
  error: 'must be {"env": "VARIABLE"} or {"file": "/absolute/path"}',
});
export type QueueSecretSource = z.infer<typeof QueueSecretSource>;
const MAX_QUEUE_SECRETS = 100;
const QueueSecrets = z
  .record(z.string().regex(/^[A-Za-z0-9_.-]{1,128}$/, 'a secret name is 1 to 128 letters, digits, "_", "-" or "."'), QueueSecretSource)
  .refine((secrets) => Object.keys(secrets).length <= MAX_QUEUE_SECRETS, `a queue may name at most ${MAX_QUEUE_SECRETS} secrets`);

export const QueuePolicyInput = z.strictObject({
  concurrency: wholeNumber(1, MAX_CONCURRENCY, 'must be at least 1 (delete the queue policy for no limit)').optional(),
  per_key_concurrency: wholeNumber(1, MAX_CONCURRENCY).optional(),
  rate_limit: z
    .strictObject({
      per_second: bounded(
        MIN_RATE_PER_SECOND,
        'must be at least 1/86400 (one task a day; tasks started per second)',
        MAX_RATE_PER_SECOND,
        `must be at most ${MAX_RATE_PER_SECOND} (tasks started per second)`,
      ),
      max_burst: wholeNumber(1, MAX_BURST).optional(),
    })
    .optional(),
  max_retries: wholeNumber(0, MAX_RETRIES, 'must be 0 or more').optional(),
  timeout_secs: durationSecs('timeout').optional(),
  backoff: BackoffInput.optional(),
  secrets: QueueSecrets.optional(),
});

/**
 * A queue policy as a stored flow definition records it: the shape only, without the input bounds,
 * so that definitions accepted under earlier bounds still read back from the log.
 */
const RecordedQueuePolicy = z.strictObject({
  concurrency: z.number().int().min(1).optional(),
  per_key_concurrency: z.number().int().min(1).optional(),
  rate_limit: z.strictObject({ per_second: z.number().positive(), max_burst: z.number().int().min(1).optional() }).optional(),
  max_retries: z.number().int().min(0).max(MAX_RETRIES).optional(),
  timeout_secs: z.number().positive().optional(),
  backoff: Backoff.optional(),
  secrets: z.record(z.string(), QueueSecretSource).optional(),
});

export const DEFAULT_QUEUE = 'default';

/**
 * When a task runs relative to its dependencies (Airflow's vocabulary). "Failed" below means failed,
 * timed out, upstream_failed or cancelled; "done" means any terminal status.
 */
export const TRIGGER_RULES = ['none_failed', 'all_success', 'all_done', 'one_success', 'one_failed', 'all_failed', 'none_skipped', 'always'] as const;
export type TriggerRule = (typeof TRIGGER_RULES)[number];
/** Tasked's rule: every dependency succeeded or was skipped by its condition. */
export const DEFAULT_TRIGGER_RULE: TriggerRule = 'none_failed';

/** A flow's `params`: a JSON object its tasks read as `${params.<name>}` and `params.<name>` in expressions. */
export const FlowParams = z.record(z.string(), z.unknown(), { error: 'must be a JSON object of named values' });

/** Longest webhook URL accepted: longer ones are almost always a mistake (or data smuggled in a query). */
export const MAX_WEBHOOK_URL_LENGTH = 2048;
/** Secret names as the secrets store spells them (PUT /api/v1/secrets/NAME). */
const SECRET_NAME = /^[A-Za-z0-9_.-]{1,128}$/;

/**
 * A webhook URL: http or https, without credentials (a signature proves the sender, see
 * `webhooks.secret`). Whether its address may be reached is the executor's SSRF policy, judged at
 * delivery, where the name is resolved.
 */
const WebhookUrl = z
  .string({ error: 'must be a URL (a string)' })
  .max(MAX_WEBHOOK_URL_LENGTH, `must be at most ${MAX_WEBHOOK_URL_LENGTH} characters`)
  .superRefine((text, ctx) => {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be an absolute http or https URL, such as https://hooks.example.com/flows' });
      return;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') ctx.addIssue({ code: 'custom', message: `must use http or https, not ${url.protocol.slice(0, -1)}` });
    else if (url.username !== '' || url.password !== '') ctx.addIssue({ code: 'custom', message: 'must not carry a user name or password; set webhooks.secret and check the webhook-signature header instead' });
  });

/** Tasked's flow `webhooks`, plus `secret`: the name of the signing secret in the secrets store. */
export const WebhooksInput = z.strictObject(
  {
    on_complete: WebhookUrl.nullish(),
    on_failure: WebhookUrl.nullish(),
    secret: z.string({ error: 'must name a secret (a string)' }).regex(SECRET_NAME, 'must name a secret: 1 to 128 letters, digits, "_", "-" or "."').optional(),
  },
  { error: 'must be an object such as {"on_complete": "https://…", "on_failure": "https://…"}' },
);

/** What a flow's definition records of its webhooks: the URLs to call and the secret that signs them. */
export const Webhooks = z.object({
  on_complete: z.string().optional(),
  on_failure: z.string().optional(),
  secret: z.string().optional(),
});
export type Webhooks = z.infer<typeof Webhooks>;

/** Instances of one map task that may be ready or running at once, unless it says otherwise. */
export const DEFAULT_MAP_CONCURRENCY = 10;
/** The most a map task may say: beyond, a queue's own concurrency limit is the tool. */
export const MAX_MAP_CONCURRENCY = 1000;
/** Names `${...}` references already use: a map's `as` may not take one. */
export const RESERVED_MAP_NAMES = ['tasks', 'flow', 'task', 'params', 'secrets', 'input', 'artifacts'] as const;

/**
 * A map task runs once per item of `items`, a CEL expression (over `tasks`, `params` and `flow`)
 * yielding a list; its config and input read the item as `${<as>}` and `${<as>.field}`.
 */
export const MapInput = z.strictObject({
  items: z.string({ error: 'must be a CEL expression yielding a list, such as tasks.list.output.json.items' }).min(1, 'must not be empty').max(MAX_CONDITION_LENGTH, `must be at most ${MAX_CONDITION_LENGTH} characters`),
  as: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'must be a name: a letter or "_", then letters, digits or "_" (at most 64 characters)')
    .refine((name) => !(RESERVED_MAP_NAMES as readonly string[]).includes(name), { message: `must not be one of ${RESERVED_MAP_NAMES.join(', ')}, which references already use` })
    .optional(),
  concurrency: wholeNumber(1, MAX_MAP_CONCURRENCY).optional(),
});
/** A map as a definition records it, its defaults made explicit. */
export const MapSpec = z.object({ items: z.string(), as: z.string(), concurrency: z.number().int().min(1) });
export type MapSpec = z.infer<typeof MapSpec>;

/** A task as the user writes it (Tasked-compatible). `executor`'s config is checked separately. */
export const TaskInput = z.object({
  id: TaskId,
  name: z.string().max(200).optional(),
  description: z.string().max(2000).optional(),
  executor: z.string().min(1, 'must name an executor'),
  config: z.unknown().optional(),
  depends_on: z.array(z.string()).optional(),
  retries: wholeNumber(0, MAX_RETRIES, 'must be 0 or more').optional(),
  timeout_secs: durationSecs('timeout').optional(),
  backoff: BackoffInput.optional(),
  queue: QueueName.optional(),
  priority: wholeNumber(MIN_PRIORITY, MAX_PRIORITY).optional(),
  concurrency_key: z.string().min(1).max(128).optional(),
  input: z.unknown().optional(),
  condition: z.string().max(MAX_CONDITION_LENGTH, `must be at most ${MAX_CONDITION_LENGTH} characters`).optional(),
  trigger_rule: z.enum(TRIGGER_RULES, { error: `must be one of ${TRIGGER_RULES.join(', ')}` }).optional(),
  map: MapInput.optional(),
  /** Tasked's: names of tasks a spawn task promises to generate, which other tasks may depend on as "<id>/<name>". */
  spawn_output: z.array(z.string().min(1, 'must not be empty').max(MAX_ID_LENGTH)).max(1000, 'must list at most 1000 names').optional(),
});
export type TaskInput = z.input<typeof TaskInput>;

export const FlowInput = z.object({
  name: z.string().max(200).optional(),
  description: z.string().max(2000).optional(),
  queue: QueueName.optional(),
  labels: z
    .record(
      z.string().min(1, 'a label needs a name').max(MAX_LABEL_KEY_LENGTH, `a label's name may have at most ${MAX_LABEL_KEY_LENGTH} characters`),
      z.string().max(MAX_LABEL_VALUE_LENGTH, `must be at most ${MAX_LABEL_VALUE_LENGTH} characters`),
    )
    .refine((labels) => Object.keys(labels).length <= MAX_LABELS, `a flow may have at most ${MAX_LABELS} labels`)
    .optional(),
  timeout_secs: durationSecs('flow may run').optional(),
  /** The policy of the flow's queue, set (replaced) at submission as Tasked's MCP does. */
  queue_config: QueuePolicyInput.optional(),
  /** Tasked's flag: the first task failure cancels everything still pending or running. */
  fail_fast: z.boolean().optional(),
  params: FlowParams.optional(),
  /** Called once the flow has ended (see docs/flows.md, Webhooks). */
  webhooks: WebhooksInput.optional(),
  tasks: z.array(z.unknown()).min(1, 'a flow needs at least one task'),
});

/** A stored artifact as a task's bindings carry it: its object in the artifacts store, size and SHA-256. */
const BoundArtifact = z.object({ object: z.string().min(1), bytes: z.number().int().min(0), sha256: z.string().regex(/^[0-9a-f]{64}$/) });

/**
 * A task after validation. Defaults that belong to the flow (queue, priority) are made explicit;
 * retries, timeout and backoff stay unset when the user left them so, because the queue's policy
 * supplies them at dispatch (where `task.dispatched` records the values used).
 */
export const TaskSpec = z.object({
  id: TaskId,
  name: z.string().optional(),
  description: z.string().optional(),
  executor: z.string(),
  config: z.record(z.string(), z.unknown()),
  depends_on: z.array(TaskId),
  /** Unset means: the queue's max_retries, else DEFAULT_RETRIES. */
  retries: z.number().int().min(0).optional(),
  /** Unset means: the queue's timeout_secs, else DEFAULT_TIMEOUT_SECS. */
  timeout_secs: z.number().positive().optional(),
  /** Unset means: the queue's backoff, else DEFAULT_BACKOFF. */
  backoff: Backoff.optional(),
  queue: QueueName,
  priority: z.number().int(),
  concurrency_key: z.string().optional(),
  input: z.unknown().optional(),
  condition: z.string().optional(),
  /** Unset means DEFAULT_TRIGGER_RULE. */
  trigger_rule: z.enum(TRIGGER_RULES).optional(),
  /** Runs the task once per item (see MapInput). */
  map: MapSpec.optional(),
  /** A spawn task's promised outputs: other tasks may depend on "<id>/<name>" for each name. */
  spawn_output: z.array(z.string()).optional(),
  /** Set on tasks a spawn task generated (added at run time): the spawn task. */
  spawned_by: TaskId.optional(),
  /** Set on a map task's instances (added at run time): the map task, the item's index and the item. */
  instance_of: z.object({ task: TaskId, index: z.number().int().min(0), item: z.unknown() }).optional(),
  /**
   * Set by the planner in `task.ready` for steps that read upstream data directly (transform): the
   * outputs and params the step sees, so the history records exactly what it received; with the
   * stored files `${tasks.<id>.artifacts.<name>}` references name (the executor fetches them).
   */
  bindings: z
    .object({ tasks: z.record(TaskId, z.object({ output: z.unknown().optional(), artifacts: z.record(z.string(), BoundArtifact).optional() })), params: z.unknown(), flow: z.object({ id: z.string() }) })
    .optional(),
  /**
   * Set by the planner in `task.ready`: paths of strings in `config` and `input` that name run-time
   * references (`${task.…}`, `${secrets.…}`), which the executor resolves whole at each attempt.
   */
  run_time_strings: z.array(z.array(z.union([z.string(), z.number()]))).optional(),
  /** Set by the dispatcher from the queue's policy: secrets the executor reads on its own host. */
  queue_secrets: z.record(z.string(), QueueSecretSource).optional(),
});
export type TaskSpec = z.infer<typeof TaskSpec>;

export const FlowDefinition = z.object({
  name: z.string().optional(),
  description: z.string().optional(),
  queue: QueueName,
  labels: z.record(z.string(), z.string()).optional(),
  timeout_secs: z.number().positive().optional(),
  queue_config: RecordedQueuePolicy.optional(),
  fail_fast: z.boolean().optional(),
  params: z.record(z.string(), z.unknown()).optional(),
  webhooks: Webhooks.optional(),
  /** Fields of the submission Taskstream ignored, each named, so the history says so. */
  warnings: z.array(z.string()).optional(),
  tasks: z.array(TaskSpec).min(1),
});
export type FlowDefinition = z.infer<typeof FlowDefinition>;

/** The whole submission as a user writes it, for documentation and editors (schemas/flow.schema.json). */
export const FlowSubmission = FlowInput.extend({ tasks: z.array(TaskInput).min(1) });
