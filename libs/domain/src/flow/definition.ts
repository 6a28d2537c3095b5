import { z } from 'zod';
import { MAX_ID_LENGTH, SAFE_TOKEN } from '../ids.js';

const idMessage =
  'may only contain letters, digits, "-" and "_" (at most 128 characters), because it becomes part of NATS subjects and KV keys';

export const TaskId = z.string().min(1, 'must not be empty').max(MAX_ID_LENGTH, idMessage).regex(SAFE_TOKEN, idMessage);
export const QueueName = z.string().min(1, 'must not be empty').max(64, idMessage).regex(SAFE_TOKEN, idMessage);

export const BACKOFF_TYPES = ['exponential', 'fixed', 'linear'] as const;

export const Backoff = z.strictObject({
  type: z.enum(BACKOFF_TYPES),
  initial_delay_ms: z.number().int().min(0),
  max_delay_ms: z.number().int().min(0),
  multiplier: z.number().min(1),
  jitter: z.boolean(),
});
export type Backoff = z.infer<typeof Backoff>;

export const DEFAULT_BACKOFF: Backoff = {
  type: 'exponential',
  initial_delay_ms: 500,
  max_delay_ms: 30_000,
  multiplier: 2,
  jitter: true,
};

const BackoffFields = z.strictObject({
  type: z.enum(BACKOFF_TYPES, { error: `must be one of ${BACKOFF_TYPES.join(', ')}` }).optional(),
  initial_delay_ms: z.number().int().min(0, 'must be 0 or more').optional(),
  delay_ms: z.number().int().min(0, 'must be 0 or more').optional(),
  max_delay_ms: z.number().int().min(0, 'must be 0 or more').optional(),
  multiplier: z.number().min(1, 'must be 1 or more').optional(),
  jitter: z.boolean().optional(),
});

/**
 * Accepted spellings: "exponential"; { "type": "fixed", "delay_ms": 200 };
 * and the externally tagged form { "exponential": { "initial_delay_ms": 100 } }.
 */
export const BackoffInput = z
  .union([
    z.enum(BACKOFF_TYPES, { error: `must be one of ${BACKOFF_TYPES.join(', ')} or an object` }),
    BackoffFields,
    z.strictObject({ exponential: BackoffFields.omit({ type: true }) }),
    z.strictObject({ fixed: BackoffFields.omit({ type: true }) }),
    z.strictObject({ linear: BackoffFields.omit({ type: true }) }),
  ])
  .transform((input): Backoff => {
    if (typeof input === 'string') return { ...DEFAULT_BACKOFF, type: input };
    const [type, fields] =
      'exponential' in input
        ? (['exponential', input.exponential] as const)
        : 'fixed' in input
          ? (['fixed', input.fixed] as const)
          : 'linear' in input
            ? (['linear', input.linear] as const)
            : ([input.type ?? DEFAULT_BACKOFF.type, input] as const);
    return {
      type,
      initial_delay_ms: fields.initial_delay_ms ?? fields.delay_ms ?? DEFAULT_BACKOFF.initial_delay_ms,
      max_delay_ms: fields.max_delay_ms ?? DEFAULT_BACKOFF.max_delay_ms,
      multiplier: fields.multiplier ?? DEFAULT_BACKOFF.multiplier,
      jitter: fields.jitter ?? DEFAULT_BACKOFF.jitter,
    };
  });

export const QueuePolicyInput = z.strictObject({
  concurrency: z.number().int('must be a whole number').min(1, 'must be at least 1 (delete the queue policy for no limit)').optional(),
  per_key_concurrency: z.number().int('must be a whole number').min(1, 'must be at least 1').optional(),
  rate_limit: z
    .strictObject({
      per_second: z.number().positive('must be more than 0 (tasks started per second)'),
      max_burst: z.number().int('must be a whole number').min(1, 'must be at least 1').optional(),
    })
    .optional(),
  max_retries: z.number().int().min(0, 'must be 0 or more').max(100).optional(),
  timeout_secs: z.number().positive('must be more than 0').optional(),
  backoff: BackoffInput.optional(),
});

export const DEFAULT_QUEUE = 'default';

/** A task as the user writes it (Tasked-compatible). `executor`'s config is checked separately. */
export const TaskInput = z.strictObject({
  id: TaskId,
  name: z.string().max(200).optional(),
  description: z.string().max(2000).optional(),
  executor: z.string().min(1, 'must name an executor'),
  config: z.unknown().optional(),
  depends_on: z.array(z.string()).optional(),
  retries: z.number().int().min(0, 'must be 0 or more').max(100, 'must be at most 100').optional(),
  timeout_secs: z.number().positive('must be more than 0').max(604_800, 'must be at most 7 days').optional(),
  backoff: BackoffInput.optional(),
  queue: QueueName.optional(),
  priority: z.number().int().min(-1000).max(1000).optional(),
  concurrency_key: z.string().min(1).max(128).optional(),
  input: z.unknown().optional(),
  condition: z.string().optional(),
});
export type TaskInput = z.input<typeof TaskInput>;

export const FlowInput = z.strictObject({
  name: z.string().max(200).optional(),
  description: z.string().max(2000).optional(),
  queue: QueueName.optional(),
  labels: z.record(z.string(), z.string()).optional(),
  timeout_secs: z.number().positive('must be more than 0').optional(),
  /** The policy of the flow's queue, set (replaced) at submission as Tasked's MCP does. */
  queue_config: QueuePolicyInput.optional(),
  tasks: z.array(z.unknown()).min(1, 'a flow needs at least one task'),
});

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
  /** Unset means: the queue's max_retries, else 0. */
  retries: z.number().int().min(0).optional(),
  /** Unset means: the queue's timeout_secs, else none. */
  timeout_secs: z.number().positive().optional(),
  /** Unset means: the queue's backoff, else DEFAULT_BACKOFF. */
  backoff: Backoff.optional(),
  queue: QueueName,
  priority: z.number().int(),
  concurrency_key: z.string().optional(),
  input: z.unknown().optional(),
  condition: z.string().optional(),
});
export type TaskSpec = z.infer<typeof TaskSpec>;

export const FlowDefinition = z.object({
  name: z.string().optional(),
  description: z.string().optional(),
  queue: QueueName,
  labels: z.record(z.string(), z.string()).optional(),
  timeout_secs: z.number().positive().optional(),
  queue_config: QueuePolicyInput.optional(),
  tasks: z.array(TaskSpec).min(1),
});
export type FlowDefinition = z.infer<typeof FlowDefinition>;

/** The whole submission as a user writes it, for documentation and editors (schemas/flow.schema.json). */
export const FlowSubmission = FlowInput.extend({ tasks: z.array(TaskInput).min(1) });
