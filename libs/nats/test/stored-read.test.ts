import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectNats, type NatsConnection } from '../src/connection.js';
import { NatsServer } from '@taskstream/testing';
import { READ_STALL_MS, readStored } from '../src/stored-read.js';

describe('readStored (real nats-server)', () => {
  let server: NatsServer;
  let nc: NatsConnection;

  beforeAll(async () => {
    server = await NatsServer.start();
    nc = await connectNats({ servers: server.url, name: 'stored-read-test' });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'READS', subjects: ['reads.>'] });
    const js = jetstream(nc);
    for (let i = 1; i <= 10; i++) await js.publish(`reads.${i % 2 === 0 ? 'even' : 'odd'}`, new TextEncoder().encode(String(i)));
  });

  afterAll(async () => {
    if (server?.pid !== undefined) process.kill(server.pid, 'SIGCONT');
    await nc?.close();
    await server?.stop();
  });

  const read = async (filter: string, take: (n: number) => boolean | void = () => undefined, batch?: number) => {
    const consumer = await jetstream(nc).consumers.get('READS', { filter_subjects: filter });
    const seen: number[] = [];
    const end = await readStored(consumer, (msg) => {
      seen.push(Number(msg.string()));
      return take(Number(msg.string()));
    }, batch);
    return { end, seen };
  };

  it('reads everything stored on the filter, in order, and ends', async () => {
    expect(await read('reads.even')).toEqual({ end: 'caught-up', seen: [2, 4, 6, 8, 10] });
    expect(await read('reads.none')).toEqual({ end: 'caught-up', seen: [] });
  });

  it('stops where its reader says', async () => {
    expect(await read('reads.>', (n) => n < 3)).toEqual({ end: 'stopped', seen: [1, 2, 3] });
  });

  it('gives up a consumer that stops delivering, instead of waiting for ever', async () => {
    const pid = server.pid!;
    // One message a pull: the server is paused after the first, so the second pull is never answered.
    const { end, seen } = await read('reads.odd', (n) => {
      if (n === 1) process.kill(pid, 'SIGSTOP');
    }, 1);
    process.kill(pid, 'SIGCONT');
    expect(end).toBe('stalled');
    // A message the server wrote just before it was paused may still arrive: the read ends partway, in order.
    expect(seen.length).toBeLessThan(5);
    expect(seen).toEqual([1, 3, 5, 7, 9].slice(0, seen.length));
  }, READ_STALL_MS + 10_000);
});
