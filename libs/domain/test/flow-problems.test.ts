import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  jsonBytes,
  MAX_BACKOFF_DELAY_MS,
  MAX_BACKOFF_MULTIPLIER,
  MAX_PRIORITY,
  MAX_PROBLEMS,
  MAX_PROBLEMS_BYTES,
  MAX_RETRIES,
  MAX_TIMEOUT_SECS,
  MIN_PRIORITY,
  MIN_TIMEOUT_SECS,
  parseFlowText,
  validateFlow,
  type Problem,
} from '../src/index.js';


function problemsOf(input: unknown): Problem[] {
  const result = validateFlow(input);
  if (result.ok) throw new Error('expected the flow to be rejected');
  return result.problems;
}

/** What every rejection must satisfy, whatever was submitted. */
function expectBounded(problems: Problem[]): void {
  expect(problems.length).toBeGreaterThan(0);
  expect(problems.length).toBeLessThanOrEqual(MAX_PROBLEMS + 1);
  expect(jsonBytes(problems)).toBeLessThan(MAX_PROBLEMS_BYTES);
  for (const p of problems) {
    expect(typeof p.path).toBe('string');
    expect(typeof p.message).toBe('string');
  }
}

describe('validation problems stay bounded', () => {
  it.each([1_000, 10_000])('summarises %i tasks that each depend on an unknown id in a bounded, counted list', (n) => {
    const tasks = Array.from({ length: n }, (_, i) => ({ id: `task-${i}`, executor: 'noop', depends_on: [`missing-${i}`] }));
    const found = problemsOf({ tasks });
    expectBounded(found);
    expect(found).toHaveLength(MAX_PROBLEMS + 1);
    // Every problem was counted, even those not listed.
    expect(found.at(-1)).toEqual({ path: '$', message: expect.stringMatching(new RegExp(`^and ${n - MAX_PROBLEMS} more problems`)) });
    expect(found[0]).toEqual({
      path: 'tasks[0].depends_on[0]',
      message: `task "task-0" depends on "missing-0", which is not a task in this flow; known ids include task-0, task-1, task-2, … (${n} in all)`,
    });
  });

  it('suggests the closest ids for a misspelt dependency, not every id', () => {
    const tasks = [
      ...Array.from({ length: 10_000 }, (_, i) => ({ id: `step-${i}`, executor: 'noop' })),
      { id: 'build', executor: 'noop' },
      { id: 'deploy', executor: 'noop', depends_on: ['biuld', 'Build', 'step-12345'] },
    ];
    const messages = problemsOf({ tasks }).map((p) => p.message);
    expect(messages[0]).toMatch(/depends on "biuld", .*; did you mean "build"\?$/);
    expect(messages[1]).toMatch(/depends on "Build", .*; did you mean "build"\?$/);
    expect(messages[2]).toMatch(/depends on "step-12345", .*; did you mean "step-1234" or "step-1235" or "step-1245"\?$/);
    for (const m of messages) expect(m.length).toBeLessThan(400);
  });

  it('cuts user-supplied text in paths and messages short', () => {
    const huge = 'x'.repeat(1024 * 1024);
    const found = problemsOf({
      tasks: [
        { id: 'a', executor: 'noop', depends_on: [huge] },
        { id: 'b', executor: huge },
      ],
    });
    expectBounded(found);
    expect(found).toHaveLength(2);
    for (const p of found) expect(jsonBytes(p)).toBeLessThan(1024);
    const byPath = new Map(found.map((p) => [p.path, p.message]));
    expect(byPath.get('tasks[0].depends_on[0]')).toMatch(/depends on "x+…", which is not a task/);
    expect(byPath.get('tasks[1].executor')).toMatch(/^unknown executor "x+…"; use one of/);
    // An unknown field is a warning, as short.
    const accepted = validateFlow({ tasks: [{ id: 'c', executor: 'noop', [huge]: 1 }] });
    expect(accepted.ok && accepted.flow.warnings).toEqual([expect.stringMatching(/^tasks\[0\]\.x+…: unknown field "x+…" ignored/)]);
    expect(jsonBytes(accepted.ok && accepted.flow.warnings)).toBeLessThan(1024);
  });

  it('names a cycle through every task in a few words', () => {
    const n = 10_000;
    const tasks = Array.from({ length: n }, (_, i) => ({ id: `t${i}`, executor: 'noop', depends_on: [`t${(i + 1) % n}`] }));
    const found = problemsOf({ tasks });
    expect(found).toHaveLength(1);
    expect(found[0]!.message).toMatch(/^dependency cycle t0 -> t1 -> .* -> … -> .* -> t0 \(10000 tasks\); /);
    expect(found[0]!.message.length).toBeLessThan(400);
  });

  it('accepts a chain of 10,000 tasks and a fan-in of 10,000 dependencies', () => {
    const chain = Array.from({ length: 10_000 }, (_, i) => ({ id: `t${i}`, executor: 'noop', ...(i > 0 && { depends_on: [`t${i - 1}`] }) }));
    expect(validateFlow({ tasks: chain }).ok).toBe(true);
    const fanIn = [...chain.map(({ id, executor }) => ({ id, executor })), { id: 'join', executor: 'noop', depends_on: chain.map((t) => t.id) }];
    expect(validateFlow({ tasks: fanIn }).ok).toBe(true);
  });

  it('reports a problem for every duplicate id, found with one lookup each', () => {
    const tasks = Array.from({ length: 10_000 }, () => ({ id: 'same', executor: 'noop' }));
    const found = problemsOf({ tasks });
    expectBounded(found);
    expect(found[0]).toEqual({ path: 'tasks[1].id', message: 'duplicate task id "same" (also used by tasks[0]); give every task its own id' });
    expect(found.at(-1)!.message).toMatch(new RegExp(`^and ${9_999 - MAX_PROBLEMS} more problems`));
  });
});

const safeId = fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/);
const junkTask = fc.oneof(
  fc.anything(),
  fc.record(
    {
      id: fc.oneof(safeId, fc.string(), fc.constantFrom('a', 'b', 'c')),
      executor: fc.constantFrom('noop', 'shell', 'http', 'delay', 'sh', ''),
      config: fc.oneof(fc.constant({}), fc.anything(), fc.record({ ms: fc.double(), seconds: fc.double(), command: fc.string() }, { requiredKeys: [] })),
      depends_on: fc.array(fc.oneof(safeId, fc.string(), fc.constantFrom('a', 'b', 'c')), { maxLength: 5 }),
      timeout_secs: fc.oneof(fc.double(), fc.integer()),
      retries: fc.oneof(fc.double(), fc.integer()),
      backoff: fc.anything(),
      priority: fc.integer(),
      extra: fc.anything(),
    },
    { requiredKeys: [] },
  ),
);

/** A valid DAG: each task depends only on tasks created before it, then the declarations are shuffled. */
const validFlow = fc
  .uniqueArray(safeId, { minLength: 1, maxLength: 40 })
  .chain((ids) =>
    fc.tuple(
      fc.constant(ids),
      fc.tuple(...ids.map((_, i) => fc.subarray(ids.slice(0, i)))),
      fc.tuple(
        ...ids.map(() =>
          fc.record(
            {
              timeout_secs: fc.oneof(fc.constantFrom(MIN_TIMEOUT_SECS, MAX_TIMEOUT_SECS), fc.double({ min: MIN_TIMEOUT_SECS, max: MAX_TIMEOUT_SECS, noNaN: true })),
              retries: fc.integer({ min: 0, max: MAX_RETRIES }),
              priority: fc.integer({ min: MIN_PRIORITY, max: MAX_PRIORITY }),
              backoff: fc.oneof(
                fc.constantFrom('exponential', 'fixed', 'linear'),
                fc.record({ fixed: fc.record({ delay_ms: fc.integer({ min: 0, max: MAX_BACKOFF_DELAY_MS }) }) }),
                fc.record({
                  type: fc.constantFrom('exponential', 'linear'),
                  initial_delay_ms: fc.integer({ min: 0, max: MAX_BACKOFF_DELAY_MS }),
                  max_delay_ms: fc.integer({ min: 0, max: MAX_BACKOFF_DELAY_MS }),
                  multiplier: fc.double({ min: 1, max: MAX_BACKOFF_MULTIPLIER, noNaN: true }),
                }),
              ),
              input: fc.jsonValue({ maxDepth: 5 }),
            },
            { requiredKeys: [] },
          ),
        ),
      ),
      fc.tuple(...ids.map(() => fc.constantFrom('noop', 'shell', 'http', 'delay'))),
      fc.shuffledSubarray(ids.map((_, i) => i), { minLength: ids.length }),
    ),
  )
  .map(([ids, deps, fields, executors, order]) => ({
    tasks: order.map((i) => {
      const executor = executors[i]!;
      const timeout = fields[i]!.timeout_secs;
      const config =
        executor === 'shell'
          ? { command: 'true' }
          : executor === 'http'
            ? { url: 'https://example.com/hook', method: 'post' }
            : executor === 'delay'
              ? { seconds: timeout === undefined ? 1 : Math.min(timeout, 1) }
              : {};
      return { id: ids[i]!, executor, config, depends_on: deps[i]!, ...fields[i] };
    }),
  }));

describe('validation, for any input', () => {
  it('never throws and keeps the problem list bounded', () => {
    fc.assert(
      fc.property(fc.oneof(fc.anything(), fc.record({ tasks: fc.array(junkTask, { maxLength: 300, size: 'max' }) })), (input) => {
        const result = validateFlow(input);
        if (!result.ok) expectBounded(result.problems);
      }),
      { numRuns: 100 },
    );
  }, 60_000);

  it('never rejects a valid flow, as a value or as JSON text', () => {
    fc.assert(
      fc.property(validFlow, (flow) => {
        const result = validateFlow(flow);
        expect(result.ok ? [] : result.problems).toEqual([]);
        expect(parseFlowText(JSON.stringify(flow)).ok).toBe(true);
      }),
      { numRuns: 200 },
    );
  }, 60_000);
});
