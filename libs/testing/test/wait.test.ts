import { describe, expect, it } from 'vitest';
import { StopWaiting, waitFor } from '../src/wait.js';

describe('waitFor', () => {
  it('retries a probe that throws, and says the last error when it gives up', async () => {
    let calls = 0;
    const waited = waitFor(
      'a value',
      () => {
        calls++;
        if (calls < 3) throw new Error(`not yet (${calls})`);
        return calls;
      },
      5_000,
      1,
    );
    await expect(waited).resolves.toBe(3);
    await expect(waitFor('nothing', () => { throw new Error('still no'); }, 50, 1)).rejects.toThrow('timed out after 50 ms waiting for nothing: still no');
  });

  it('stops at once when the probe throws StopWaiting, with its message', async () => {
    let calls = 0;
    const waited = waitFor(
      'a process that exited',
      () => {
        calls++;
        throw new StopWaiting('the gateway exited (1)');
      },
      60_000,
      1,
    );
    await expect(waited).rejects.toThrow(new StopWaiting('the gateway exited (1)'));
    expect(calls).toBe(1);
  });
});
