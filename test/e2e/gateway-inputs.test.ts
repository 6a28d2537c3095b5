import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { buildGateway } from '@taskstream/gateway';
import { silentLogger } from '@taskstream/nats';
import { createContext, type ServiceContext } from '@taskstream/runtime';
import { waitFor } from '@taskstream/testing';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestStack } from '../support/stack.js';

const NO_SUCH_FLOW = '01JAAAAAAAAAAAAAAAAAAAAAAA';

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Sends bytes as they are over a fresh TCP connection and reads one HTTP response. */
function rawRequest(port: number, data: string): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let received = Buffer.alloc(0);
    const parse = (): RawResponse | undefined => {
      const end = received.indexOf('\r\n\r\n');
      if (end < 0) return undefined;
      const [statusLine, ...lines] = received.subarray(0, end).toString('latin1').split('\r\n');
      const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      const length = Number(headers['content-length'] ?? NaN);
      const body = received.subarray(end + 4);
      if (Number.isNaN(length) || body.length < length) return undefined;
      return { status: Number(statusLine!.split(' ')[1]), headers, body: body.subarray(0, length).toString('utf8') };
    };
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk]);
      const response = parse();
      if (response) {
        socket.destroy();
        resolve(response);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      const response = parse();
      if (response) resolve(response);
      else reject(new Error(`connection closed without a complete response: ${JSON.stringify(received.toString('latin1').slice(0, 300))}`));
    });
    socket.write(data);
  });
}

/** The status and body a WebSocket upgrade was refused with. */
function refusedUpgrade(url: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const client = new WebSocket(url);
    client.on('open', () => {
      client.close();
      reject(new Error(`${url} was upgraded`));
    });
    client.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(body) }));
    });
    client.on('error', () => undefined);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('gateway: every input validated, every error in the documented shape', () => {
  let stack: TestStack;
  let ctx: ServiceContext;
  let gateway: FastifyInstance;
  let port: number;
  let base: string;
  const logs: any[] = [];
  /** A finished flow with tasks a -> b and the sequence of its last event. */
  let finished: string;
  let lastSeq: number;

  const get = (path: string, headers: Record<string, string> = {}) => fetch(`${base}${path}`, { headers });
  const post = (path: string, body: string, headers: Record<string, string> = { 'content-type': 'application/json' }) => fetch(`${base}${path}`, { method: 'POST', body, headers });
  /** Asserts the documented error shape and returns the error object. */
  const errorOf = async (response: Response, status: number, code: string) => {
    const text = await response.text();
    expect({ status: response.status, text }).toMatchObject({ status });
    const body = JSON.parse(text);
    expect(Object.keys(body)).toEqual(['error']);
    expect(body.error).toMatchObject({ code, message: expect.any(String) });
    return body.error;
  };

  beforeAll(async () => {
    stack = await TestStack.start();
    ctx = await createContext({ natsUrl: stack.nats.url, name: 'gateway-inputs', log: silentLogger });
    const sink = new Writable({
      write(chunk, _encoding, done) {
        for (const line of chunk.toString().split('\n')) if (line.trim()) logs.push(JSON.parse(line));
        done();
      },
    });
    gateway = await buildGateway(ctx, { logger: pino({ level: 'debug' }, sink) });
    await gateway.listen({ host: '127.0.0.1', port: 0 });
    port = (gateway.server.address() as { port: number }).port;
    base = `http://127.0.0.1:${port}`;
    finished = await stack.submit({ name: 'inputs', labels: { team: 'inputs' }, tasks: [{ id: 'a', executor: 'noop' }, { id: 'b', executor: 'noop', depends_on: ['a'] }] });
    await stack.settled(finished);
    lastSeq = (await stack.events(finished)).at(-1).seq;
  });
  afterAll(async () => {
    await gateway?.close();
    await ctx?.nc.close();
    await stack?.stop();
  });

  it('refuses a parameter given twice, naming it, except the documented lists', async () => {
    const once = [
      '/api/v1/flows?limit=1&limit=2',
      '/api/v1/flows?since=2026-01-01T00:00:00Z&since=2026-01-02T00:00:00Z',
      '/api/v1/flows?queue=a&queue=b',
      `/api/v1/flows/${finished}/events?after=1&after=2`,
      `/api/v1/flows/${finished}/events?format=json&format=ndjson`,
      '/api/v1/events?since=2026-01-01T00:00:00Z&since=2026-01-02T00:00:00Z',
      `/api/v1/flows/${finished}/state?at=1&at=2`,
      `/api/v1/flows/${finished}/graph?format=dot&format=dot`,
      '/api/v1/dlq?limit=1&limit=2',
    ];
    for (const path of once) {
      const error = await errorOf(await get(path), 400, 'INVALID_PARAMETER');
      const name = new URL(path, base).search.slice(1).split('=')[0];
      expect(error.parameter, path).toBe(name);
      expect(error.message, path).toMatch(new RegExp(`"${name}" is given more than once`));
    }
    const feed = await refusedUpgrade(`${base.replace('http', 'ws')}/api/v1/feed?flow=${finished}&flow=${NO_SUCH_FLOW}`);
    expect(feed.status).toBe(400);
    expect(feed.body.error).toMatchObject({ code: 'INVALID_PARAMETER', parameter: 'flow' });
    const flowFeed = await refusedUpgrade(`${base.replace('http', 'ws')}/api/v1/flows/${finished}/feed?after=1&after=2`);
    expect(flowFeed.body.error).toMatchObject({ code: 'INVALID_PARAMETER', parameter: 'after' });
    const missing = await refusedUpgrade(`${base.replace('http', 'ws')}/api/v1/flows/${NO_SUCH_FLOW}/feed`);
    expect(missing).toMatchObject({ status: 404, body: { error: { code: 'FLOW_NOT_FOUND' } } });
    // type is a documented list: repeating it is accepted.
    const types = new WebSocket(`${base.replace('http', 'ws')}/api/v1/feed?type=task.succeeded&type=flow.succeeded&after=${lastSeq}`);
    await new Promise<void>((resolve, reject) => {
      types.on('open', () => resolve());
      types.on('unexpected-response', (_req, res) => reject(new Error(`refused with ${res.statusCode}`)));
    });
    types.close();

    // status and label are documented lists: repeating them adds to the list.
    await waitFor('the summary', async () => ((await (await get(`/api/v1/flows?status=succeeded&label=team:inputs`)).json() as any).flows.length === 1 ? true : undefined));
    const listed: any = await (await get('/api/v1/flows?status=failed&status=succeeded&label=team:inputs&label=team:inputs')).json();
    expect(listed.flows.map((f: any) => f.flow_id)).toEqual([finished]);
  });

  it('bounds and strictly parses time parameters', async () => {
    for (const since of ['-271821-04-20T00:00:00Z', '2262-04-11T23:47:17Z', '+275760-09-13T00:00:00Z', '1969-12-31T23:59:59Z', '2200-01-01T00:00:01Z', 'yesterday', '1', '2026-02-30T00:00:00Z', '2026-01-01T24:00:00Z', '2026-01-01T00:00:00']) {
      for (const path of ['/api/v1/events', '/api/v1/flows']) {
        const error = await errorOf(await get(`${path}?since=${encodeURIComponent(since)}`), 400, 'INVALID_PARAMETER');
        expect(error.parameter).toBe('since');
        expect(error.message).toMatch(/RFC 3339/);
      }
    }
    const until = await errorOf(await get('/api/v1/events?since=2026-01-01T00:00:00Z&until=2262-04-11T23:47:17Z'), 400, 'INVALID_PARAMETER');
    expect(until.parameter).toBe('until');
    // A "+" left unencoded arrives as a space: the message says how to send it.
    expect((await errorOf(await get('/api/v1/events?since=2026-01-01T00:00:00+01:00'), 400, 'INVALID_PARAMETER')).message).toMatch(/%2B/);

    const submittedAt = ((await (await get(`/api/v1/flows/${finished}`)).json()) as any).submitted_at as string;
    const from = new Date(Date.parse(submittedAt) - 60_000);
    const offset = from.toISOString().replace('Z', '+00:00');
    for (const since of [from.toISOString(), offset, from.toISOString().slice(0, 10)]) {
      const exported = await get(`/api/v1/events?since=${encodeURIComponent(since)}`);
      expect(exported.status).toBe(200);
      expect(await exported.text()).toContain(finished);
    }
    // The latest time accepted is far in the future: nothing is stored after it.
    const future = await get('/api/v1/events?since=2200-01-01T00:00:00Z');
    expect(future.status).toBe(200);
    expect(await future.text()).toBe('');
  });

  it('validates fork bodies: "at" is a positive JSON number, the patch is merged safely and validated', async () => {
    const fork = (body: string) => post(`/api/v1/flows/${finished}/fork`, body);
    for (const at of [`"${lastSeq}"`, `[${lastSeq}]`, 'true', '0', '-1', '1.5', 'null', '1e400']) {
      const error = await errorOf(await fork(`{"at":${at}}`), 400, 'INVALID_REQUEST');
      expect(error.problems).toEqual([expect.objectContaining({ path: 'at', message: expect.stringMatching(/whole number|stream sequence/) })]);
    }
    const junk = await errorOf(await fork(`{"at":${lastSeq},"patch":{"tasks":[null,5,"x"]}}`), 400, 'INVALID_REQUEST');
    expect(junk.problems.map((p: any) => p.path)).toEqual(['patch.tasks[0]', 'patch.tasks[1]', 'patch.tasks[2]']);

    for (const patch of ['{"__proto__":{"name":"x"}}', '{"constructor":{"name":"x"}}', '{"tasks":[{"id":"a","__proto__":{"executor":"shell"}}]}', '{"tasks":[{"id":"a","prototype":1}]}']) {
      const error = await errorOf(await fork(`{"at":${lastSeq},"patch":${patch}}`), 400, 'INVALID_REQUEST');
      expect(error.problems[0].message, patch).toMatch(/not allowed/);
    }
    expect(await errorOf(await fork(`{"at":${lastSeq},"patch":{"tasks":[{"id":"a","executor":"nope"}]}}`), 400, 'INVALID_FLOW')).toMatchObject({
      problems: [expect.objectContaining({ path: 'tasks[0].executor' })],
    });
    expect((await errorOf(await fork(`{"at":${lastSeq},"extra":1}`), 400, 'INVALID_REQUEST')).problems[0].path).toBe('extra');
    expect((await errorOf(await fork('[]'), 400, 'INVALID_REQUEST')).problems[0].path).toBe('$');
    await errorOf(await fork('{"at":'), 400, 'INVALID_BODY');

    const good = await fork(`{"at":${lastSeq},"patch":{"name":"patched","tasks":[{"id":"c","executor":"noop","depends_on":["b"]}]}}`);
    expect(good.status).toBe(202);
    const child = await stack.settled(((await good.json()) as any).flow_id);
    expect(child).toMatchObject({ name: 'patched', status: 'succeeded' });
    expect(child.tasks.map((t: any) => [t.id, t.reused ?? false])).toEqual([
      ['a', true],
      ['b', true],
      ['c', false],
    ]);
  });

  it('reruns only from a task of the flow, never from a property every object has', async () => {
    for (const from of ['"constructor"', '"__proto__"', '"toString"', '"nope"']) {
      const error = await errorOf(await post(`/api/v1/flows/${finished}/rerun`, `{"from":${from}}`), 400, 'INVALID_PARAMETER');
      expect(error).toMatchObject({ parameter: 'from', message: expect.stringContaining('a, b') });
    }
    expect((await errorOf(await post(`/api/v1/flows/${finished}/rerun`, '{"from":5}'), 400, 'INVALID_REQUEST')).problems[0].path).toBe('from');
    // A label filter on a property every object has matches no flow.
    for (const label of ['__proto__:x', 'constructor:x', 'toString:x']) {
      expect((await (await get(`/api/v1/flows?label=${label}`)).json() as any).flows, label).toEqual([]);
    }
  });

  it('validates cancel bodies with a schema and clear messages', async () => {
    for (const body of ['null', '[]', '5', '"stop"', '{"reason":5}', `{"reason":"${'x'.repeat(1001)}"}`, '{"why":"x"}']) {
      const error = await errorOf(await post(`/api/v1/flows/${finished}/cancel`, body), 400, 'INVALID_REQUEST');
      expect(error.message, body).not.toMatch(/Cannot read|undefined|null \(reading/);
      expect(error.problems, body).toHaveLength(1);
    }
    await errorOf(await post(`/api/v1/flows/${finished}/cancel`, '{"reason":"done"}'), 409, 'FLOW_ALREADY_FINISHED');
    await errorOf(await post(`/api/v1/flows/${finished}/cancel`, ''), 409, 'FLOW_ALREADY_FINISHED');
  });

  it('refuses unknown parameters and out-of-range numbers on every route', async () => {
    for (const path of ['/api/v1/flows?statuss=failed', `/api/v1/flows/${finished}?verbose=1`, `/api/v1/flows/${finished}/events?afterr=1`, '/api/v1/queues?x=1', '/healthz?x=1']) {
      const error = await errorOf(await get(path), 400, 'INVALID_PARAMETER');
      expect(error.message, path).toMatch(/not a parameter of/);
    }
    for (const limit of ['-1', '0', '1001', '100000', '10.5', '1e2', '0x10', ' 5', '']) {
      expect((await errorOf(await get(`/api/v1/flows?limit=${encodeURIComponent(limit)}`), 400, 'INVALID_PARAMETER')).parameter, limit).toBe('limit');
    }
    for (const after of ['-1', '0x10', '1e3', '9007199254740993', 'x']) {
      expect((await errorOf(await get(`/api/v1/flows/${finished}/events?after=${after}`), 400, 'INVALID_PARAMETER')).parameter, after).toBe('after');
    }
    await errorOf(await get(`/api/v1/flows/${finished}/state?at=0`), 400, 'INVALID_PARAMETER');
    await errorOf(await get(`/api/v1/flows?name=${'n'.repeat(201)}`), 400, 'INVALID_PARAMETER');
    await errorOf(await get(`/api/v1/flows?label=${Array.from({ length: 21 }, (_, i) => `k${i}:v`).join('&label=')}`), 400, 'INVALID_PARAMETER');
    await errorOf(await get('/api/v1/flows?cursor=!!!'), 400, 'INVALID_PARAMETER');
    await errorOf(await get('/api/v1/flows?queue=no%20spaces'), 400, 'INVALID_PARAMETER');
    expect((await errorOf(await get('/api/v1/queues/bad%20name'), 400, 'INVALID_PARAMETER')).parameter).toBe('name');
    await errorOf(await get('/api/v1/flows/not-a-flow-id'), 404, 'FLOW_NOT_FOUND');
    const key = await errorOf(await post('/api/v1/flows', '{"tasks":[{"id":"a","executor":"noop"}]}', { 'content-type': 'application/json', 'idempotency-key': 'k'.repeat(256) }), 400, 'INVALID_PARAMETER');
    expect(key.parameter).toBe('Idempotency-Key');
  });

  it('refuses a flow nested too deeply, or with a task id that is an object property, instead of failing later', async () => {
    // Built as text: serialising a value this deep would overflow the stack, which is the point.
    const deep = '['.repeat(20_000) + ']'.repeat(20_000);
    const tooDeep = await errorOf(await post('/api/v1/flows', `{"tasks":[{"id":"a","executor":"noop","config":{"output":${deep}}}]}`), 400, 'INVALID_FLOW');
    expect(tooDeep.problems).toEqual([{ path: expect.stringMatching(/^tasks\[0\]\.config/), message: expect.stringMatching(/nested more than \d+ levels/) }]);
    const proto = await errorOf(await post('/api/v1/flows', '{"tasks":[{"id":"__proto__","executor":"noop"}]}'), 400, 'INVALID_FLOW');
    expect(proto.problems[0]).toMatchObject({ path: 'tasks[0].id' });
  });

  it('answers malformed HTTP, long URLs, large headers and bad paths in the documented shape', async () => {
    const longLine = await rawRequest(port, `GET /api/v1/flows?name=${'x'.repeat(20_000)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    expect(longLine.status).toBe(414);
    expect(JSON.parse(longLine.body).error).toMatchObject({ code: 'URI_TOO_LONG' });
    const bigHeader = await rawRequest(port, `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'x'.repeat(20_000)}\r\n\r\n`);
    expect(bigHeader.status).toBe(431);
    expect(JSON.parse(bigHeader.body).error).toMatchObject({ code: 'HEADERS_TOO_LARGE' });
    for (const garbage of ['GARBAGE\r\n\r\n', 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\n\r\n']) {
      const malformed = await rawRequest(port, garbage);
      expect(malformed.status).toBe(400);
      expect(JSON.parse(malformed.body).error).toMatchObject({ code: 'MALFORMED_REQUEST' });
    }
    const longParam = await rawRequest(port, `GET /api/v1/queues/${'q'.repeat(150)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    expect(longParam.status).toBe(414);
    expect(JSON.parse(longParam.body).error).toMatchObject({ code: 'URI_TOO_LONG' });
    const badEscape = await rawRequest(port, 'GET /api/v1/queues/%E0%A4%A HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    expect(badEscape.status).toBe(400);
    expect(JSON.parse(badEscape.body).error).toMatchObject({ code: 'INVALID_URL' });

    await errorOf(await post('/api/v1/flows', '<flow/>', { 'content-type': 'application/xml' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    await errorOf(await post('/api/v1/flows', '{"tasks":', { 'content-type': 'application/json' }), 400, 'INVALID_FLOW');
    await errorOf(await post(`/api/v1/flows/${finished}/cancel`, '{', { 'content-type': 'application/json' }), 400, 'INVALID_BODY');
    await errorOf(await fetch(`${base}/api/v1/flows`, { method: 'POST', body: 'x'.repeat(11 * 1024 * 1024), headers: { 'content-type': 'application/json' } }), 413, 'BODY_TOO_LARGE');
    const handshake = (headers: string) => rawRequest(port, `GET /api/v1/feed HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n${headers}\r\n`);
    for (const headers of [
      'Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n',
      'Upgrade: websocket\r\nSec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n',
      'Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 12\r\n',
      'Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: a, a\r\n',
      'Upgrade: h2c\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n',
    ]) {
      const refused = await handshake(headers);
      expect({ status: refused.status, error: JSON.parse(refused.body).error }, headers).toMatchObject({ status: 400, error: { code: 'INVALID_UPGRADE' } });
    }
    // Feeds are WebSockets: a plain GET is told so.
    await errorOf(await get('/api/v1/feed'), 426, 'UPGRADE_REQUIRED');
    await errorOf(await get(`/api/v1/flows/${finished}/feed`), 426, 'UPGRADE_REQUIRED');
  });

  it('closes a WebSocket that sends an invalid frame with a close code and reason, logging it once without a stack', async () => {
    const socket = connect(port, '127.0.0.1');
    let received = Buffer.alloc(0);
    socket.on('data', (c) => (received = Buffer.concat([received, c])));
    const closed = new Promise<void>((r) => socket.on('close', () => r()));
    socket.write(
      `GET /api/v1/feed?flow=${NO_SUCH_FLOW} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    await waitFor('the upgrade', () => (received.includes('\r\n\r\n') ? true : undefined));
    expect(received.toString('latin1')).toMatch(/^HTTP\/1.1 101/);
    const before = logs.length;
    // A masked frame with the reserved opcode 3.
    socket.write(Buffer.from([0x83, 0x80, 1, 2, 3, 4]));
    await closed;
    const frame = received.subarray(received.indexOf('\r\n\r\n') + 4);
    expect(frame[0]).toBe(0x88);
    const length = frame[1]! & 0x7f;
    expect(frame.readUInt16BE(2)).toBe(1002);
    expect(frame.subarray(4, 2 + length).toString()).toMatch(/\S/);
    await waitFor('the log entry', () => (logs.slice(before).some((l) => /WS_ERR_INVALID_OPCODE/.test(JSON.stringify(l))) ? true : undefined));
    const entries = logs.slice(before);
    expect(entries.filter((l) => l.level >= 40)).toEqual([]);
    expect(entries.filter((l) => JSON.stringify(l).includes('"stack"'))).toEqual([]);
    expect(entries.filter((l) => /WS_ERR_INVALID_OPCODE/.test(JSON.stringify(l)))).toHaveLength(1);
  });

  it('tells a client that stopped reading for 40 s where to resume and closes it with 4008; resuming there misses nothing', { timeout: 150_000 }, async () => {
    const start = (await ctx.jsm.streams.info(ctx.topo.eventsStream)).state.last_seq;
    const ws = base.replace('http', 'ws');
    const slow = new WebSocket(`${ws}/api/v1/feed?after=${start}`);
    const received: any[] = [];
    slow.on('message', (d) => received.push(JSON.parse(d.toString())));
    const closed = new Promise<{ code: number; reason: string }>((resolve) => slow.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    await new Promise<void>((resolve) => slow.on('open', () => resolve()));
    (slow as any)._socket.pause();
    const pausedAt = Date.now();
    const big = await stack.submit({ tasks: Array.from({ length: 150 }, (_, i) => ({ id: `big${i}`, executor: 'shell', config: { command: "head -c 60000 /dev/zero | tr '\\0' x" } })) });
    await stack.settled(big, 90_000);
    await sleep(Math.max(0, 40_000 - (Date.now() - pausedAt)));
    (slow as any)._socket.resume();
    const { code, reason } = await closed;
    expect(code).toBe(4008);
    const resync = received.at(-1);
    expect(resync).toMatchObject({ type: 'resync', after: expect.any(Number), message: expect.stringMatching(/behind/) });
    const events = received.slice(0, -1);
    expect(events.every((m) => typeof m.seq === 'number' && m.event)).toBe(true);
    expect(resync.after).toBe(events.at(-1)?.seq ?? start);
    expect(reason).toContain(`after=${resync.after}`);

    const rest: any[] = [];
    const again = new WebSocket(`${ws}/api/v1/feed?after=${resync.after}`);
    again.on('message', (d) => rest.push(JSON.parse(d.toString())));
    await waitFor('the flow to end on the resumed feed', () => (rest.some((m) => m.event?.type === 'flow.succeeded' && m.event.flow_id === big) ? true : undefined), 60_000);
    again.close();
    const seen = [...events, ...rest].map((m) => m.seq);
    expect(seen).toEqual([...new Set(seen)].sort((a, b) => a - b));
    const bigSeqs = (await stack.events(big)).map((e: any) => e.seq);
    expect([...events, ...rest].filter((m) => m.event.flow_id === big).map((m) => m.seq)).toEqual(bigSeqs);
  });
});
