import { NatsServer } from '@taskstream/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectNats, jetstream, jetstreamManager, lastStoredSeq, storesAnyOn, type NatsConnection } from '../src/index.js';

describe('storesAnyOn', () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  beforeAll(async () => {
    nats = await NatsServer.start();
    nc = await connectNats({ servers: nats.url, name: 'last-stored-test' });
    await (await jetstreamManager(nc)).streams.add({ name: 'STOPS', subjects: ['stops.>'] });
    await jetstream(nc).publish('stops.f1.cancel', 'x');
  });
  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });

  it('says whether the stream holds a message on the subject', async () => {
    expect(await storesAnyOn(nc, 'STOPS', 'stops.f1.cancel')).toBe(true);
    expect(await storesAnyOn(nc, 'STOPS', 'stops.f2.cancel')).toBe(false);
  });

  it('still says so once the message is the only one left after purges of others', async () => {
    const js = jetstream(nc);
    await js.publish('stops.f3.cancel', 'y');
    await (await jetstreamManager(nc)).streams.purge('STOPS', { filter: 'stops.f1.>' });
    expect(await storesAnyOn(nc, 'STOPS', 'stops.f1.cancel')).toBe(false);
    expect(await storesAnyOn(nc, 'STOPS', 'stops.f3.cancel')).toBe(true);
  });

  it('fails, naming the stream, when the stream does not exist', async () => {
    await expect(storesAnyOn(nc, 'NO_SUCH_STREAM', 'stops.f1.cancel')).rejects.toThrow(/stream NO_SUCH_STREAM: stream not found/);
  });

  it("gives the leader's last sequence on a subject or wildcard, none for nothing, and fails for no stream", async () => {
    const js = jetstream(nc);
    const { seq } = await js.publish('stops.f4.deadline', 'z');
    expect(await lastStoredSeq(js, 'STOPS', 'stops.f4.>')).toBe(seq);
    expect(await lastStoredSeq(js, 'STOPS', 'stops.f5.>')).toBeUndefined();
    await expect(lastStoredSeq(js, 'NO_SUCH_STREAM', 'stops.f4.>')).rejects.toThrow(/stream not found/);
  });
});
