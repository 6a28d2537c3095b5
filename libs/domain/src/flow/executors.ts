import { z } from 'zod';
import { MAX_DELAY_MS, MAX_TIMEOUT_SECS } from './limits.js';
import { bounded, durationSecs, wholeMs } from './numbers.js';

/**
 * Executor configs. Each executor validates its own `config`; a flow naming an executor that is
 * not listed here is rejected at submission, never at run time.
 */

/**
 * A shell step's `env` values. Besides text, any JSON value is accepted, because a value that is
 * exactly one `${...}` reference becomes the referenced value with its type (a number, an object):
 * the step passes numbers, booleans, null, arrays and objects as their compact JSON text (`3`,
 * `true`, `null`, `{"a":1}`). Tasked drops non-text values instead.
 */
const EnvValue = z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(z.unknown()), z.record(z.string(), z.unknown())], {
  error: 'must be text or another JSON value (numbers, booleans, null, arrays and objects are passed as their JSON text)',
});
const EnvMap = z.record(z.string(), EnvValue);
/** An `args` item: text, or a number or boolean passed as its text (`3`, `true`). */
const Arg = z.union([z.string(), z.number(), z.boolean()], { error: 'must be text, a number or a boolean' });

export const ShellConfig = z
  .strictObject({
    command: z.string().min(1, 'must not be empty').optional(),
    args: z.array(Arg).min(1, 'must list the program and its arguments').optional(),
    cwd: z.string().min(1).optional(),
    env: EnvMap.optional(),
  })
  .refine((c) => (c.command === undefined) !== (c.args === undefined), {
    message: 'give exactly one of "command" (run through /bin/sh -c) or "args" (run without a shell)',
  });
export type ShellConfig = z.infer<typeof ShellConfig>;

export const HTTP_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'] as const;

/**
 * As Tasked: the method defaults to POST, and without a `body` the task's `input` is sent as the
 * JSON body (POST, PUT and PATCH only).
 */
export const HttpConfig = z.strictObject({
  url: z.url({ protocol: /^https?$/, error: 'must be an absolute http:// or https:// URL' }),
  method: z
    .string()
    .transform((m) => m.toUpperCase())
    .pipe(z.enum(HTTP_METHODS, { error: `must be one of ${HTTP_METHODS.join(', ')}` }))
    .default('POST'),
  headers: z.record(z.string(), z.string()).optional(),
  body: z.unknown().optional(),
  /** The request's own limit (Tasked's); the task's timeout still bounds the whole attempt. */
  timeout_secs: durationSecs('timeout').optional(),
  /** Tasked's field: "inline" (wait for the answer) is all there is; Tasked's "callback" mode fails every task there. */
  mode: z.literal('inline', { error: 'must be "inline" (the step waits for the answer); Tasked\'s "callback" mode is not implemented, there or here' }).optional(),
});
export type HttpConfig = z.infer<typeof HttpConfig>;

export const NoopConfig = z.strictObject({
  output: z.unknown().optional(),
});
export type NoopConfig = z.infer<typeof NoopConfig>;

/**
 * Waits `ms`, or Tasked's `seconds` (fractions allowed); the step always receives whole
 * milliseconds. Its output is Tasked's `{"delayed_seconds": n}`, or `output` when the config gives one.
 */
export const DelayConfig = z
  .strictObject({
    ms: wholeMs(MAX_DELAY_MS, `must be at most ${MAX_DELAY_MS} (365 days)`).optional(),
    seconds: bounded(0, 'must be 0 or more', MAX_TIMEOUT_SECS, `must be at most ${MAX_TIMEOUT_SECS} seconds (365 days)`).optional(),
    output: z.unknown().optional(),
  })
  .refine((c) => (c.ms === undefined) !== (c.seconds === undefined), { message: 'give exactly one of "ms" or "seconds"' })
  .transform(({ ms, seconds, output }) => ({ ms: ms ?? Math.round(seconds! * 1000), ...(output !== undefined && { output }) }));
export type DelayConfig = z.output<typeof DelayConfig>;

const MAX_TRANSFORM_EXPR_LENGTH = 4096;

/**
 * Taskstream's own (Tasked has no transform): the value of a CEL expression over the task's
 * resolved `input`, the flow's `params` and the outputs of upstream tasks (`tasks.<id>.output`)
 * becomes the output. No I/O.
 */
export const TransformConfig = z.strictObject({
  expr: z.string().min(1, 'must not be empty').max(MAX_TRANSFORM_EXPR_LENGTH, `must be at most ${MAX_TRANSFORM_EXPR_LENGTH} characters`),
});
export type TransformConfig = z.infer<typeof TransformConfig>;

/** Longest approval message: it is shown to people and stored in the task's output. */
export const MAX_APPROVAL_MESSAGE_LENGTH = 4000;
/** Tasked's default approval message. */
export const DEFAULT_APPROVAL_MESSAGE = 'Approval required';

/**
 * Tasked's approval: the task waits (holding no executor or queue slot) until a person acks it
 * with its code. No step runs it: the planner records the wait, an ack or its timeout ends it.
 */
export const ApprovalConfig = z.strictObject({
  message: z
    .string({ error: 'must be text: what the approver is asked, e.g. "Deploy build 42 to production?"' })
    .min(1, 'must not be empty; leave "message" out for "Approval required"')
    .max(MAX_APPROVAL_MESSAGE_LENGTH, `must be at most ${MAX_APPROVAL_MESSAGE_LENGTH} characters`)
    .optional(),
});
export type ApprovalConfig = z.infer<typeof ApprovalConfig>;

/** Longest `match` expression of a wait task. */
export const MAX_MATCH_EXPR_LENGTH = 4096;
/** How far back a wait task looks for a signal sent before it started waiting, unless it says otherwise. */
export const DEFAULT_SIGNAL_LOOKBACK_SECS = 300;
/** The longest look-back: signals are kept this long (one day). */
export const MAX_SIGNAL_LOOKBACK_SECS = 86_400;
/** Signal names travel in NATS subjects: one safe token. */
export const SIGNAL_NAME = /^[A-Za-z0-9_-]{1,128}$/;

/**
 * Waits for a signal (`POST /api/v1/signals/{name}`) whose payload `match` accepts: a CEL
 * expression over `signal` (the payload), `params` and `tasks`; without one, any signal of the
 * name. A signal sent up to `lookback_secs` before the wait began counts too.
 */
export const WaitConfig = z.strictObject({
  signal: z.string({ error: 'must be the name of the signal to wait for' }).regex(SIGNAL_NAME, 'must be 1 to 128 letters, digits, "_" or "-"'),
  match: z.string().min(1, 'must not be empty; leave "match" out to accept any signal of the name').max(MAX_MATCH_EXPR_LENGTH, `must be at most ${MAX_MATCH_EXPR_LENGTH} characters`).optional(),
  lookback_secs: bounded(0, 'must be 0 or more', MAX_SIGNAL_LOOKBACK_SECS, `must be at most ${MAX_SIGNAL_LOOKBACK_SECS} seconds (signals are kept one day)`).optional(),
});
export type WaitConfig = z.infer<typeof WaitConfig>;

/** How deep flows may start flows (Tasked's trigger depth). */
export const MAX_TRIGGER_DEPTH = 8;

/**
 * Starts another flow (a child with its own history and the parent's lineage). Tasked's form gives
 * `flow` (a flow definition; its queue is `queue`, else the flow's own, else the task's); Taskstream's
 * may instead name a `template` (and `version`) and pass `params`. With `wait` (the default) the
 * task ends when the child ends, with Tasked's summary and the child's outputs.
 */
export const TriggerConfig = z
  .strictObject({
    queue: z.string().min(1).optional(),
    flow: z.unknown().optional(),
    template: z.string().min(1).max(128).optional(),
    version: z.number().int().min(1).optional(),
    params: z.record(z.string(), z.unknown()).optional(),
    wait: z.boolean({ error: 'must be true (the task ends with the child flow) or false (it ends once the child is submitted)' }).default(true),
  })
  .refine((c) => (c.flow === undefined) !== (c.template === undefined), { message: 'give exactly one of "flow" (a flow definition) or "template" (a template name)' })
  .refine((c) => c.version === undefined || c.template !== undefined, { message: '"version" goes with "template"' });
export type TriggerConfig = z.output<typeof TriggerConfig>;

/**
 * Tasked's spawn: runs an inner step (`executor` and its `config`, or Tasked's shorthand: the
 * config of a shell step, `command` and the rest), then adds the tasks its output lists to the
 * flow. The inner step may be any step but another spawn (or a task that waits).
 */
export const SpawnConfig = z
  .strictObject({
    executor: z.string({ error: 'must name the inner step\'s executor, such as "shell" or "http"' }).optional(),
    config: z.record(z.string(), z.unknown(), { error: 'must be the inner step\'s config (an object)' }).optional(),
    command: z.unknown().optional(),
    args: z.unknown().optional(),
    cwd: z.unknown().optional(),
    env: z.unknown().optional(),
  })
  .superRefine((c, ctx) => {
    const shorthand = c.command !== undefined || c.args !== undefined || c.cwd !== undefined || c.env !== undefined;
    if (c.executor === undefined) {
      if (!shorthand) ctx.addIssue({ code: 'custom', message: 'give "executor" and "config" (the inner step), or a shell step\'s "command" (Tasked\'s shorthand)' });
      return;
    }
    if (shorthand) ctx.addIssue({ code: 'custom', message: 'with "executor", put the inner step\'s settings in "config"' });
    if (!(SPAWN_INNER_EXECUTORS as readonly string[]).includes(c.executor)) {
      ctx.addIssue({ code: 'custom', path: ['executor'], message: `the inner step must be one of ${SPAWN_INNER_EXECUTORS.join(', ')}${c.executor === 'spawn' ? ' (a spawn cannot run a spawn)' : ''}` });
    }
  });
export type SpawnConfig = z.infer<typeof SpawnConfig>;
/** Steps a spawn may run inside it. */
export const SPAWN_INNER_EXECUTORS = ['shell', 'http', 'noop', 'delay', 'transform'] as const;

/** The inner step of a spawn task: its executor and config (Tasked's shorthand is a shell step). */
export function spawnInner(config: Record<string, unknown>): { executor: string; config: Record<string, unknown> } {
  if (typeof config.executor === 'string') return { executor: config.executor, config: (config.config as Record<string, unknown> | undefined) ?? {} };
  const { executor: _e, config: _c, ...shell } = config;
  return { executor: 'shell', config: shell };
}

export const EXECUTOR_CONFIGS = {
  shell: ShellConfig,
  http: HttpConfig,
  noop: NoopConfig,
  delay: DelayConfig,
  transform: TransformConfig,
  approval: ApprovalConfig,
  wait: WaitConfig,
  trigger: TriggerConfig,
  spawn: SpawnConfig,
} as const;

export type ExecutorName = keyof typeof EXECUTOR_CONFIGS;
export const EXECUTOR_NAMES = Object.keys(EXECUTOR_CONFIGS) as ExecutorName[];

export function isExecutorName(name: string): name is ExecutorName {
  return Object.hasOwn(EXECUTOR_CONFIGS, name);
}

/** Executors no executor pool runs: the planner puts their tasks in `waiting` instead of `ready`. */
export const WAITING_EXECUTORS: readonly ExecutorName[] = ['approval', 'wait', 'trigger'];
/** Executors whose steps executor pools run. */
export const STEP_EXECUTORS = EXECUTOR_NAMES.filter((name) => !WAITING_EXECUTORS.includes(name));

/** Executors Tasked registers that Taskstream does not run: a flow using one is refused at submission, saying so. */
export const TASKED_ONLY_EXECUTORS = ['container', 'agent', 'callback', 'remote', 'api'] as const;

const NAME_CHARS = 64;

/**
 * Why a flow naming executor `name` cannot run, listing the executors there are: Tasked's
 * executors that Taskstream does not run are named as such, any other name is unknown.
 */
export function unknownExecutorMessage(name: string): string {
  const available = EXECUTOR_NAMES.join(', ');
  if ((TASKED_ONLY_EXECUTORS as readonly string[]).includes(name)) {
    return `Tasked's ${JSON.stringify(name)} executor is not available in Taskstream; available: ${available}`;
  }
  return `unknown executor ${JSON.stringify(clipName(name))}; use one of ${available}`;
}

/** A user's name cut to NAME_CHARS characters, ending "…" when cut, never inside a surrogate pair. */
function clipName(name: string): string {
  if (name.length <= NAME_CHARS) return name;
  let end = NAME_CHARS - 1;
  const last = name.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return `${name.slice(0, end)}…`;
}
