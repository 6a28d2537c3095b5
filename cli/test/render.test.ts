import { describe, expect, it } from 'vitest';
import { RunRenderer } from '../src/render.js';

const flow = '01JAAAAAAAAAAAAAAAAAAAAAAA';
const at = (ms: number) => new Date(Date.UTC(2026, 0, 1) + ms).toISOString();
const base = { id: '01JBBBBBBBBBBBBBBBBBBBBBBB', version: 1 as const, flow_id: flow };

describe('run output', () => {
  it('prints one aligned line per settled task and the closing line', () => {
    const r = new RunRenderer(['build', 'test-unit', 'test-integ', 'deploy']);
    const definition = { queue: 'default', tasks: [] as any[] };
    expect(r.lines({ ...base, type: 'flow.submitted', time: at(0), data: { definition } } as any)).toEqual([]);
    expect(r.lines({ ...base, type: 'task.succeeded', task_id: 'build', attempt: 1, time: at(1200), data: { duration_ms: 1200 } })).toEqual(['[build]      succeeded  1.2s']);
    expect(r.lines({ ...base, type: 'task.succeeded', task_id: 'test-integ', attempt: 1, time: at(2000), data: { duration_ms: 800 } })).toEqual(['[test-integ] succeeded  0.8s']);
    expect(r.lines({ ...base, type: 'flow.succeeded', time: at(2500), data: { succeeded: 4, total: 4 } })).toEqual(['', `Flow ${flow} complete 4/4 succeeded (2.5s)`]);
  });

  it('shows failures with the tail of the error, retries, skips and a failed closing line', () => {
    const r = new RunRenderer(['a', 'b']);
    r.lines({ ...base, type: 'flow.submitted', time: at(0), data: { definition: { queue: 'default', tasks: [] } } } as any);
    const error = { message: 'command exited with code 1', code: 'EXIT_CODE', retryable: true, stderr_tail: 'line1\nboom' };
    expect(r.lines({ ...base, type: 'task.attempt_failed', task_id: 'a', attempt: 1, time: at(10), data: { error, duration_ms: 5 } })).toEqual([]);
    expect(r.lines({ ...base, type: 'task.retry_scheduled', task_id: 'a', attempt: 1, time: at(11), data: { next_attempt: 2, delay_ms: 500 } })).toEqual([
      '[a] retrying   attempt 1 failed, next in 0.5s: command exited with code 1',
    ]);
    expect(r.lines({ ...base, type: 'task.failed', task_id: 'a', attempt: 2, time: at(700), data: { error, duration_ms: 300 } })).toEqual([
      '[a] failed     0.3s after 2 attempts',
      '    line1',
      '    boom',
    ]);
    expect(r.lines({ ...base, type: 'task.skipped', task_id: 'b', time: at(701), data: { reason: 'upstream "a" failed', upstream: ['a'] } })).toEqual(['[b] skipped    (upstream "a" failed)']);
    expect(r.lines({ ...base, type: 'flow.failed', time: at(1100), data: { failed_tasks: ['a'], skipped_tasks: ['b'], succeeded: 0, total: 2, reason: 'x' } })).toEqual([
      '',
      `Flow ${flow} failed 0/2 succeeded, 1 failed, 1 skipped (1.1s)`,
    ]);
  });

  it('says a map task runs its instances and a spawn task added tasks', () => {
    const r = new RunRenderer(['each', 'gen']);
    expect(r.lines({ ...base, type: 'task.waiting', task_id: 'each', time: at(1), data: { map: { instances: 3, concurrency: 2 } } })).toEqual(['[each] mapping    3 instances, 2 at a time']);
    const spec = { id: 'gen/a', executor: 'noop', config: {}, depends_on: ['gen'], queue: 'default', priority: 0, spawned_by: 'gen' };
    expect(r.lines({ ...base, type: 'flow.tasks_added', time: at(2), data: { by_task: 'gen', kind: 'spawn', part: 0, tasks: [spec] } })).toEqual(['[gen]  spawned    1 task']);
    expect(r.lines({ ...base, type: 'flow.tasks_added', time: at(2), data: { by_task: 'each', kind: 'map', part: 0, tasks: [spec] } })).toEqual([]);
  });

  it('says an approval waits, and the command that approves it', () => {
    const r = new RunRenderer(['gate', "it's/odd"]);
    const output = { awaiting_approval: true as const, message: 'Ship it?\nDetails below', code: 'c'.repeat(32) };
    expect(r.lines({ ...base, type: 'task.waiting', task_id: 'gate', time: at(5), data: { output } })).toEqual([
      '[gate]     waiting    for approval: Ship it?',
      `    taskstream approve ${flow} gate   (or reject)`,
    ]);
    expect(r.lines({ ...base, type: 'task.waiting', task_id: "it's/odd", time: at(6), data: { output } })[1]).toBe(`    taskstream approve ${flow} 'it'\\''s/odd'   (or reject)`);
  });
});
