import { retentionSweepMs } from '@taskstream/domain';
import type { Logger } from '@taskstream/nats';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AGAIN_MS, startRetentionSweeps } from '../src/retention.js';

const RETENTION_MS = 3_600_000;
const EVERY_MS = retentionSweepMs(RETENTION_MS);

/** A sweeper answering from a script per partition and recording each call; a thrown answer is a failed sweep. */
function scriptedSweeper(script: Record<number, Array<{ removed: number; more: boolean } | Error>>) {
  const calls: number[] = [];
  return {
    calls,
    sweeper: {
      sweep: async (partition: number) => {
        calls.push(partition);
        const answer = script[partition]?.shift() ?? { removed: 0, more: false };
        if (answer instanceof Error) throw answer;
        return answer;
      },
    },
  };
}

function recordingLog() {
  const warnings: Array<{ fields: Record<string, unknown>; message: string }> = [];
  const log: Logger = { debug() {}, info() {}, error() {}, warn: (fields: Record<string, unknown>, message: string) => void warnings.push({ fields, message }) } as Logger;
  return { log, warnings };
}

describe("the projector's retention sweeps", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('go on to the next partition when one fails, say which, and try it again at the next sweep', async () => {
    const { sweeper, calls } = scriptedSweeper({ 3: [new Error('no responders available for request')] });
    const { log, warnings } = recordingLog();
    const sweeps = startRetentionSweeps(log, sweeper, RETENTION_MS, () => [3, 7]);
    await vi.advanceTimersByTimeAsync(EVERY_MS);
    expect(calls).toEqual([3, 7]);
    expect(warnings).toEqual([{ fields: { partition: 3, err: 'no responders available for request' }, message: 'could not remove the flows past their retention; trying again at the next sweep' }]);
    await vi.advanceTimersByTimeAsync(EVERY_MS);
    expect(calls).toEqual([3, 7, 3, 7]);
    expect(warnings).toHaveLength(1);
    await sweeps.stop();
  });

  it('sweep again at once while a partition leaves flows past their retention, then at the usual interval', async () => {
    const { sweeper, calls } = scriptedSweeper({ 5: [{ removed: 200, more: true }, { removed: 40, more: false }] });
    const sweeps = startRetentionSweeps(recordingLog().log, sweeper, RETENTION_MS, () => [5]);
    await vi.advanceTimersByTimeAsync(EVERY_MS);
    expect(calls).toEqual([5]);
    await vi.advanceTimersByTimeAsync(AGAIN_MS);
    expect(calls).toEqual([5, 5]);
    await vi.advanceTimersByTimeAsync(EVERY_MS - 1);
    expect(calls).toEqual([5, 5]);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toEqual([5, 5, 5]);
    await sweeps.stop();
  });

  it('sweep only the partitions owned at each sweep, and none once stopped', async () => {
    let owned = [1, 2];
    const { sweeper, calls } = scriptedSweeper({});
    const sweeps = startRetentionSweeps(recordingLog().log, sweeper, RETENTION_MS, () => owned);
    await vi.advanceTimersByTimeAsync(EVERY_MS);
    owned = [2];
    await vi.advanceTimersByTimeAsync(EVERY_MS);
    expect(calls).toEqual([1, 2, 2]);
    await sweeps.stop();
    await vi.advanceTimersByTimeAsync(EVERY_MS * 3);
    expect(calls).toEqual([1, 2, 2]);
  });
});
