import { spawnedTasks, spawnInner, spawnText, type FlowState } from '@taskstream/domain';
import { StepError } from './step-error.js';
import type { StepContext, StepRunner } from './types.js';

/** Reads a flow as its log holds it now (null for a flow with no log). */
export type FlowReader = (flowId: string) => Promise<FlowState | null>;

/** Problems a failure message lists in full; a longer list is cut there, saying how many more. */
const LISTED_PROBLEMS = 100;

/**
 * Tasked's spawn: runs the inner step (`executor` and `config`, or the shorthand shell config),
 * reads its output text (`stdout`, else `body`) as a JSON array of task definitions and checks
 * them against the flow as its log holds it (`readFlow`), like a submission. Succeeds with
 * Tasked's output `{generated_count, inner_output}`; the planner then adds the tasks, reading
 * them again from `inner_output`. A problem fails the task for good, listing every one.
 */
export function createSpawnStep(steps: Readonly<Record<string, StepRunner>>, readFlow?: FlowReader): StepRunner {
  return async (ctx: StepContext) => {
    const inner = spawnInner(ctx.spec.config);
    if (inner.executor === 'spawn') throw invalid('spawn executor cannot delegate to itself');
    const step = steps[inner.executor];
    if (step === undefined) throw invalid(`unknown inner executor "${inner.executor}"`);
    const output = await step({ ...ctx, spec: { ...ctx.spec, executor: inner.executor, config: inner.config } });
    if (output === undefined || output === null) throw invalid(`inner executor "${inner.executor}" produced no output`);
    let count: number;
    try {
      const parsed: unknown = JSON.parse(spawnText(output).trim());
      if (!Array.isArray(parsed)) throw new Error('the output is not a JSON array of task definitions');
      count = parsed.length;
    } catch (error) {
      throw invalid(`failed to parse spawn output as tasks: ${(error as Error).message}`);
    }
    const state = readFlow === undefined ? null : await readFlow(ctx.flowId);
    if (state !== null) {
      const spawned = spawnedTasks(state, ctx.spec, output);
      if (!spawned.ok) {
        const { problems } = spawned;
        const listed = problems.slice(0, LISTED_PROBLEMS).join('; ');
        const more = problems.length > LISTED_PROBLEMS ? `; and ${problems.length - LISTED_PROBLEMS} more` : '';
        throw invalid(`spawn injection failed (${problems.length} problem${problems.length === 1 ? '' : 's'}): ${listed}${more}`);
      }
    }
    return { generated_count: count, inner_output: output };
  };
}

function invalid(message: string): StepError {
  return new StepError({ message, code: 'SPAWN_INVALID', retryable: false });
}
