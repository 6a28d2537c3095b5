import type { TaskSpec } from '@taskstream/domain';
import { describe, expect, it } from 'vitest';
import { createSteps } from '../src/steps/index.js';
import type { StepContext } from '../src/steps/types.js';
import { stepContext } from './processes.js';

const { transform } = createSteps({ shellEnabled: false });

function task(expr: string, extra: { input?: unknown; upstream?: StepContext['upstream']; params?: unknown } = {}): StepContext {
  const ctx = stepContext('transform', { expr });
  const spec: TaskSpec = { ...ctx.spec, ...(extra.input !== undefined && { input: extra.input }) };
  return { ...ctx, spec, ...(extra.upstream !== undefined && { upstream: extra.upstream }), ...(extra.params !== undefined && { params: extra.params }) };
}

describe('transform steps', () => {
  it("output the expression's value over the task's input", async () => {
    expect(await transform!(task('input.n * 2', { input: { n: 21 } }))).toBe(42);
    expect(await transform!(task('{"name": input.name + "!", "tags": input.tags.filter(t, t != "b")}', { input: { name: 'x', tags: ['a', 'b', 'c'] } }))).toEqual({ name: 'x!', tags: ['a', 'c'] });
  });

  it('read upstream outputs, params and the flow id', async () => {
    const ctx = task('tasks.fetch.output.json.id + ":" + params.env + ":" + flow.id', { upstream: { fetch: { output: { status: 200, json: { id: 'u-1' } } } }, params: { env: 'prod' } });
    expect(await transform!(ctx)).toBe(`u-1:prod:${ctx.flowId}`);
  });

  it('see empty tasks and params when the work item carries none', async () => {
    expect(await transform!(task('size(params) == 0'))).toBe(true);
  });

  it('fail for good, code EXPRESSION, when the expression fails', async () => {
    await expect(transform!(task('input.missing.deeper', { input: { n: 1 } }))).rejects.toMatchObject({
      detail: { code: 'EXPRESSION', retryable: false, message: expect.stringMatching(/^transform expression failed: /) },
    });
    await expect(transform!(task('input.n +', { input: { n: 1 } }))).rejects.toMatchObject({ detail: { code: 'EXPRESSION', retryable: false } });
    await expect(transform!(task('input.n'))).rejects.toMatchObject({ detail: { code: 'EXPRESSION', message: expect.stringContaining('no input') } });
  });

  it('start nothing once stopped', async () => {
    const controller = new AbortController();
    controller.abort(new Error('cancelled'));
    await expect(transform!({ ...task('1'), signal: controller.signal })).rejects.toThrow('cancelled');
  });
});
