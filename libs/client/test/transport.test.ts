import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { TaskstreamClient, TaskstreamError } from '../src/index.js';
import { retryDelay } from '../src/http.js';

/** A local HTTP server answering each request with `answer(request, n)`. */
async function serve(answer: (req: IncomingMessage, res: ServerResponse, n: number) => void) {
  let n = 0;
  const seen: Array<{ method: string; url: string; headers: IncomingMessage['headers'] }> = [];
  const server = createServer((req, res) => {
    seen.push({ method: req.method!, url: req.url!, headers: req.headers });
    req.resume();
    req.on('end', () => answer(req, res, ++n));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  closers.push(() => new Promise<void>((r) => server.close(() => r())));
  return { url: `http://127.0.0.1:${port}`, seen };
}

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
const FLOW = '01JAAAAAAAAAAAAAAAAAAAAAAA';

describe("the client's reads of a flow", () => {
  it('send back the newest sequence read, so no gateway answers older: a view behind it is not taken as newer', async () => {
    const answers = [7, 12, 9, 15];
    const server = await serve((_req, res, n) => json(res, 200, { flow_id: FLOW, status: 'running', last_seq: answers[n - 1], tasks: [] }));
    const client = new TaskstreamClient({ baseUrl: server.url });
    for (let i = 0; i < answers.length; i++) await client.get(FLOW);
    expect(server.seen.map((r) => r.url)).toEqual([`/api/v1/flows/${FLOW}`, `/api/v1/flows/${FLOW}?min_seq=7`, `/api/v1/flows/${FLOW}?min_seq=12`, `/api/v1/flows/${FLOW}?min_seq=12`]);
    // Another flow starts from nothing.
    await client.get('01JBBBBBBBBBBBBBBBBBBBBBBB');
    expect(server.seen.at(-1)!.url).toBe('/api/v1/flows/01JBBBBBBBBBBBBBBBBBBBBBBB');
  });
});

describe('the client transport', () => {
  it('retries a read on 503 and 429 (as Retry-After asks, within the cap), then answers', async () => {
    const server = await serve((_req, res, n) => {
      if (n === 1) return json(res, 503, { error: { code: 'UNAVAILABLE', message: 'retry' } });
      if (n === 2) return json(res, 429, { error: { code: 'RATE_LIMITED', message: 'slow down' } }, { 'retry-after': '0' });
      json(res, 200, { flow_id: FLOW });
    });
    const client = new TaskstreamClient({ baseUrl: server.url, apiKey: 'ts_abc', retry: { initialDelayMs: 5 } });
    expect(await client.get(FLOW)).toEqual({ flow_id: FLOW });
    expect(server.seen).toHaveLength(3);
    expect(server.seen[0]!.headers.authorization).toBe('Bearer ts_abc');
  });

  it('gives up after its retries with the last typed error, and never retries a call that is not idempotent', async () => {
    const server = await serve((_req, res) => json(res, 503, { error: { code: 'UNAVAILABLE', message: 'NATS did not answer' } }, { 'retry-after': '1' }));
    const client = new TaskstreamClient({ baseUrl: server.url, retry: { retries: 2, initialDelayMs: 1, maxDelayMs: 5 } });
    const error = (await client.get(FLOW).catch((e: unknown) => e)) as TaskstreamError;
    expect(error).toBeInstanceOf(TaskstreamError);
    expect({ code: error.code, status: error.status, message: error.message, retryAfter: error.retryAfter }).toEqual({ code: 'UNAVAILABLE', status: 503, message: 'NATS did not answer', retryAfter: 1 });
    expect(server.seen).toHaveLength(3);
    await client.cancel(FLOW).catch(() => undefined);
    expect(server.seen).toHaveLength(4);
    // A submission carries an Idempotency-Key (made up when none is given), so it is retried, with the same key.
    await client.submit({ tasks: [{ id: 'a', executor: 'noop' }] }).catch(() => undefined);
    const submits = server.seen.slice(4);
    expect(submits).toHaveLength(3);
    expect(new Set(submits.map((s) => s.headers['idempotency-key'])).size).toBe(1);
    expect(submits[0]!.headers['idempotency-key']).toMatch(/^sdk-[0-9a-f]{32}$/);
  });

  it('does not retry a client error, and keeps its details', async () => {
    const problems = [{ path: 'tasks[0].executor', message: 'unknown executor "nope"' }];
    const server = await serve((_req, res) => json(res, 400, { error: { code: 'INVALID_FLOW', message: 'the flow has 1 problem', problems } }));
    const client = new TaskstreamClient({ baseUrl: server.url });
    const error = (await client.submit({ tasks: [{ id: 'a', executor: 'nope' }] }).catch((e: unknown) => e)) as TaskstreamError;
    expect({ code: error.code, status: error.status, problems: error.problems }).toEqual({ code: 'INVALID_FLOW', status: 400, problems });
    expect(error.describe()).toBe('the flow has 1 problem\n  tasks[0].executor: unknown executor "nope"');
    expect(server.seen).toHaveLength(1);
  });

  it('names an answer that is not the API\'s JSON, a timeout and an unreachable gateway', async () => {
    const server = await serve((req, res) => {
      if (req.url!.includes('slow')) return setTimeout(() => json(res, 200, {}), 500);
      res.writeHead(502, { 'content-type': 'text/html' }).end('<html>Bad Gateway</html>');
    });
    const client = new TaskstreamClient({ baseUrl: server.url, retry: { retries: 0 }, timeoutMs: 100 });
    const html = (await client.get(FLOW).catch((e: unknown) => e)) as TaskstreamError;
    expect({ code: html.code, status: html.status }).toEqual({ code: 'BAD_RESPONSE', status: 502 });
    expect(html.message).toContain('<html>Bad Gateway</html>');
    const slow = (await client.templates.get('slow').catch((e: unknown) => e)) as TaskstreamError;
    expect(slow.code).toBe('TIMEOUT');
    const closed = new TaskstreamClient({ baseUrl: 'http://127.0.0.1:1', retry: { retries: 0 } });
    expect(((await closed.get(FLOW).catch((e: unknown) => e)) as TaskstreamError).code).toBe('NETWORK');
  });

  it('encodes path segments and repeats list parameters', async () => {
    const server = await serve((_req, res) => json(res, 200, { flows: [] }));
    const client = new TaskstreamClient({ baseUrl: `${server.url}/` });
    await client.listPage({ status: ['failed', 'cancelled'], labels: { env: 'prod', team: 'a b' }, since: new Date('2026-01-01T00:00:00Z'), limit: 5 });
    expect(server.seen[0]!.url).toBe('/api/v1/flows?limit=5&status=failed&status=cancelled&since=2026-01-01T00%3A00%3A00.000Z&label=env%3Aprod&label=team%3Aa+b');
    await client.approve(FLOW, 'release/gate', { code: 'c' }).catch(() => undefined);
    expect(server.seen[1]!.url).toBe(`/api/v1/flows/${FLOW}/tasks/release%2Fgate/ack`);
  });

  it('refuses a base URL that is not http(s), and a feed of something that is not a flow id', () => {
    expect(() => new TaskstreamClient({ baseUrl: 'localhost:8080' })).toThrow(/http:\/\/ or https:\/\//);
    expect(() => new TaskstreamClient({ baseUrl: 'http://127.0.0.1:1' }).events('nope')).toThrow(TaskstreamError);
  });

  it('backs off exponentially with jitter, capped', () => {
    const policy = { retries: 5, initialDelayMs: 100, maxDelayMs: 1_000 };
    for (let n = 0; n < 6; n++) {
      const delay = retryDelay(policy, n, new Error('x'));
      expect(delay).toBeGreaterThanOrEqual(Math.min(1_000, 50 * 2 ** n));
      expect(delay).toBeLessThanOrEqual(Math.min(1_000, 100 * 2 ** n));
    }
    expect(retryDelay(policy, 0, new TaskstreamError('RATE_LIMITED', 'x', { retryAfter: 30 }))).toBe(1_000);
  });
});
