import { z } from 'zod';

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
});
export type HttpConfig = z.infer<typeof HttpConfig>;

export const NoopConfig = z.strictObject({
  output: z.unknown().optional(),
});
export type NoopConfig = z.infer<typeof NoopConfig>;

export const DelayConfig = z.strictObject({
  ms: z.number().int().min(0, 'must be 0 or more').max(86_400_000, 'must be at most one day'),
  output: z.unknown().optional(),
});
export type DelayConfig = z.infer<typeof DelayConfig>;

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
