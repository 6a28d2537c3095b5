import { RequestError, TimeoutError } from '@nats-io/nats-core';
import { NatsServer } from '@taskstream/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connectNats, jetstream, jetstreamManager, type NatsConnection } from '../src/index.js';

/** Records every value `Error.stackTraceLimit` is set to while `run` runs. */
async function stackLimitsSetDuring(run: () => Promise<void>): Promise<number[]> {
  const original = Object.getOwnPropertyDescriptor(Error, 'stackTraceLimit')!;
  let limit = Error.stackTraceLimit;
  const set: number[] = [];
  Object.defineProperty(Error, 'stackTraceLimit', {
    configurable: true,
    get: () => limit,
    set: (value: number) => {
      set.push(value);
      limit = value;
    },
  });
  try {
    await run();
  } finally {
    Object.defineProperty(Error, 'stackTraceLimit', original);
    Error.stackTraceLimit = limit;
  }
  return set;
}

describe('requests through connectNats', () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  const limit = Error.stackTraceLimit;
  beforeAll(async () => {
    nats = await NatsServer.start();
    nc = await connectNats({ servers: nats.url, name: 'settled-requests-test' });
    nc.subscribe('echo', { callback: (_, msg) => void msg.respond(msg.data) });
    await nc.flush();
  });
  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });
  afterEach(() => expect(Error.stackTraceLimit).toBe(limit));

  it('are answered as before, and the no-op error ending each answered one is built without a stack', async () => {
    let answers: string[] = [];
    const set = await stackLimitsSetDuring(async () => {
      answers = await Promise.all(['a', 'b', 'c'].map(async (text) => (await nc.request('echo', text, { timeout: 5_000 })).string()));
    });
    expect(answers).toEqual(['a', 'b', 'c']);
    // Each answered request lowers the limit to 0 once and puts it back.
    expect(set).toEqual([0, limit, 0, limit, 0, limit]);
  });

  it('still reject with a stack when nobody answers or the answer is late', async () => {
    const none = await nc.request('nobody.here', 'x', { timeout: 5_000 }).catch((error: unknown) => error);
    expect(none).toBeInstanceOf(RequestError);
    expect((none as RequestError).isNoResponders()).toBe(true);
    nc.subscribe('slow', { callback: (_, msg) => void setTimeout(() => msg.respond('late'), 500) });
    const late = await nc.request('slow', 'x', { timeout: 50 }).catch((error: unknown) => error);
    expect(late).toBeInstanceOf(TimeoutError);
    expect((late as Error).stack).toContain('TimeoutError');
  });

  it('carry JetStream publishes and their acknowledgements', async () => {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'ANSWERED', subjects: ['answered.>'] });
    const js = jetstream(nc);
    const acks = await Promise.all(Array.from({ length: 50 }, (_, i) => js.publish(`answered.${i}`, String(i))));
    expect(acks.map((ack) => ack.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    const missing = await jsm.streams.getMessage('ANSWERED', { last_by_subj: 'answered.none' });
    expect(missing).toBeNull();
  });
});
