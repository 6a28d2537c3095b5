import { NodeTransport } from '@nats-io/transport-node/lib/node_transport.js';
import { NatsServer } from '@taskstream/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { connectNats, CoalescingTransport, jetstream, jetstreamManager, MAX_HELD_BYTES, type NatsConnection } from '../src/index.js';

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (frame: Uint8Array) => new TextDecoder().decode(frame);
const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('the coalescing transport', () => {
  afterEach(() => vi.restoreAllMocks());

  it('writes what is sent during one turn of the event loop as one frame, in order', async () => {
    const written: string[] = [];
    vi.spyOn(NodeTransport.prototype, 'send').mockImplementation((frame: Uint8Array) => void written.push(text(frame)));
    const transport = new CoalescingTransport();
    transport.send(bytes('PUB a 1\r\n'));
    await Promise.resolve();
    transport.send(bytes('PUB b 1\r\n'));
    queueMicrotask(() => transport.send(bytes('PING\r\n')));
    expect(written).toEqual([]);
    await turn();
    expect(written).toEqual(['PUB a 1\r\nPUB b 1\r\nPING\r\n']);
    transport.send(bytes('PUB c 1\r\n'));
    await turn();
    expect(written).toEqual(['PUB a 1\r\nPUB b 1\r\nPING\r\n', 'PUB c 1\r\n']);
  });

  it('writes at once when what it holds reaches MAX_HELD_BYTES', async () => {
    const written: number[] = [];
    vi.spyOn(NodeTransport.prototype, 'send').mockImplementation((frame: Uint8Array) => void written.push(frame.length));
    const transport = new CoalescingTransport();
    const chunk = new Uint8Array(MAX_HELD_BYTES / 4);
    for (let i = 0; i < 4; i++) transport.send(chunk);
    expect(written).toEqual([MAX_HELD_BYTES]);
    transport.send(new Uint8Array(10));
    await turn();
    expect(written).toEqual([MAX_HELD_BYTES, 10]);
  });

  it('writes what it holds before it closes or disconnects', async () => {
    const written: string[] = [];
    vi.spyOn(NodeTransport.prototype, 'send').mockImplementation((frame: Uint8Array) => void written.push(text(frame)));
    const close = vi.spyOn(NodeTransport.prototype, 'close').mockImplementation(async () => void written.push('closed'));
    const disconnect = vi.spyOn(NodeTransport.prototype, 'disconnect').mockImplementation(() => void written.push('disconnected'));
    const transport = new CoalescingTransport();
    transport.send(bytes('UNSUB 1\r\n'));
    await transport.close();
    transport.send(bytes('PUB d 1\r\n'));
    transport.disconnect();
    expect(written).toEqual(['UNSUB 1\r\n', 'closed', 'PUB d 1\r\n', 'disconnected']);
    expect(close).toHaveBeenCalledOnce();
    expect(disconnect).toHaveBeenCalledOnce();
    await turn();
    expect(written).toHaveLength(4);
  });
});

describe('connections through the coalescing transport', () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  beforeAll(async () => {
    nats = await NatsServer.start();
    nc = await connectNats({ servers: nats.url, name: 'transport-test' });
  });
  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });

  it('carry publishes, requests and JetStream acknowledgements, in order, from many continuations at once', async () => {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'ORDER', subjects: ['order.>'] });
    const js = jetstream(nc);
    const acks = await Promise.all(Array.from({ length: 200 }, (_, i) => js.publish(`order.${i % 7}`, bytes(String(i)))));
    expect(acks.map((ack) => ack.seq)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    const consumer = await js.consumers.get('ORDER');
    const seen: number[] = [];
    const messages = await consumer.consume({ max_messages: 50 });
    for await (const msg of messages) {
      seen.push(Number(text(msg.data)));
      msg.ack();
      if (seen.length === 200) break;
    }
    expect(seen).toEqual(Array.from({ length: 200 }, (_, i) => i));
    await nc.flush();
    expect((await jsm.streams.info('ORDER')).state.messages).toBe(200);
  });
});
