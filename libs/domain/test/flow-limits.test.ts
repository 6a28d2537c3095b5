import { describe, expect, it } from 'vitest';
import {
  bucketOf,
  DelayConfig,
  MAX_BACKOFF_DELAY_MS,
  MAX_BACKOFF_MULTIPLIER,
  MAX_BURST,
  MAX_CONCURRENCY,
  MAX_CONDITION_LENGTH,
  MAX_DELAY_MS,
  MAX_LABEL_KEY_LENGTH,
  MAX_LABEL_VALUE_LENGTH,
  MAX_LABELS,
  MAX_PRIORITY,
  MAX_RATE_PER_SECOND,
  MAX_RETRIES,
  MAX_TIMEOUT_SECS,
  MIN_PRIORITY,
  MIN_RATE_PER_SECOND,
  MIN_TIMEOUT_SECS,
  parseFlowText,
  QueuePolicyInput,
  validateFlow,
  type Problem,
} from '../src/index.js';

const task = (fields: Record<string, unknown>) => ({ tasks: [{ id: 'a', executor: 'noop', ...fields }] });
const http = (config: Record<string, unknown>) => task({ executor: 'http', config: { url: 'https://example.com/', ...config } });
const delay = (config: Record<string, unknown>, fields: Record<string, unknown> = {}) => task({ executor: 'delay', config, ...fields });
const queue = (policy: Record<string, unknown>) => ({ queue_config: policy, tasks: [{ id: 'a', executor: 'noop' }] });

function problemsOf(input: unknown): Problem[] {
  const result = validateFlow(input);
  return result.ok ? [] : result.problems;
}

interface Bound {
  field: string;
  flow: (value: unknown) => unknown;
  path: string;
  accepted: unknown[];
  /** Values refused with a message that names the limit. */
  beyond: unknown[];
  limit: string;
  /** Other values refused (wrong kind, below the floor). */
  refused?: unknown[];
}

const timeouts = { accepted: [MIN_TIMEOUT_SECS, 1.5, 2_592_000, MAX_TIMEOUT_SECS], beyond: [MAX_TIMEOUT_SECS + 1, 1e308], limit: `${MAX_TIMEOUT_SECS} seconds (365 days)`, refused: [0, -1, 0.0004, '5'] };
const backoffMs = { accepted: [0, 1, MAX_BACKOFF_DELAY_MS], beyond: [MAX_BACKOFF_DELAY_MS + 1, 1e308], limit: `${MAX_BACKOFF_DELAY_MS}`, refused: [-1, 1.5] };
const concurrency = { accepted: [1, MAX_CONCURRENCY], beyond: [MAX_CONCURRENCY + 1], limit: `${MAX_CONCURRENCY}`, refused: [0, 2.5] };

const bounds: Bound[] = [
  { field: 'task timeout_secs', flow: (v) => task({ timeout_secs: v }), path: 'tasks[0].timeout_secs', ...timeouts },
  { field: 'flow timeout_secs', flow: (v) => ({ ...task({}), timeout_secs: v }), path: 'timeout_secs', ...timeouts },
  { field: 'queue timeout_secs', flow: (v) => queue({ timeout_secs: v }), path: 'queue_config.timeout_secs', ...timeouts },
  { field: 'http timeout_secs', flow: (v) => http({ timeout_secs: v }), path: 'tasks[0].config.timeout_secs', ...timeouts },
  { field: 'backoff initial_delay_ms', flow: (v) => task({ backoff: { type: 'exponential', initial_delay_ms: v } }), path: 'tasks[0].backoff.initial_delay_ms', ...backoffMs },
  { field: 'backoff delay_ms (tagged)', flow: (v) => task({ backoff: { fixed: { delay_ms: v } } }), path: 'tasks[0].backoff.fixed.delay_ms', ...backoffMs },
  { field: 'backoff max_delay_ms (queue)', flow: (v) => queue({ backoff: { exponential: { max_delay_ms: v } } }), path: 'queue_config.backoff.exponential.max_delay_ms', ...backoffMs },
  { field: 'backoff multiplier', flow: (v) => task({ backoff: { multiplier: v } }), path: 'tasks[0].backoff.multiplier', accepted: [1, 1.5, MAX_BACKOFF_MULTIPLIER], beyond: [MAX_BACKOFF_MULTIPLIER + 0.5], limit: `${MAX_BACKOFF_MULTIPLIER}`, refused: [0.5] },
  { field: 'task retries', flow: (v) => task({ retries: v }), path: 'tasks[0].retries', accepted: [0, MAX_RETRIES], beyond: [MAX_RETRIES + 1], limit: `${MAX_RETRIES}`, refused: [-1, 1.5] },
  { field: 'queue max_retries', flow: (v) => queue({ max_retries: v }), path: 'queue_config.max_retries', accepted: [0, MAX_RETRIES], beyond: [MAX_RETRIES + 1], limit: `${MAX_RETRIES}`, refused: [-1] },
  { field: 'priority', flow: (v) => task({ priority: v }), path: 'tasks[0].priority', accepted: [MIN_PRIORITY, 0, MAX_PRIORITY], beyond: [MAX_PRIORITY + 1, MIN_PRIORITY - 1], limit: `${MAX_PRIORITY}`, refused: [0.5] },
  { field: 'queue concurrency', flow: (v) => queue({ concurrency: v }), path: 'queue_config.concurrency', ...concurrency },
  { field: 'queue per_key_concurrency', flow: (v) => queue({ per_key_concurrency: v }), path: 'queue_config.per_key_concurrency', ...concurrency },
  {
    field: 'rate per_second',
    flow: (v) => queue({ rate_limit: { per_second: v } }),
    path: 'queue_config.rate_limit.per_second',
    accepted: [MIN_RATE_PER_SECOND, 5.0, MAX_RATE_PER_SECOND],
    beyond: [1e12],
    limit: '1000000000',
    refused: [0, -5, MIN_RATE_PER_SECOND / 2],
  },
  { field: 'rate max_burst', flow: (v) => queue({ rate_limit: { per_second: 10, max_burst: v } }), path: 'queue_config.rate_limit.max_burst', accepted: [1, MAX_BURST], beyond: [MAX_BURST + 1], limit: `${MAX_BURST}`, refused: [0, 1.5] },
  { field: 'delay ms', flow: (v) => delay({ ms: v }), path: 'tasks[0].config.ms', accepted: [0, MAX_DELAY_MS], beyond: [MAX_DELAY_MS + 1], limit: `${MAX_DELAY_MS}`, refused: [-1, 1.5] },
  { field: 'delay seconds', flow: (v) => delay({ seconds: v }), path: 'tasks[0].config.seconds', accepted: [0, 0.25, MAX_TIMEOUT_SECS], beyond: [MAX_TIMEOUT_SECS + 1, 1e300], limit: `${MAX_TIMEOUT_SECS}`, refused: [-1] },
];

describe('every duration and count in a flow has a documented bound', () => {
  for (const bound of bounds) {
    it(`${bound.field}: accepted up to ${bound.limit}, refused beyond it with the limit named`, () => {
      for (const value of bound.accepted) expect(problemsOf(bound.flow(value)), `${bound.field} = ${value}`).toEqual([]);
      for (const value of bound.beyond) {
        expect(problemsOf(bound.flow(value)), `${bound.field} = ${value}`).toEqual([{ path: bound.path, message: expect.stringContaining(bound.limit) }]);
      }
      for (const value of bound.refused ?? []) {
        expect(problemsOf(bound.flow(value)).map((p) => p.path), `${bound.field} = ${value}`).toEqual([bound.path]);
      }
    });
  }

  it('bounds labels and conditions', () => {
    const labels = Object.fromEntries(Array.from({ length: MAX_LABELS }, (_, i) => [`k${i}`, 'v'.repeat(MAX_LABEL_VALUE_LENGTH)]));
    expect(problemsOf({ ...task({ condition: `"${'c'.repeat(MAX_CONDITION_LENGTH - 8)}" == ""` }), labels })).toEqual([]);
    expect(problemsOf({ ...task({}), labels: { ...labels, one: 'more' } })).toEqual([{ path: 'labels', message: expect.stringContaining(`${MAX_LABELS}`) }]);
    expect(problemsOf({ ...task({}), labels: { k: 'v'.repeat(MAX_LABEL_VALUE_LENGTH + 1) } })).toEqual([{ path: 'labels.k', message: expect.stringContaining(`${MAX_LABEL_VALUE_LENGTH}`) }]);
    expect(problemsOf({ ...task({}), labels: { ['k'.repeat(MAX_LABEL_KEY_LENGTH + 1)]: 'v' } }).map((p) => p.message)).toEqual([expect.stringContaining(`${MAX_LABEL_KEY_LENGTH}`)]);
    expect(problemsOf(task({ condition: 'c'.repeat(MAX_CONDITION_LENGTH + 1) }))).toEqual([{ path: 'tasks[0].condition', message: expect.stringContaining(`${MAX_CONDITION_LENGTH}`) }]);
  });

  it('keeps every millisecond maximum a whole number a double holds exactly', () => {
    for (const ms of [MAX_DELAY_MS, MAX_BACKOFF_DELAY_MS, MAX_TIMEOUT_SECS * 1000]) expect(Number.isSafeInteger(ms)).toBe(true);
    expect(MAX_DELAY_MS).toBe(MAX_TIMEOUT_SECS * 1000);
  });
});

describe('non-finite numbers', () => {
  it('refuses YAML .inf and .nan wherever they appear', () => {
    const result = parseFlowText('timeout_secs: .inf\ntasks:\n  - id: a\n    executor: noop\n    retries: .nan\n    input: { x: [1, -.inf] }\n', 'yaml');
    expect(result.ok ? [] : result.problems).toEqual([
      { path: 'timeout_secs', message: expect.stringMatching(/finite number/) },
      { path: 'tasks[0].retries', message: expect.stringMatching(/finite number/) },
      { path: 'tasks[0].input.x[1]', message: expect.stringMatching(/finite number/) },
    ]);
  });

  it('refuses them in a queue policy too, as Tasked does', () => {
    for (const per_second of [Number.NaN, Number.POSITIVE_INFINITY, 0, -5, 1e12]) {
      expect(QueuePolicyInput.safeParse({ rate_limit: { per_second, max_burst: 10 } }).success, String(per_second)).toBe(false);
    }
    expect(QueuePolicyInput.safeParse({ timeout_secs: Number.POSITIVE_INFINITY }).error?.issues[0]?.message).toMatch(/finite number/);
    expect(QueuePolicyInput.safeParse({ rate_limit: { per_second: 5.0, max_burst: 10 }, concurrency: 1 }).success).toBe(true);
    expect(QueuePolicyInput.safeParse({ rate_limit: { per_second: 5, max_burst: 0 } }).success).toBe(false);
    expect(QueuePolicyInput.safeParse({ concurrency: 0 }).success).toBe(false);
  });
});

describe('delay steps', () => {
  it("takes Tasked's seconds as well as ms, and runs on whole milliseconds", () => {
    expect(DelayConfig.parse({ seconds: 1.5 })).toEqual({ ms: 1500 });
    expect(DelayConfig.parse({ ms: 20, output: 'x' })).toEqual({ ms: 20, output: 'x' });
    const result = validateFlow(delay({ seconds: 0.25 }));
    expect(result.ok && result.flow.tasks[0]!.config).toEqual({ ms: 250 });
    expect(problemsOf(delay({}))).toEqual([{ path: 'tasks[0].config', message: expect.stringMatching(/"ms".*"seconds"/) }]);
    expect(problemsOf(delay({ ms: 1, seconds: 1 }))).toEqual([{ path: 'tasks[0].config', message: expect.stringMatching(/"ms".*"seconds"/) }]);
  });

  it("may not outlast the task's timeout, or its queue's when the flow sets it", () => {
    expect(problemsOf(delay({ seconds: 60 }, { timeout_secs: 60 }))).toEqual([]);
    expect(problemsOf(delay({ seconds: 90 }, { timeout_secs: 60 }))).toEqual([
      { path: 'tasks[0].config.seconds', message: expect.stringMatching(/^delay of 90s exceeds the task's timeout of 60s/) },
    ]);
    expect(problemsOf({ ...delay({ ms: 2500 }), queue_config: { timeout_secs: 2 } })).toEqual([
      { path: 'tasks[0].config.ms', message: expect.stringMatching(/^delay of 2\.5s exceeds the queue's timeout of 2s/) },
    ]);
    // A task on another queue runs under that queue's policy, unknown here.
    expect(problemsOf({ ...delay({ ms: 2500 }, { queue: 'other' }), queue_config: { timeout_secs: 2 } })).toEqual([]);
  });
});

describe('queue policy', () => {
  it('never defaults a burst beyond the largest allowed', () => {
    expect(bucketOf(QueuePolicyInput.parse({ rate_limit: { per_second: MAX_RATE_PER_SECOND } }))).toEqual({ rate: MAX_RATE_PER_SECOND, burst: MAX_BURST });
    expect(bucketOf(QueuePolicyInput.parse({ rate_limit: { per_second: 2.5 } }))).toEqual({ rate: 2.5, burst: 3 });
  });
});
