import { describe, expect, it } from 'vitest';
import { parseFlowText, validateFlow } from '../src/index.js';

const tasked = {
  tasks: [
    { id: 'build', executor: 'shell', config: { command: 'cargo build --release' } },
    { id: 'test-unit', executor: 'shell', config: { command: 'cargo test --lib' }, depends_on: ['build'] },
    { id: 'test-integ', executor: 'shell', config: { command: "cargo test --test '*'" }, depends_on: ['build'] },
    {
      id: 'deploy',
      executor: 'http',
      config: { url: 'https://deploy.example.com/api', method: 'POST' },
      depends_on: ['test-unit', 'test-integ'],
      retries: 3,
    },
  ],
};

function problems(input: unknown) {
  const result = validateFlow(input);
  if (result.ok) throw new Error('expected the flow to be rejected');
  return result.problems;
}

describe('flow validation', () => {
  it('accepts the Tasked example unchanged and makes defaults explicit', () => {
    const result = validateFlow(tasked);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.flow.queue).toBe('default');
    expect(result.flow.tasks.map((t) => t.id)).toEqual(['build', 'test-unit', 'test-integ', 'deploy']);
    const deploy = result.flow.tasks[3]!;
    expect(deploy.retries).toBe(3);
    expect(deploy.config).toEqual({ url: 'https://deploy.example.com/api', method: 'POST' });
    // Retries, timeout and backoff left unset come from the queue's policy at dispatch.
    expect(result.flow.tasks[0]!.retries).toBeUndefined();
    expect(deploy.backoff).toBeUndefined();
  });

  it('accepts the Tasked quickstart as YAML too', () => {
    const yaml = `
tasks:
  - id: hello
    executor: shell
    config: { command: "echo 'Hello from Tasked!'" }
  - id: world
    executor: shell
    config: { command: "echo 'DAG execution works!'" }
    depends_on: [hello]
`;
    const result = parseFlowText(yaml);
    expect(result.ok && result.flow.tasks[1]!.depends_on).toEqual(['hello']);
  });

  it('accepts timeout_secs, backoff in every spelling, queue, priority and concurrency_key', () => {
    const result = validateFlow({
      queue: 'ci',
      tasks: [
        { id: 'a', executor: 'noop', timeout_secs: 1.5, backoff: 'fixed', priority: 5, concurrency_key: 'tenant-1' },
        { id: 'b', executor: 'noop', backoff: { type: 'linear', initial_delay_ms: 10 }, queue: 'other' },
        { id: 'c', executor: 'noop', backoff: { exponential: { initial_delay_ms: 20, max_delay_ms: 100 } } },
        { id: 'd', executor: 'noop', backoff: { fixed: { delay_ms: 7 } } },
      ],
    });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const [a, b, c, d] = result.flow.tasks;
    expect(a).toMatchObject({ queue: 'ci', timeout_secs: 1.5, priority: 5, concurrency_key: 'tenant-1', backoff: { type: 'fixed' } });
    expect(b).toMatchObject({ queue: 'other', backoff: { type: 'linear', initial_delay_ms: 10 } });
    expect(c!.backoff).toMatchObject({ type: 'exponential', initial_delay_ms: 20, max_delay_ms: 100 });
    expect(d!.backoff).toMatchObject({ type: 'fixed', initial_delay_ms: 7 });
  });

  it('reports every problem at once, each with a path and what to do', () => {
    const found = problems({
      tasks: [
        { id: 'a', executor: 'shell', config: { command: 'true' }, depends_on: ['c'] },
        { id: 'a', executor: 'noop' },
        { id: 'b', executor: 'sh', config: {} },
        { id: 'c', executor: 'noop', depends_on: ['b', 'ghost', 'a'] },
        { id: 'bad\nid', executor: 'noop' },
        { id: 'h', executor: 'http', config: { url: 'not a url' } },
      ],
    });
    const byPath = Object.fromEntries(found.map((p) => [p.path, p.message]));
    expect(byPath['tasks[1].id']).toMatch(/duplicate task id "a".*tasks\[0\]/);
    expect(byPath['tasks[2].executor']).toMatch(/unknown executor "sh"; use one of shell, http, noop, delay/);
    expect(byPath['tasks[3].depends_on[1]']).toMatch(/depends on "ghost", which is not a task in this flow/);
    expect(byPath['tasks[4].id']).toMatch(/control characters/);
    expect(byPath['tasks[5].config.url']).toMatch(/absolute http/);
    expect(found.some((p) => /dependency cycle a -> c -> a/.test(p.message))).toBe(true);
  });

  it('names a longer cycle in order', () => {
    const found = problems({
      tasks: [
        { id: 'a', executor: 'noop', depends_on: ['c'] },
        { id: 'b', executor: 'noop', depends_on: ['a'] },
        { id: 'c', executor: 'noop', depends_on: ['b'] },
        { id: 'd', executor: 'noop' },
      ],
    });
    expect(found).toEqual([
      { path: 'tasks[0].depends_on', message: expect.stringContaining('dependency cycle a -> c -> b -> a') },
    ]);
  });

  it('rejects self-dependencies, empty flows and missing fields', () => {
    expect(problems({ tasks: [{ id: 'a', executor: 'noop', depends_on: ['a'] }] })[0]!.message).toMatch(/depends on itself/);
    expect(problems({ tasks: [] })).toEqual([{ path: 'tasks', message: 'a flow needs at least one task' }]);
    expect(problems({})).toEqual([{ path: 'tasks', message: 'is required' }]);
    expect(problems({ tasks: [{ executor: 'noop' }] })).toEqual([{ path: 'tasks[0].id', message: 'is required' }]);
  });

  it('warns of unknown fields (Tasked ignores them) and names each', () => {
    const result = validateFlow({ priorty: 1, tasks: [{ id: 'a', executor: 'noop', dependson: ['x'] }] });
    expect(result.ok && result.flow.warnings).toEqual([
      'priorty: unknown field "priorty" ignored; remove it or check its spelling',
      'tasks[0].dependson: unknown field "dependson" ignored; remove it or check its spelling',
    ]);
  });

  it('rejects invalid executor configs with the field named', () => {
    const found = problems({
      tasks: [
        { id: 'a', executor: 'noop' },
        { id: 'b', executor: 'shell', config: { command: 'echo', args: ['echo'] } },
        { id: 'c', executor: 'shell', config: {} },
        { id: 'd', executor: 'delay', config: { ms: -1 } },
        { id: 'e', executor: 'noop', retries: -1, timeout_secs: 0 },
      ],
    });
    const paths = found.map((p) => p.path);
    expect(paths).toContain('tasks[1].config');
    expect(paths).toContain('tasks[2].config');
    expect(paths).toContain('tasks[3].config.ms');
    expect(paths).toContain('tasks[4].retries');
    expect(paths).toContain('tasks[4].timeout_secs');
  });

  it('reports syntax errors with the parser position', () => {
    const result = parseFlowText('{"tasks": [', 'json');
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problems[0]!.message).toMatch(/^not valid JSON/);
    const yaml = parseFlowText('tasks:\n  - id: a\n   executor: [', 'yaml');
    expect(!yaml.ok && yaml.problems[0]!.message).toMatch(/^not valid YAML/);
  });
});

describe('retry backoff', () => {
  const base = { initial_delay_ms: 100, max_delay_ms: 1000, multiplier: 2, jitter: false } as const;
  it('grows exponentially, linearly or not at all, capped at max_delay_ms', async () => {
    const { retryDelayMs } = await import('../src/index.js');
    expect([1, 2, 3, 4, 5].map((n) => retryDelayMs({ ...base, type: 'exponential' }, n, 0))).toEqual([100, 200, 400, 800, 1000]);
    expect([1, 2, 3].map((n) => retryDelayMs({ ...base, type: 'linear' }, n, 0))).toEqual([100, 200, 300]);
    expect([1, 2, 3].map((n) => retryDelayMs({ ...base, type: 'fixed' }, n, 0))).toEqual([100, 100, 100]);
  });
  it('keeps jittered delays between half and one and a half times the nominal delay (Tasked\'s exponential_jitter)', async () => {
    const { retryDelayMs } = await import('../src/index.js');
    const fc = (await import('fast-check')).default;
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20 }), fc.double({ min: 0, max: 0.999999, noNaN: true }), (n, r) => {
        const nominal = retryDelayMs({ ...base, type: 'exponential' }, n, 0);
        const jittered = retryDelayMs({ ...base, type: 'exponential', jitter: true }, n, r);
        return jittered >= nominal / 2 - 1 && jittered <= nominal * 1.5 + 1;
      }),
    );
  });
});
