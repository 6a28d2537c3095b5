import { z } from 'zod';
import { MAX_DELAY_MS, MAX_TIMEOUT_SECS } from './limits.js';
import { bounded, durationSecs, wholeMs } from './numbers.js';

/**
 * Executor configs. Each executor validates its own `config`; a flow naming an executor that is
 * not listed here is rejected at submission, never at run time.
 */
const EnvMap = z.record(z.string(), z.string());

export const ShellConfig = z
  .strictObject({
    command: z.string().min(1, 'must not be empty').optional(),
    args: z.array(z.string()).min(1, 'must list the program and its arguments').optional(),
    cwd: z.string().min(1).optional(),
    env: EnvMap.optional(),
  })
  .refine((c) => (c.command === undefined) !== (c.args === undefined), {
    message: 'give exactly one of "command" (run through /bin/sh -c) or "args" (run without a shell)',
  });
export type ShellConfig = z.infer<typeof ShellConfig>;

export const HTTP_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'] as const;

export const HttpConfig = z.strictObject({
  url: z.url({ protocol: /^https?$/, error: 'must be an absolute http:// or https:// URL' }),
  method: z
    .string()
    .transform((m) => m.toUpperCase())
    .pipe(z.enum(HTTP_METHODS, { error: `must be one of ${HTTP_METHODS.join(', ')}` }))
    .default('GET'),
  headers: z.record(z.string(), z.string()).optional(),
  body: z.unknown().optional(),
  /** The request's own limit (Tasked's); the task's timeout still bounds the whole attempt. */
  timeout_secs: durationSecs('timeout').optional(),
});
export type HttpConfig = z.infer<typeof HttpConfig>;

export const NoopConfig = z.strictObject({
  output: z.unknown().optional(),
});
export type NoopConfig = z.infer<typeof NoopConfig>;

/** Waits `ms`, or Tasked's `seconds` (fractions allowed); the step always receives whole milliseconds. */
export const DelayConfig = z
  .strictObject({
    ms: wholeMs(MAX_DELAY_MS, `must be at most ${MAX_DELAY_MS} (365 days)`).optional(),
    seconds: bounded(0, 'must be 0 or more', MAX_TIMEOUT_SECS, `must be at most ${MAX_TIMEOUT_SECS} seconds (365 days)`).optional(),
    output: z.unknown().optional(),
  })
  .refine((c) => (c.ms === undefined) !== (c.seconds === undefined), { message: 'give exactly one of "ms" or "seconds"' })
  .transform(({ ms, seconds, output }) => ({ ms: ms ?? Math.round(seconds! * 1000), ...(output !== undefined && { output }) }));
export type DelayConfig = z.output<typeof DelayConfig>;

export const EXECUTOR_CONFIGS = {
  shell: ShellConfig,
  http: HttpConfig,
  noop: NoopConfig,
  delay: DelayConfig,
} as const;

export type ExecutorName = keyof typeof EXECUTOR_CONFIGS;
export const EXECUTOR_NAMES = Object.keys(EXECUTOR_CONFIGS) as ExecutorName[];

export function isExecutorName(name: string): name is ExecutorName {
  return Object.hasOwn(EXECUTOR_CONFIGS, name);
}
