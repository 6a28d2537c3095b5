import { connect, type Socket } from 'node:net';
import { waitFor } from '@taskstream/testing';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestStack } from '../support/stack.js';

/*
 * Streaming clients that stop reading, against a gateway whose stall limit is 2 s
 * (TASKSTREAM_CLIENT_STALL_SECS): each is dropped once it has read nothing of what waits for it for
 * that long, and the gateway counts it. The flow's log is about 17 MB (its stream to a Tasked client
 * about 11 MB), more than loopback's socket buffers hold for a client that reads nothing.
 */
describe('streaming clients that read nothing', () => {
  let stack: TestStack;
  let flowId: string;

  beforeAll(async () => {
    stack = await TestStack.start({ env: { TASKSTREAM_CLIENT_STALL_SECS: '2' } });
    flowId = await stack.submit({
      tasks: [
        { id: 'seed', executor: 'noop', config: { output: 'x'.repeat(96 * 1024) } },
        ...Array.from({ length: 60 }, (_, i) => ({ id: `double-${i}`, executor: 'transform', config: { expr: 'tasks.seed.output + tasks.seed.output' }, depends_on: ['seed'] })),
      ],
    });
    expect((await stack.settled(flowId, 60_000)).status).toBe('succeeded');
  }, 90_000);

  afterAll(async () => {
    await stack?.stop();
  });

  const dropped = async (stream: string) => {
    const text = (await stack.inject({ method: 'GET', url: '/metrics' })).body;
    return Number(new RegExp(`^taskstream_gateway_stalled_clients_dropped_total\\{stream="${stream}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
  };
  const closedBy = (socket: Socket) => new Promise<void>((resolve) => socket.once('close', () => resolve()));

  it('drops a WebSocket feed client that reads nothing of its backlog after its resync, without a close frame', async () => {
    const before = await dropped('feed');
    const client = new WebSocket(`${stack.url.replace('http', 'ws')}/api/v1/flows/${flowId}/feed`);
    await new Promise<void>((resolve, reject) => client.once('open', () => resolve()).once('error', reject));
    (client as any)._socket.pause();
    const closed = new Promise<number>((resolve) => client.once('close', (code) => resolve(code)));
    await waitFor('the paused feed client to be dropped', async () => ((await dropped('feed')) === before + 1 ? true : undefined), 30_000);
    // Reading again, it finds its connection ended with no close frame: dropped, not closed with 4008.
    (client as any)._socket.resume();
    expect(await closed).toBe(1006);
  });

  it('drops a Tasked event stream client that reads nothing, and frees its stream', async () => {
    const streamsOpen = async () => Number(/^taskstream_gateway_tasked_event_streams (\d+)$/m.exec((await stack.inject({ method: 'GET', url: '/metrics' })).body)?.[1]);
    const before = await dropped('tasked_events');
    const { port } = new URL(stack.url);
    const slow = connect(Number(port), '127.0.0.1');
    const gone = closedBy(slow);
    slow.pause();
    slow.write(`GET /tasked/api/v1/flows/${flowId}/events HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n`);
    await waitFor('the slow stream to open', async () => ((await streamsOpen()) === 1 ? true : undefined));
    await waitFor('the slow stream to be dropped', async () => ((await dropped('tasked_events')) === before + 1 ? true : undefined), 30_000);
    // Counted as it is dropped; freed once the route has closed its feed.
    await waitFor('the dropped stream to be freed', async () => ((await streamsOpen()) === 0 ? true : undefined));
    // What reached it before it was dropped is there to read; then the connection ends, short of the flow's end.
    let received = '';
    slow.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    slow.resume();
    await gone;
    expect(received).toMatch(/^HTTP\/1\.1 200 /);
    expect(received).toContain('event: task_state');
    expect(received).not.toContain('event: flow_complete');
  });

  it('keeps a client that reads: the whole stream, to its end', async () => {
    const response = await fetch(`${stack.url}/tasked/api/v1/flows/${flowId}/events`);
    const text = await response.text();
    expect(text.match(/event: task_state\ndata: \{"task_id":"double-\d+","state":"succeeded"/g)).toHaveLength(60);
    expect(text).toContain('event: flow_complete');
  });
});
