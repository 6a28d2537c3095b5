import { STOPS, type Stop, type TaskSpec } from '@taskstream/domain';
import { describe, expect, it } from 'vitest';
import { InfrastructureError, Interrupted } from '../src/errors.js';
import { FlowStops } from '../src/stops.js';

const cancel = STOPS['flow.cancel_requested'];
const deadline = STOPS['flow.deadline_passed'];
const failFast = STOPS['flow.fail_fast'];
const task: TaskSpec = { id: 't', depends_on: [], queue: 'default', priority: 0, executor: 'noop', config: {} };
const always: TaskSpec = { ...task, id: 'cleanup', trigger_rule: 'always' };

/** FlowStops whose log holds `stored` for every flow, counting its reads. */
function withLog(stored: Stop[] = []) {
  const reads: string[] = [];
  const stops = new FlowStops(async (flowId) => {
    reads.push(flowId);
    return stored;
  });
  return { stops, reads };
}

describe('the stops known for flows', () => {
  it('keeps the first stop, unless a later one also stops what the first spared', () => {
    const { stops } = withLog();
    stops.stop('f', deadline);
    stops.stop('f', cancel);
    expect(stops.reasonFor('f', task)).toBe(deadline.why);

    stops.stop('g', failFast);
    expect(stops.reasonFor('g', always)).toBeUndefined();
    stops.stop('g', cancel);
    expect(stops.reasonFor('g', always)).toBe(cancel.why);
    stops.stop('g', failFast);
    expect(stops.reasonFor('g', task)).toBe(cancel.why);
  });

  it("aborts the flow's running tasks it stops, with its reason; fail_fast spares always tasks until a cancel", () => {
    const { stops } = withLog();
    const plain = new AbortController();
    const spared = new AbortController();
    const other = new AbortController();
    stops.track('f', plain, task);
    stops.track('f', spared, always);
    stops.track('other', other, task);
    stops.stop('f', failFast);
    expect(plain.signal.reason).toEqual(new Error(failFast.why));
    expect(spared.signal.aborted).toBe(false);
    expect(other.signal.aborted).toBe(false);
    stops.stop('f', cancel);
    expect(spared.signal.reason).toEqual(new Error(cancel.why));
  });

  it('aborts no task once it stopped being tracked', () => {
    const { stops } = withLog();
    const done = new AbortController();
    const untrack = stops.track('f', done, task);
    untrack();
    stops.stop('f', cancel);
    expect(done.signal.aborted).toBe(false);
  });

  it('interrupts every running task for a shutdown, which is no stop of their flows', () => {
    const { stops } = withLog();
    const a = new AbortController();
    const b = new AbortController();
    stops.track('f', a, task);
    stops.track('g', b, always);
    stops.interruptAll();
    expect(a.signal.reason).toBeInstanceOf(Interrupted);
    expect(b.signal.reason).toBeInstanceOf(Interrupted);
    expect(stops.reasonFor('f', task)).toBeUndefined();
  });

  it('forgets the oldest flow beyond 10,000, never the newest', () => {
    const { stops } = withLog();
    for (let i = 0; i <= 10_000; i++) stops.stop(`f${i}`, cancel);
    expect(stops.reasonFor('f0', task)).toBeUndefined();
    expect(stops.reasonFor('f1', task)).toBe(cancel.why);
    expect(stops.reasonFor('f10000', task)).toBe(cancel.why);
  });
});

describe('the stops the log holds', () => {
  it('reads the log for a flow with no known stop, and remembers what it finds', async () => {
    const { stops, reads } = withLog([failFast, cancel]);
    expect(await stops.storedStopOf('f')).toBe(cancel);
    expect(reads).toEqual(['f']);
    expect(stops.reasonFor('f', always)).toBe(cancel.why);
  });

  it('needs no read when the known stop spares nothing', async () => {
    const { stops, reads } = withLog([failFast]);
    stops.stop('f', deadline);
    expect(await stops.storedStopOf('f')).toBe(deadline);
    expect(reads).toEqual([]);
  });

  it('reads again when the known stop is fail_fast, which a stored cancel makes stronger', async () => {
    const { stops, reads } = withLog([cancel]);
    stops.stop('f', failFast);
    expect(await stops.storedStop('f', always)).toBe(cancel.why);
    expect(reads).toEqual(['f']);
  });

  it('gives no reason for an always task when the log holds only fail_fast', async () => {
    const { stops } = withLog([failFast]);
    expect(await stops.storedStop('f', always)).toBeUndefined();
    expect(await stops.storedStop('f', task)).toBe(failFast.why);
  });

  it('makes a failed read the infrastructure’s, naming the flow', async () => {
    const stops = new FlowStops(async () => {
      throw new Error('no responders');
    });
    const failure = stops.storedStopOf('f');
    await expect(failure).rejects.toBeInstanceOf(InfrastructureError);
    await expect(failure).rejects.toThrow('could not read whether flow f was cancelled: no responders');
  });

  it('reads a flow once for what is known of it, then counts on the watch for every later stop', async () => {
    const { stops, reads } = withLog([]);
    expect(await stops.knownStopOf('f')).toBeUndefined();
    expect(await stops.knownStop('f', task)).toBeUndefined();
    expect(reads).toEqual(['f']);
    stops.stop('f', failFast);
    expect(await stops.knownStop('f', task)).toBe(failFast.why);
    expect(reads).toEqual(['f']);
    // The read that guards a start always asks the log.
    await stops.storedStopOf('f');
    expect(reads).toEqual(['f', 'f']);
  });
});
