import { describe, expect, it } from 'vitest';
import { MAX_FLOW_DEFINITION_BYTES, MAX_TASK_SPEC_BYTES, oversizedPart, parseFlowText, type FlowDefinition } from '../src/index.js';

function flow(tasks: object[]): FlowDefinition {
  const parsed = parseFlowText(JSON.stringify({ tasks }), 'json');
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
  return parsed.flow;
}

describe('flow size limits', () => {
  it('accepts a flow whose every part fits', () => {
    expect(oversizedPart(flow([{ id: 'a', executor: 'noop', config: { output: 'x'.repeat(1000) } }]))).toBeUndefined();
  });

  it('names the largest task when one task cannot travel in its own events', () => {
    const big = flow([
      { id: 'small', executor: 'noop' },
      { id: 'huge', executor: 'noop', config: { output: 'x'.repeat(MAX_TASK_SPEC_BYTES) } },
    ]);
    expect(oversizedPart(big)).toEqual({ part: 'tasks[1] ("huge")', bytes: expect.any(Number), limit: MAX_TASK_SPEC_BYTES });
    expect(oversizedPart(big)!.bytes).toBeGreaterThan(MAX_TASK_SPEC_BYTES);
  });

  it('measures bytes, not characters', () => {
    const task = { id: 'a', executor: 'noop', config: { output: 'é'.repeat(MAX_TASK_SPEC_BYTES / 2) } };
    expect(oversizedPart(flow([task]))?.part).toBe('tasks[0] ("a")');
  });

  it('bounds the whole definition with the outputs a rerun reuses', () => {
    const definition = flow([{ id: 'a', executor: 'noop' }]);
    const reused = { a: { output: 'x'.repeat(MAX_FLOW_DEFINITION_BYTES) } };
    expect(oversizedPart(definition, reused)).toMatchObject({ part: 'the flow definition with the outputs it reuses', limit: MAX_FLOW_DEFINITION_BYTES });
  });
});
