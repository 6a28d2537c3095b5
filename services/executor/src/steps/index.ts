import type { NoopConfig } from '@taskstream/domain';
import { runDelay } from './delay.js';
import { createHttpStep } from './http.js';
import { DEFAULT_SHELL_LIMITS, runShell, type ShellLimits } from './shell.js';
import { createSpawnStep } from './spawn.js';
import { StepError } from './step-error.js';
import { runTransform } from './transform.js';
import type { StepContext, StepRunner } from './types.js';

export { StepError, toTaskError } from './step-error.js';
export { LOCAL_HTTP_ALLOW, parseAllowSetting, InvalidAllowEntryError } from './address-policy.js';
export type { StepContext, StepRunner } from './types.js';
export { createSpawnStep, type FlowReader } from './spawn.js';

export interface StepOptions {
  /** Shell steps run only where the pool allows them. */
  shellEnabled: boolean;
  /**
   * The environment shell steps take PATH from (the executor's own by default). Nothing else of
   * it reaches a step: see stepEnvironment in shell.ts.
   */
  env?: NodeJS.ProcessEnv;
  /** How long a stopped shell step's processes get between SIGTERM and SIGKILL. */
  killGraceMs?: number;
  /**
   * What http steps may reach besides public addresses: CIDRs (10.0.0.0/8, fd00::/8), single
   * addresses (::1) and host names (api.internal, *.internal). Empty by default: no loopback,
   * private, link-local (cloud metadata) or other special address. LOCAL_HTTP_ALLOW is this
   * machine's loopback, for local stacks. Throws InvalidAllowEntryError naming a bad entry.
   */
  httpAllow?: readonly string[];
}

/** The step runners by executor name, built from their dependencies. */
export function createSteps(options: StepOptions): Record<string, StepRunner> {
  const env = options.env ?? process.env;
  const shellLimits: ShellLimits = { ...DEFAULT_SHELL_LIMITS, ...(options.killGraceMs !== undefined && { killGraceMs: options.killGraceMs }) };
  const steps: Record<string, StepRunner> = {
    shell: async (ctx: StepContext) => {
      if (!options.shellEnabled) {
        throw new StepError({
          message: 'this executor pool has shell steps turned off; start it with --allow-shell (TASKSTREAM_ALLOW_SHELL=true) to run them',
          code: 'SHELL_DISABLED',
          retryable: false,
        });
      }
      return runShell(ctx, env, shellLimits);
    },
    http: createHttpStep({ allow: options.httpAllow ?? [] }),
    noop: async (ctx: StepContext) => (ctx.spec.config as NoopConfig).output ?? null,
    delay: runDelay,
    transform: runTransform,
  };
  // Without a flow reader a spawn checks its tasks alone; the executor gives it one (see startExecutor).
  steps.spawn = createSpawnStep(steps);
  return steps;
}
