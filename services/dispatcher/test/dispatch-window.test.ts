import { HandBack } from '@taskstream/nats';
import { describe, expect, it } from 'vitest';
import { DispatchWindow } from '../src/dispatch-window.js';

/**
 * A window whose sends are recorded by task key, on a clock the test moves. Sends complete at once
 * unless `holdSends()` was called; then they wait for `finishSends()`.
 */
function windowOf(size: number, options: { leaseMs?: number; sending?: number } = {}) {
  let now = 0;
  const window = new DispatchWindow('default', { size, sending: options.sending ?? 100, leaseMs: options.leaseMs ?? 60_000, now: () => now });
  const sent: string[] = [];
  const handedBack: string[] = [];
  const failed: string[] = [];
  /** Tasks whose ready event would be acknowledged: sent, or ended while waiting. */
  const done: string[] = [];
  /** Tasks handed over to the gate (their queue became limited), not sent. */
  const limited: string[] = [];
  const heartbeats = new Map<string, number>();
  const pending: Array<() => void> = [];
  let holdSends = false;
  let seq = 0;
  const ready = (flowId: string, task: string, outcome: 'ok' | 'fail' = 'ok') => {
    const key = `${flowId}:${task}`;
    const msg = { working: () => void heartbeats.set(key, (heartbeats.get(key) ?? 0) + 1) };
    const send = async () => {
      sent.push(key);
      if (holdSends) await new Promise<void>((resolve) => pending.push(resolve));
      if (outcome === 'fail') throw new Error('publish failed');
    };
    window.dispatch({ key, flowId, priority: 0, seq: ++seq, msg }, send).then(
      (exit) => void (exit === 'limited' ? limited : done).push(key),
      (error: unknown) => void (error instanceof HandBack ? handedBack : failed).push(key),
    );
  };
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  return {
    window,
    ready,
    sent,
    handedBack,
    failed,
    done,
    limited,
    heartbeats,
    settle,
    advance: (ms: number) => void (now += ms),
    holdSends: () => void (holdSends = true),
    finishSends: () => pending.splice(0).forEach((resolve) => resolve()),
  };
}

describe('dispatch window', () => {
  it('dispatches no more than the window, then takes turns between flows as tasks end', async () => {
    const w = windowOf(2);
    for (let i = 1; i <= 6; i++) w.ready('big', `t${i}`);
    await w.settle();
    expect(w.sent).toEqual(['big:t1', 'big:t2']);
    w.ready('small', 'a');
    w.ready('small', 'b');
    for (const key of ['big:t1', 'big:t2', 'big:t3', 'small:a', 'big:t4', 'small:b']) {
      w.window.ended(key);
      await w.settle();
      expect(w.window.inFlight).toBe(2);
    }
    expect(w.sent).toEqual(['big:t1', 'big:t2', 'big:t3', 'small:a', 'big:t4', 'small:b', 'big:t5', 'big:t6']);
  });

  it('keeps tasks in fair order while dispatches are slower than arrivals, not first come first served', async () => {
    const w = windowOf(1_000, { sending: 2 });
    w.holdSends();
    for (let i = 1; i <= 6; i++) w.ready('big', `t${i}`);
    w.ready('small', 'a');
    await w.settle();
    expect(w.sent).toEqual(['big:t1', 'big:t2']);
    w.finishSends();
    await w.settle();
    expect(w.sent).toEqual(['big:t1', 'big:t2', 'big:t3', 'small:a']);
  });

  it('reads the ends of flows it knows; a task that ends while it waits leaves without a dispatch', async () => {
    const w = windowOf(1);
    for (const task of ['t1', 't2', 't3']) w.ready('f', task);
    await w.settle();
    expect(w.window.knows('f')).toBe(true);
    expect(w.window.knows('other')).toBe(false);
    w.window.ended('other:t1');
    w.window.ended('f:t2');
    await w.settle();
    expect(w.sent).toEqual(['f:t1']);
    expect(w.done).toEqual(['f:t1', 'f:t2']);
    expect(w.window.size).toBe(1);
    w.window.ended('f:t1');
    await w.settle();
    expect(w.sent).toEqual(['f:t1', 'f:t3']);
    w.window.ended('f:t3');
    expect(w.window.knows('f')).toBe(false);
    expect(w.window.inFlight).toBe(0);
  });

  it('gives the slot of a failed dispatch to the next task', async () => {
    const w = windowOf(1);
    w.ready('f', 't1', 'fail');
    w.ready('f', 't2');
    await w.settle();
    expect(w.failed).toEqual(['f:t1']);
    expect(w.sent).toEqual(['f:t1', 'f:t2']);
    expect(w.window.inFlight).toBe(1);
  });

  it('gives back a slot whose end was missed once its lease runs out, keeping waiting events alive meanwhile', async () => {
    const w = windowOf(1, { leaseMs: 60_000 });
    w.ready('f', 't1');
    w.ready('f', 't2');
    await w.settle();
    w.advance(59_999);
    w.window.heartbeat();
    await w.settle();
    expect(w.sent).toEqual(['f:t1']);
    expect(w.heartbeats.get('f:t2')).toBe(1);
    w.advance(1);
    w.window.heartbeat();
    await w.settle();
    expect(w.sent).toEqual(['f:t1', 'f:t2']);
  });

  it('counts a redelivered task that still holds its slot once', async () => {
    const w = windowOf(2);
    w.ready('f', 't1');
    w.ready('f', 't1');
    w.ready('f', 't2');
    await w.settle();
    expect(w.sent).toEqual(['f:t1', 'f:t1', 'f:t2']);
    expect(w.window.inFlight).toBe(2);
  });

  it('hands back what waits when it closes, and whatever arrives after', async () => {
    const w = windowOf(1);
    w.ready('f', 't1');
    w.ready('f', 't2');
    w.window.close();
    w.ready('f', 't3');
    await w.settle();
    expect(w.sent).toEqual(['f:t1']);
    expect(w.handedBack).toEqual(['f:t2', 'f:t3']);
  });

  it('hands every waiting task over when its queue becomes limited, and keeps the slots of those sent', async () => {
    const w = windowOf(2);
    for (let i = 1; i <= 4; i++) w.ready('f', `t${i}`);
    await w.settle();
    w.window.handOver();
    await w.settle();
    expect({ sent: w.sent, done: w.done, limited: w.limited, waiting: w.window.size, inFlight: w.window.inFlight }).toEqual({ sent: ['f:t1', 'f:t2'], done: ['f:t1', 'f:t2'], limited: ['f:t3', 'f:t4'], waiting: 0, inFlight: 2 });
    // A task that comes later still waits for a slot, which the ends of those sent free.
    w.ready('g', 'a');
    await w.settle();
    expect(w.sent).toEqual(['f:t1', 'f:t2']);
    w.window.ended('f:t1');
    await w.settle();
    expect(w.sent).toEqual(['f:t1', 'f:t2', 'g:a']);
  });
});

