import { describe, expect, it } from 'vitest';
import { MAX_NESTING_DEPTH, parseFlowText, validateFlow, type FlowParseResult } from '../src/index.js';

function rejected(result: FlowParseResult) {
  if (result.ok) throw new Error('expected the flow to be rejected');
  return result.problems;
}

/** `levels` arrays inside one another, as JSON text. */
const nestedJson = (levels: number) => '['.repeat(levels) + ']'.repeat(levels);

/** The same as a value, built without recursion. */
function nestedValue(levels: number): unknown {
  let value: unknown = [];
  for (let i = 1; i < levels; i++) value = [value];
  return value;
}

const tooDeep = new RegExp(`nested more than ${MAX_NESTING_DEPTH} levels deep`);

describe('deeply nested flows', () => {
  it('refuses a config nested 10,000 levels deep, naming the field', () => {
    const text = `{"tasks":[{"id":"a","executor":"noop"},{"id":"b","executor":"noop","config":{"output":${nestedJson(10_000)}}}]}`;
    expect(rejected(parseFlowText(text, 'json'))).toEqual([{ path: 'tasks[1].config', message: expect.stringMatching(tooDeep) }]);
  });

  it('refuses a body that is nothing but 100,000 nested arrays, as JSON and as YAML', () => {
    expect(rejected(parseFlowText(nestedJson(100_000), 'json'))).toEqual([{ path: '$', message: expect.stringMatching(tooDeep) }]);
    expect(rejected(parseFlowText(nestedJson(100_000), 'yaml'))).toEqual([{ path: '$', message: expect.stringMatching(tooDeep) }]);
  });

  it('refuses deep YAML before the YAML parser recurses into it', () => {
    const flowSeq = `tasks:\n  - id: a\n    executor: noop\n    input: ${nestedJson(10_000)}\n`;
    expect(rejected(parseFlowText(flowSeq, 'yaml'))).toEqual([{ path: 'tasks[0].input', message: expect.stringMatching(tooDeep) }]);
    const blockSeq = `tasks:\n  - id: a\n    executor: noop\n    input:\n      ${'- '.repeat(10_000)}x\n`;
    expect(rejected(parseFlowText(blockSeq, 'yaml'))).toEqual([{ path: 'tasks[0].input', message: expect.stringMatching(tooDeep) }]);
  });

  it('refuses a YAML alias that refers to itself', () => {
    const text = 'tasks:\n  - id: a\n    executor: noop\n    input: &loop [ *loop ]\n';
    expect(rejected(parseFlowText(text, 'yaml'))).toEqual([{ path: 'tasks[0].input', message: expect.stringMatching(tooDeep) }]);
  });

  it('refuses a deep value handed to validateFlow directly', () => {
    const found = rejected(validateFlow({ tasks: [{ id: 'a', executor: 'noop', input: nestedValue(100_000) }], labels: { x: nestedValue(200) } }));
    expect(found).toEqual([
      { path: 'tasks[0].input', message: expect.stringMatching(tooDeep) },
      { path: 'labels', message: expect.stringMatching(tooDeep) },
    ]);
  });

  it('accepts nesting up to the limit, counted from the top of the flow', () => {
    // The flow object, the tasks list and the task are three levels: the input may add the rest.
    const atLimit = { tasks: [{ id: 'a', executor: 'noop', input: nestedValue(MAX_NESTING_DEPTH - 3) }] };
    expect(validateFlow(atLimit).ok).toBe(true);
    expect(parseFlowText(JSON.stringify(atLimit), 'json').ok).toBe(true);
    expect(parseFlowText(JSON.stringify(atLimit), 'yaml').ok).toBe(true);
    const over = { tasks: [{ id: 'a', executor: 'noop', input: nestedValue(MAX_NESTING_DEPTH - 2) }] };
    expect(rejected(validateFlow(over))).toEqual([{ path: 'tasks[0].input', message: expect.stringMatching(tooDeep) }]);
    expect(rejected(parseFlowText(JSON.stringify(over), 'yaml'))).toEqual([{ path: 'tasks[0].input', message: expect.stringMatching(tooDeep) }]);
  });
});
