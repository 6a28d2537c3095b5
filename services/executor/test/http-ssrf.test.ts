import type { LookupAddress } from 'node:dns';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { HttpConfig } from '@taskstream/domain';
import { confineToLoopback } from '@taskstream/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_HTTP_ALLOW } from '../src/steps/address-policy.js';
import { createHttpStep, type LookupAll } from '../src/steps/http.js';
import { createSteps } from '../src/steps/index.js';
import { stepContext } from './processes.js';

// Every server here listens on a loopback address, and every request targets one: the guard is
// shown refusing loopback, never anything beyond this machine.
//
// The made-up names below are answered by a resolver the test injects. Should the step ever ignore
// it, or its guard let anything through, confineToLoopback still keeps every socket and DNS query
// of this file on this machine: a broken guard fails these tests instead of reaching another host.
let restoreNetwork: () => void;
beforeAll(() => {
  restoreNetwork = confineToLoopback();
});
afterAll(() => restoreNetwork());

interface Listening {
  server: Server;
  port: number;
  /** TCP connections the server accepted, and the requests it read. */
  connections: number;
  requests: Array<{ method: string; url: string; headers: IncomingMessage['headers']; body: string }>;
}

const servers: Server[] = [];

afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((resolve) => s.close(resolve));
  }
});

/** A server on `host` (a loopback address) that answers with `handler`, 200 "ok" by default, counting what reaches it. */
async function listen(host: string, handler?: (req: IncomingMessage, res: ServerResponse, seen: Listening) => void): Promise<Listening> {
  const server = createServer();
  const seen: Listening = { server, port: 0, connections: 0, requests: [] };
  server.on('connection', () => seen.connections++);
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.requests.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      if (handler) handler(req, res, seen);
      else res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  servers.push(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  seen.port = (server.address() as { port: number }).port;
  return seen;
}

/** Whether this machine has ::1 (some containers have no IPv6 loopback). */
async function hasIpv6Loopback(): Promise<boolean> {
  try {
    await listen('::1');
    return true;
  } catch {
    return false;
  }
}

const get = (url: string, extra: Record<string, unknown> = {}) => stepContext('http', HttpConfig.parse({ url, method: 'GET', ...extra }) as Record<string, unknown>);

/** A resolver for made-up names only: each name answers the addresses given (in turn, when a list of answers). */
function fakeDns(answers: Record<string, string[] | string[][]>): LookupAll & { asked: string[] } {
  const turn = new Map<string, number>();
  const asked: string[] = [];
  const lookup = (hostname: string, _options: unknown, callback: (error: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) => {
    asked.push(hostname);
    const answer = answers[hostname];
    if (answer === undefined) {
      queueMicrotask(() => callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), []));
      return;
    }
    const n = turn.get(hostname) ?? 0;
    turn.set(hostname, n + 1);
    const list = (Array.isArray(answer[0]) ? (answer as string[][])[Math.min(n, answer.length - 1)]! : (answer as string[])).map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
    queueMicrotask(() => callback(null, list));
  };
  return Object.assign(lookup, { asked });
}

describe('http steps with nothing allowed', () => {
  const guarded = createHttpStep();

  it('refuse every spelling of 127.0.0.1 before connecting, for good, naming the address and the rule', async () => {
    const target = await listen('127.0.0.1');
    const spellings = ['127.0.0.1', '2130706433', '0x7f000001', '0177.0.0.1', '127.1', '017700000001', '[::ffff:127.0.0.1]', '[::ffff:7f00:1]'];
    for (const spelling of spellings) {
      const url = `http://${spelling}:${target.port}/`;
      await expect(guarded(get(url)), url).rejects.toMatchObject({
        detail: {
          code: 'SSRF_BLOCKED',
          retryable: false,
          message: 'http step refused to connect to 127.0.0.1: loopback addresses are blocked; allow them with TASKSTREAM_HTTP_ALLOW (e.g. 127.0.0.0/8)',
        },
      });
    }
    expect(target.connections).toBe(0);
    expect(target.requests).toEqual([]);
  });

  it('refuses localhost after resolving it, naming the name it came from', async () => {
    const target = await listen('127.0.0.1');
    await expect(guarded(get(`http://localhost:${target.port}/`))).rejects.toMatchObject({
      detail: { code: 'SSRF_BLOCKED', retryable: false, message: expect.stringMatching(/^http step refused to connect to (127\.0\.0\.1|::1) \(from "localhost"\): loopback addresses are blocked; allow them with TASKSTREAM_HTTP_ALLOW \(e\.g\. (127\.0\.0\.0\/8|::1\/128)\)$/) },
    });
    await expect(guarded(get(`http://LOCALHOST:${target.port}/`))).rejects.toMatchObject({ detail: { code: 'SSRF_BLOCKED' } });
    expect(target.connections).toBe(0);
  });

  it('refuses [::1]', async () => {
    const v6 = (await hasIpv6Loopback()) ? await listen('::1') : undefined;
    await expect(guarded(get(`http://[::1]:${v6?.port ?? 9}/`))).rejects.toMatchObject({
      detail: { code: 'SSRF_BLOCKED', retryable: false, message: 'http step refused to connect to ::1: loopback addresses are blocked; allow them with TASKSTREAM_HTTP_ALLOW (e.g. ::1/128)' },
    });
    expect(v6?.connections ?? 0).toBe(0);
  });

  it('refuses the unspecified address, which this machine would answer itself', async () => {
    const anyV4 = await listen('127.0.0.1');
    for (const spelling of ['0.0.0.0', '0', '[::]']) {
      await expect(guarded(get(`http://${spelling}:${anyV4.port}/`)), spelling).rejects.toMatchObject({ detail: { code: 'SSRF_BLOCKED', message: expect.stringContaining('unspecified addresses are blocked') } });
    }
    expect(anyV4.connections).toBe(0);
  });

  it('is what createSteps builds without httpAllow, and httpAllow with a bad entry fails naming it', async () => {
    const target = await listen('127.0.0.1');
    await expect(createSteps({ shellEnabled: false }).http!(get(`http://127.0.0.1:${target.port}/`))).rejects.toMatchObject({ detail: { code: 'SSRF_BLOCKED' } });
    expect(target.connections).toBe(0);
    const allowed = await createSteps({ shellEnabled: false, httpAllow: LOCAL_HTTP_ALLOW }).http!(get(`http://127.0.0.1:${target.port}/`));
    expect(allowed).toEqual({ status: 200, body: 'ok' });
    expect(() => createSteps({ shellEnabled: false, httpAllow: ['127.0.0.0/8', '10.0.0.0/40'] })).toThrow('invalid http allow-list entry "10.0.0.0/40"');
  });
});

describe('http steps with an allow-list', () => {
  it('reach an allowed loopback alias (127.0.0.2/32) and still refuse 127.0.0.1', async () => {
    const allowed = await listen('127.0.0.2');
    const other = await listen('127.0.0.1');
    const step = createHttpStep({ allow: ['127.0.0.2/32'] });
    expect(await step(get(`http://127.0.0.2:${allowed.port}/`))).toEqual({ status: 200, body: 'ok' });
    expect(allowed.requests).toHaveLength(1);
    await expect(step(get(`http://127.0.0.1:${other.port}/`))).rejects.toMatchObject({ detail: { code: 'SSRF_BLOCKED', retryable: false, message: expect.stringContaining('refused to connect to 127.0.0.1: loopback') } });
    expect(other.connections).toBe(0);
  });

  it('refuse a redirect from the allowed server to a blocked address, at the hop', async () => {
    const blocked = await listen('127.0.0.1');
    for (const to of [`http://127.0.0.1:${blocked.port}/secret`, `http://localhost:${blocked.port}/secret`, `http://2130706433:${blocked.port}/secret`, `http://[::ffff:127.0.0.1]:${blocked.port}/secret`]) {
      const redirector = await listen('127.0.0.2', (_req, res) => res.writeHead(302, { location: to }).end());
      const step = createHttpStep({ allow: ['127.0.0.2/32'] });
      const from = `http://127.0.0.2:${redirector.port}/start`;
      await expect(step(get(from)), to).rejects.toMatchObject({
        detail: { code: 'SSRF_BLOCKED', retryable: false, message: expect.stringMatching(new RegExp(`^http step refused to connect to 127\\.0\\.0\\.1.*loopback addresses are blocked.* \\(redirect 1 of GET ${from.replace(/\./g, '\\.')}, to `)) },
      });
      expect(redirector.requests).toHaveLength(1);
    }
    expect(blocked.connections).toBe(0);
  });

  it('follow redirects between allowed addresses, as fetch would: 303 turns a POST into a GET, 307 keeps it, credentials stay with their origin', async () => {
    const final = await listen('127.0.0.2');
    const hops = await listen('127.0.0.1', (req, res) => {
      if (req.url === '/see-other') res.writeHead(303, { location: '/keep' }).end();
      else if (req.url === '/keep') res.writeHead(307, { location: `http://127.0.0.2:${final.port}/done` }).end();
      else res.writeHead(404).end();
    });
    const step = createHttpStep({ allow: LOCAL_HTTP_ALLOW });
    const ctx = stepContext('http', HttpConfig.parse({ url: `http://127.0.0.1:${hops.port}/see-other`, body: { a: 1 }, headers: { authorization: 'Bearer t' } }) as Record<string, unknown>);
    expect(await step(ctx)).toEqual({ status: 200, body: 'ok' });
    expect(hops.requests.map((r) => [r.method, r.url, r.body, r.headers.authorization])).toEqual([
      ['POST', '/see-other', '{"a":1}', 'Bearer t'],
      ['GET', '/keep', '', 'Bearer t'],
    ]);
    // 307 keeps the method (now GET); the other origin gets no credentials, still the idempotency key.
    expect(final.requests).toMatchObject([{ method: 'GET', url: '/done', body: '' }]);
    expect(final.requests[0]!.headers.authorization).toBeUndefined();
    expect(final.requests[0]!.headers['idempotency-key']).toBe('k');
  });

  it('keep the method and body through a 307 and 308', async () => {
    const target = await listen('127.0.0.1', (req, res) => {
      if (req.url === '/a') res.writeHead(307, { location: '/b' }).end();
      else if (req.url === '/b') res.writeHead(308, { location: '/c' }).end();
      else res.writeHead(201, { 'content-type': 'application/json' }).end('{"done":true}');
    });
    const step = createHttpStep({ allow: LOCAL_HTTP_ALLOW });
    const ctx = stepContext('http', HttpConfig.parse({ url: `http://127.0.0.1:${target.port}/a`, method: 'PUT', body: 'x=1' }) as Record<string, unknown>);
    expect(await step(ctx)).toEqual({ status: 201, body: '{"done":true}', json: { done: true } });
    expect(target.requests.map((r) => [r.method, r.url, r.body])).toEqual([
      ['PUT', '/a', 'x=1'],
      ['PUT', '/b', 'x=1'],
      ['PUT', '/c', 'x=1'],
    ]);
  });

  it('follow at most 5 redirects by default, then fail for good; the cap is an option', async () => {
    const loop = await listen('127.0.0.1', (req, res) => {
      const n = Number(req.url!.slice(1));
      if (n < 5) res.writeHead(302, { location: `/${n + 1}` }).end();
      else if (req.url === '/5') res.writeHead(200).end('five');
      else res.writeHead(302, { location: `/${n + 1}` }).end();
    });
    const step = createHttpStep({ allow: LOCAL_HTTP_ALLOW });
    expect(await step(get(`http://127.0.0.1:${loop.port}/0`))).toEqual({ status: 200, body: 'five' });
    expect(loop.requests).toHaveLength(6);

    loop.requests.length = 0;
    const endless = await listen('127.0.0.1', (req, res) => res.writeHead(301, { location: `/${Number(req.url!.slice(1)) + 1}` }).end());
    await expect(step(get(`http://127.0.0.1:${endless.port}/0`))).rejects.toMatchObject({
      detail: { code: 'TOO_MANY_REDIRECTS', retryable: false, message: `GET http://127.0.0.1:${endless.port}/0 redirected more than 5 times (the last time to http://127.0.0.1:${endless.port}/6)` },
    });
    expect(endless.requests).toHaveLength(6);

    endless.requests.length = 0;
    await expect(createHttpStep({ allow: LOCAL_HTTP_ALLOW, maxRedirects: 2 })(get(`http://127.0.0.1:${endless.port}/0`))).rejects.toMatchObject({ detail: { code: 'TOO_MANY_REDIRECTS' } });
    expect(endless.requests).toHaveLength(3);
    expect(loop.requests).toHaveLength(0);
  });

  it('refuse a redirect to another scheme', async () => {
    const target = await listen('127.0.0.1', (_req, res) => res.writeHead(302, { location: 'file:///etc/passwd' }).end());
    await expect(createHttpStep({ allow: LOCAL_HTTP_ALLOW })(get(`http://127.0.0.1:${target.port}/`))).rejects.toMatchObject({ detail: { code: 'HTTP_REDIRECT', retryable: false } });
  });

  it('answer a 3xx without a location as the status it is', async () => {
    const target = await listen('127.0.0.1', (_req, res) => res.writeHead(302).end('nowhere'));
    await expect(createHttpStep({ allow: LOCAL_HTTP_ALLOW })(get(`http://127.0.0.1:${target.port}/`))).rejects.toMatchObject({ detail: { code: 'HTTP_STATUS', http_status: 302, retryable: false } });
  });
});

describe('http steps judge the address a name resolved to, on every connection', () => {
  it('refuse a made-up name that resolves to loopback', async () => {
    const target = await listen('127.0.0.1');
    const lookup = fakeDns({ 'rebind.test': ['127.0.0.1'] });
    await expect(createHttpStep({ lookup })(get(`http://rebind.test:${target.port}/`))).rejects.toMatchObject({
      detail: { code: 'SSRF_BLOCKED', retryable: false, message: 'http step refused to connect to 127.0.0.1 (from "rebind.test"): loopback addresses are blocked; allow them with TASKSTREAM_HTTP_ALLOW (e.g. 127.0.0.0/8)' },
    });
    expect(lookup.asked).toEqual(['rebind.test']);
    expect(target.connections).toBe(0);
  });

  it('refuse a name that resolved to an allowed address before and to a blocked one now (DNS rebinding)', async () => {
    const target = await listen('127.0.0.1');
    const alias = await listen('127.0.0.2', (_req, res) => res.writeHead(200, { connection: 'close' }).end('first'));
    // The same port on both addresses would be ideal; a name resolving to a different address on the next query is what matters.
    const lookup = fakeDns({ 'rebind.test': [['127.0.0.2'], ['127.0.0.1']] });
    const step = createHttpStep({ allow: ['127.0.0.2/32'], lookup });
    expect(await step(get(`http://rebind.test:${alias.port}/`))).toEqual({ status: 200, body: 'first' });
    await expect(step(get(`http://rebind.test:${target.port}/`))).rejects.toMatchObject({ detail: { code: 'SSRF_BLOCKED', message: expect.stringContaining('127.0.0.1 (from "rebind.test")') } });
    expect(lookup.asked).toEqual(['rebind.test', 'rebind.test']);
    expect(target.connections).toBe(0);
  });

  it('connect only to the allowed addresses of a name that resolves to both kinds', async () => {
    const blocked = await listen('127.0.0.1');
    const allowed = await listen('127.0.0.2');
    // Both servers on the same port would be needed to prove the choice by the answer alone; the
    // blocked address comes first, and nothing reaches it.
    const lookup = fakeDns({ 'mixed.test': ['127.0.0.1', '127.0.0.2'] });
    expect(await createHttpStep({ allow: ['127.0.0.2'], lookup })(get(`http://mixed.test:${allowed.port}/`))).toEqual({ status: 200, body: 'ok' });
    expect(blocked.connections).toBe(0);
    expect(allowed.requests).toHaveLength(1);
  });

  it('reach whatever a name the allow-list names resolves to, exactly or as a subdomain', async () => {
    const target = await listen('127.0.0.1');
    const lookup = fakeDns({ 'api.internal': ['127.0.0.1'], 'jobs.svc.internal': ['127.0.0.1'], 'other.test': ['127.0.0.1'] });
    const step = createHttpStep({ allow: ['api.internal', '*.svc.internal'], lookup });
    expect(await step(get(`http://api.internal:${target.port}/`))).toEqual({ status: 200, body: 'ok' });
    expect(await step(get(`http://JOBS.svc.internal:${target.port}/`))).toEqual({ status: 200, body: 'ok' });
    await expect(step(get(`http://other.test:${target.port}/`))).rejects.toMatchObject({ detail: { code: 'SSRF_BLOCKED' } });
    // Allowing a name does not allow its address spelled out.
    await expect(step(get(`http://127.0.0.1:${target.port}/`))).rejects.toMatchObject({ detail: { code: 'SSRF_BLOCKED' } });
    expect(target.requests).toHaveLength(2);
  });

  it('fail a name that does not resolve as the retryable network error it was', async () => {
    const lookup = fakeDns({});
    await expect(createHttpStep({ lookup })(get('http://nowhere.test/'))).rejects.toMatchObject({ detail: { code: 'NETWORK', retryable: true, message: 'GET http://nowhere.test/ failed: ENOTFOUND' } });
  });
});
