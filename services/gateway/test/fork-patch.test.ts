import { validateFlow, type FlowDefinition } from '@taskstream/domain';
import { describe, expect, it } from 'vitest';
import { ApiError } from '../src/errors.js';
import { patchDefinition } from '../src/routes/history.js';

const parent = (() => {
  const result = validateFlow({ name: 'p', tasks: [{ id: 'a', executor: 'noop' }, { id: 'b', executor: 'noop', depends_on: ['a'] }] });
  if (!result.ok) throw new Error('fixture');
  return result.flow;
})();

const problemsOf = (f: () => unknown) => {
  try {
    f();
  } catch (error) {
    if (error instanceof ApiError) return error.toJSON().error;
    throw error;
  }
  throw new Error('did not throw');
};

describe('patchDefinition', () => {
  it('replaces top-level fields, merges tasks by id, adds new ids, and reports what changed', () => {
    const { definition, changed } = patchDefinition(parent, { name: 'q', tasks: [{ id: 'a', config: { output: 1 } }, { id: 'c', executor: 'noop', depends_on: ['b'] }, { id: 'a', retries: 2 }] });
    expect(definition.name).toBe('q');
    expect(definition.tasks.map((t) => [t.id, t.config, t.retries])).toEqual([
      ['a', { output: 1 }, 2],
      ['b', {}, undefined],
      ['c', {}, undefined],
    ]);
    expect(changed).toEqual(['a', 'c']);
  });

  it('leaves the parent definition and every prototype untouched', () => {
    const before = structuredClone(parent);
    const patch = JSON.parse('{"tasks":[{"id":"a","config":{"output":{"__proto__":{"polluted":true}}}}]}');
    const { definition } = patchDefinition(parent, patch);
    expect(parent).toEqual(before);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(definition.tasks[0])).toBe(Object.prototype);
  });

  it('validates the result like a submission', () => {
    expect(problemsOf(() => patchDefinition(parent, { tasks: [{ id: 'b', depends_on: ['zz'] }] }))).toMatchObject({ code: 'INVALID_FLOW', problems: [{ path: 'tasks[1].depends_on[0]' }] });
    expect(problemsOf(() => patchDefinition(parent, { tasks: [{ id: '__proto__', executor: 'noop' }] }))).toMatchObject({ code: 'INVALID_FLOW', problems: [{ path: 'tasks[2].id' }] });
    expect(problemsOf(() => patchDefinition(parent, { unknown: 1 } as never))).toMatchObject({ code: 'INVALID_FLOW', problems: [{ path: 'unknown' }] });
  });

  it('keeps the definition type', () => {
    const result: FlowDefinition = patchDefinition(parent, {}).definition;
    expect(result).toEqual(parent);
  });
});
