import { evaluateExpression, type TransformConfig } from '@taskstream/domain';
import { StepError } from './step-error.js';
import type { StepContext } from './types.js';

/**
 * Evaluates the config's CEL expression; its value is the output. The expression sees the task's
 * resolved `input`, the flow's `params` and the outputs of upstream tasks as `tasks.<id>.output`
 * (empty until the work item carries them), and `flow.id`. No I/O, so nothing to cancel once
 * started. An expression that fails (parse, unknown name, type error) fails the task for good:
 * another attempt would evaluate the same.
 */
export async function runTransform(ctx: StepContext): Promise<unknown> {
  if (ctx.signal.aborted) throw ctx.signal.reason;
  const config = ctx.spec.config as TransformConfig;
  const result = evaluateExpression(config.expr, {
    tasks: ctx.upstream ?? {},
    params: ctx.params ?? {},
    flow: { id: ctx.flowId },
    ...(ctx.spec.input !== undefined && { input: ctx.spec.input }),
  });
  if (!result.ok) {
    throw new StepError({ message: `transform expression failed: ${result.message}`, code: 'EXPRESSION', retryable: false });
  }
  return result.value;
}
