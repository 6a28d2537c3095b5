import { describe, expect, it } from 'vitest';
import { silentLogger } from '@taskstream/nats';
import { WriteBatch, type PendingWrites } from '../src/write-batch.js';

interface Flow {
  seq: number;
}

function message(pending: number) {
  const msg = { acks: 0, info: { pending }, ack: () => void msg.acks++ };
  return msg;
}

function batch(write: (p: PendingWrites<Flow>) => Promise<void>, maxHeld = 3, minIntervalMs = 0) {
  return new WriteBatch<Flow>({ write, merge: (a, b) => (b.seq >= a.seq ? b : a), log: silentLogger, maxHeld, maxDelayMs: 20, minIntervalMs });
}

describe('projector write batch', () => {
  it('writes each flow once per batch with its newest state, then acknowledges every message', async () => {
    const writes: Array<PendingWrites<Flow>> = [];
    const b = batch(async (p) => void writes.push(p), 10);
    const msgs = [message(2), message(1), message(0)];
    b.hold(msgs[0]!, 'f1', { seq: 1 });
    b.hold(msgs[1]!, 'f1', { seq: 2 });
    expect(b.due(msgs[1]!)).toBe(false);
    b.hold(msgs[2]!, 'f2', { seq: 3 });
    expect(b.due(msgs[2]!)).toBe(true);
    expect(msgs.map((m) => m.acks)).toEqual([0, 0, 0]);
    await b.flush();
    expect(writes).toHaveLength(1);
    expect([...writes[0]!.flows]).toEqual([['f1', { seq: 2 }], ['f2', { seq: 3 }]]);
    expect(msgs.map((m) => m.acks)).toEqual([1, 1, 1]);
    await b.close();
  });

  it('is due once maxHeld messages wait, and writes by itself after maxDelayMs', async () => {
    const writes: Array<PendingWrites<Flow>> = [];
    const b = batch(async (p) => void writes.push(p), 2);
    const first = message(5);
    b.hold(first, 'f1', { seq: 1 });
    expect(b.due(first)).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(writes).toHaveLength(1);
    expect(first.acks).toBe(1);
    const [a, c] = [message(5), message(5)];
    b.hold(a, 'f1', { seq: 2 });
    b.hold(c, 'f1', { seq: 3 });
    expect(b.due(c)).toBe(true);
    await b.close();
  });

  it('spaces writes by minIntervalMs when events trickle in, writing the last one when the interval ends', async () => {
    const writes: Array<PendingWrites<Flow>> = [];
    const b = new WriteBatch<Flow>({ write: async (p) => void writes.push(p), merge: (a, c) => (c.seq >= a.seq ? c : a), log: silentLogger, maxDelayMs: 1_000, minIntervalMs: 40 });
    const first = message(0);
    b.hold(first, 'f1', { seq: 1 });
    expect(b.due(first)).toBe(true);
    await b.flush();
    const second = message(0);
    b.hold(second, 'f1', { seq: 2 });
    expect(b.due(second)).toBe(false);
    expect(second.acks).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(writes.map((w) => [...w.flows.values()])).toEqual([[{ seq: 1 }], [{ seq: 2 }]]);
    expect(second.acks).toBe(1);
    await b.close();
  });

  it('keeps messages unacknowledged when a write fails, and writes the newest state on retry', async () => {
    let fail = true;
    const writes: Array<PendingWrites<Flow>> = [];
    const b = batch(async (p) => {
      if (fail) throw new Error('bucket unavailable');
      writes.push(p);
    });
    const first = message(0);
    b.hold(first, 'f1', { seq: 1 });
    await b.flush();
    expect(first.acks).toBe(0);
    const second = message(0);
    b.hold(second, 'f1', { seq: 2 });
    fail = false;
    await b.flush();
    expect([first.acks, second.acks]).toEqual([1, 1]);
    expect([...writes[0]!.flows]).toEqual([['f1', { seq: 2 }]]);
    await b.close();
  });
});
