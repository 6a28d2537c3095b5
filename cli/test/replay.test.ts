import { describe, expect, it } from 'vitest';
import { replayLines } from '../src/replay.js';

const flow = '01JAAAAAAAAAAAAAAAAAAAAAAA';
const at = (ms: number) => new Date(Date.UTC(2026, 0, 1) + ms).toISOString();
const e = (seq: number, ms: number, event: Record<string, unknown>) => ({ seq, event: { id: '01JBBBBBBBBBBBBBBBBBBBBBBB', version: 1, flow_id: flow, time: at(ms), ...event } as any });

describe('taskstream replay', () => {
  const events = [
    e(1, 0, { type: 'flow.submitted', data: { definition: { queue: 'default', tasks: [{ id: 'a', executor: 'noop', config: {}, depends_on: [], queue: 'default', priority: 0 }] } } }),
    e(2, 5, { type: 'flow.started', data: {} }),
    e(3, 6, { type: 'task.ready', task_id: 'a', data: { queue: 'default', priority: 0, spec: { id: 'a', executor: 'noop', config: {}, depends_on: [], queue: 'default', priority: 0 } } }),
    e(4, 9, { type: 'task.started', task_id: 'a', attempt: 1, data: { executor_id: 'host:1:*' } }),
    e(5, 20, { type: 'task.attempt_failed', task_id: 'a', attempt: 1, data: { error: { message: 'boom\nmore', code: 'EXIT_CODE', retryable: true }, duration_ms: 11 } }),
    e(6, 1250, { type: 'task.succeeded', task_id: 'a', attempt: 2, data: { duration_ms: 30 } }),
    e(7, 1260, { type: 'flow.succeeded', data: { succeeded: 1, total: 1 } }),
  ];

  it('prints relative times, sequences, who recorded each event, attempts and errors', () => {
    const lines = replayLines(events);
    expect(lines[0]).toBe('   +0.000s  #1      gateway    flow.submitted        1 tasks');
    expect(lines[3]).toBe('   +0.009s  #4      executor   task.started          [a] attempt 1 on host:1:*');
    expect(lines[4]).toBe('   +0.020s  #5      executor   task.attempt_failed   [a] attempt 1: boom');
    expect(lines[6]).toBe('   +1.260s  #7      planner    flow.succeeded');
  });

  it('steps through the folded states', () => {
    const lines = replayLines(events, true);
    expect(lines[1]).toBe('            flow submitted; 1 pending');
    expect(lines.at(-1)).toBe('            flow succeeded; 1 succeeded');
  });

  it('shows an approval: its wait from the planner, its ack from the gateway with who acked, a timeout from the planner', () => {
    const spec = { id: 'gate', executor: 'approval', config: {}, depends_on: [], queue: 'default', priority: 0 };
    const approval = [
      e(1, 0, { type: 'flow.submitted', data: { definition: { queue: 'default', tasks: [spec] } } }),
      e(2, 5, { type: 'task.waiting', task_id: 'gate', data: { output: { awaiting_approval: true, message: 'Ship it?\nreally', code: 'c'.repeat(32) }, timeout_secs: 60 } }),
      e(3, 2005, { type: 'task.succeeded', task_id: 'gate', attempt: 1, data: { output: { approved: true }, duration_ms: 2000, ack: { approved_by: 'alice', requested_by: 'key:k1' } } }),
      e(4, 2006, { type: 'task.failed', task_id: 'gate', attempt: 1, data: { error: { message: 'not now', code: 'REJECTED', retryable: false }, duration_ms: 2001, ack: {} } }),
      e(5, 2007, { type: 'task.timed_out', task_id: 'gate', attempt: 1, data: { timeout_ms: 60000, error: { message: 'no approval within 60s', code: 'APPROVAL_TIMEOUT', retryable: false } } }),
    ];
    const lines = replayLines(approval, true);
    expect(lines[2]).toBe('   +0.005s  #2      planner    task.waiting          [gate] awaiting approval: Ship it? (times out after 60s)');
    expect(lines[3]).toBe('            flow submitted; 1 waiting');
    expect(lines[4]).toBe('   +2.005s  #3      gateway    task.succeeded        [gate] approved by alice (key:k1) after 2.00s of waiting');
    expect(lines[6]).toBe('   +2.006s  #4      gateway    task.failed           [gate] rejected: not now');
    expect(lines[8]).toBe('   +2.007s  #5      planner    task.timed_out        [gate] attempt 1: no approval within 60s');
  });
});
