import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { EXEMPT_ROUTES, buildGateway, routeScopes } from '@taskstream/gateway';
import { ApiKeyStore, connectNats, generateApiKey, jetstream, Kvm, silentLogger, topology, type KV, type NatsConnection } from '@taskstream/nats';
import { startStack } from '@taskstream/cli';
import { createContext } from '@taskstream/runtime';
import { freePort, NatsServer, waitFor } from '@taskstream/testing';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Deployment } from '../support/deployment.js';
import { ROOT } from '../support/stack.js';
import { runCli } from '../support/cli.js';

/**
 * API keys and scopes against gateways started as a deployment starts them, with keys on (the
 * default of a deployed gateway): one without CORS, one with an allowed origin.
 */

const ORIGIN = 'https://app.example.com';
const RATE_LIMIT = 50;
const UNAUTHORIZED = JSON.stringify({ error: { code: 'UNAUTHORIZED', message: 'a valid API key is required: send Authorization: Bearer ts_…' } });
const SOME_FLOW = '01JAAAAAAAAAAAAAAAAAAAAAAA';
const ADMIN = generateApiKey().key;

const secretOf = (key: string) => key.slice(16);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const cli = (args: string[], env: Record<string, string> = {}) => runCli(args, { env });

/** How a WebSocket upgrade went: opened, or refused with a status and body. */
function upgrade(url: string, headers: Record<string, string> = {}): Promise<{ opened: true } | { opened: false; status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const client = new WebSocket(url, { headers });
    client.on('open', () => {
      client.close();
      resolve({ opened: true });
    });
    client.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ opened: false, status: res.statusCode!, body }));
    });
    client.on('error', (error) => reject(error));
  });
}

describe('API keys and scopes', () => {
  let nats: NatsServer;
  let deployment: Deployment;
  let nc: NatsConnection;
  let store: ApiKeyStore;
  let kv: KV;
  let base: string;
  let corsBase: string;
  /** Keys by scope, created through the API. */
  const keys: Record<string, string> = {};

  const call = (method: string, path: string, key?: string, body?: unknown, at = base) =>
    fetch(`${at}${path}`, {
      method,
      headers: { ...(key !== undefined && { authorization: `Bearer ${key}` }), ...(body !== undefined && { 'content-type': 'application/json' }) },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
  const createKey = async (scope: string, name: string, extra: Record<string, unknown> = {}) => {
    const response = await call('POST', '/api/v1/keys', ADMIN, { name, scope, ...extra });
    expect(response.status, await response.clone().text()).toBe(201);
    return (await response.json()) as { id: string; key: string; scope: string; name: string; created_at: string; expires_at?: string };
  };

  beforeAll(async () => {
    nats = await NatsServer.start();
    const corsPort = await freePort();
    const keysOn = { TASKSTREAM_AUTH: 'keys', TASKSTREAM_RATE_LIMIT: String(RATE_LIMIT), TASKSTREAM_LOG_LEVEL: 'debug', TASKSTREAM_BOOTSTRAP_ADMIN_KEY: ADMIN };
    deployment = await Deployment.start(nats.url, [
      ['gateway', 'gateway', keysOn],
      ['cors', 'gateway', { ...keysOn, TASKSTREAM_PORT: String(corsPort), TASKSTREAM_CORS_ORIGINS: `${ORIGIN}, https://other.example.com:8443` }],
    ]);
    base = deployment.gatewayUrl;
    corsBase = `http://127.0.0.1:${corsPort}`;
    await deployment.ready(corsBase);
    nc = await connectNats({ servers: nats.url, name: 'auth-test' });
    store = await ApiKeyStore.open(jetstream(nc), topology());
    kv = await new Kvm(jetstream(nc)).open(topology().apiKeysBucket);
    for (const scope of ['read', 'submit', 'admin']) keys[scope] = (await createKey(scope, `test ${scope}`)).key;
  });
  afterAll(async () => {
    await nc?.close();
    await deployment?.stop();
    await nats?.stop();
  });

  describe('S1: authentication', () => {
    it('answers a missing, malformed, unknown, wrong, revoked or expired key with the same 401', async () => {
      const revoked = await createKey('admin', 'to revoke');
      expect((await call('DELETE', `/api/v1/keys/${revoked.id}`, ADMIN)).status).toBe(204);
      const expiring = await createKey('admin', 'short-lived', { expires_in: 1 });
      expect(Date.parse(expiring.expires_at!) - Date.parse(expiring.created_at)).toBe(1000);
      const unknown = generateApiKey().key;
      const wrongSecret = `${ADMIN.slice(0, 16)}${secretOf(unknown)}`;
      await sleep(1_100);
      const attempts: Array<[string, Record<string, string>]> = [
        ['missing', {}],
        ['empty', { authorization: '' }],
        ['not bearer', { authorization: `Basic ${Buffer.from(`x:${ADMIN}`).toString('base64')}` }],
        ['malformed', { authorization: 'Bearer ts_nope' }],
        ['two tokens', { authorization: `Bearer ${ADMIN} ${ADMIN}` }],
        ['key without prefix', { authorization: `Bearer ${ADMIN.slice(3)}` }],
        ['unknown', { authorization: `Bearer ${unknown}` }],
        ['wrong secret', { authorization: `Bearer ${wrongSecret}` }],
        ['revoked', { authorization: `Bearer ${revoked.key}` }],
        ['expired', { authorization: `Bearer ${expiring.key}` }],
      ];
      for (const [why, headers] of attempts) {
        for (const [method, path] of [['GET', '/api/v1/flows'], ['POST', '/api/v1/keys'], ['GET', '/api/v1/no/such/route'], ['GET', `/api/v1/flows/${SOME_FLOW}?bad=1`]]) {
          const response = await fetch(`${base}${path}`, { method, headers });
          expect({ why, path, status: response.status, body: await response.text() }).toEqual({ why, path, status: 401, body: UNAUTHORIZED });
          expect(response.headers.get('www-authenticate')).toBe('Bearer');
        }
      }
      // The same requests with a valid key get past authentication.
      expect((await call('GET', '/api/v1/flows', keys.read)).status).toBe(200);
      expect((await call('GET', '/api/v1/no/such/route', keys.read)).status).toBe(404);
      expect((await call('GET', `/api/v1/flows/${SOME_FLOW}?bad=1`, keys.read)).status).toBe(400);
      expect((await fetch(`${base}/api/v1/flows`, { headers: { authorization: `bearer   ${keys.read}` } })).status).toBe(200);
    });

    it('leaves health checks open', async () => {
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      expect((await fetch(`${base}/readyz`)).status).toBe(200);
    });

    it('stores only a SHA-256 of each secret', async () => {
      const created = await createKey('read', 'hashed');
      const all = [ADMIN, ...Object.values(keys), created.key];
      let dump = '';
      for await (const entry of await kv.history({ key: '>' })) dump += `${entry.key}=${entry.string()}\n`;
      expect(dump).toContain(created.id);
      for (const key of all) {
        expect(dump).not.toContain(secretOf(key));
        expect(dump).not.toContain(Buffer.from(secretOf(key), 'base64url').toString('hex'));
      }
      const record = JSON.parse((await kv.get(created.id))!.string());
      expect(record).toEqual({ id: created.id, name: 'hashed', scope: 'read', hash: createHash('sha256').update(secretOf(created.key)).digest('hex'), created_at: created.created_at });
      // Listing shows no hash, no key.
      const listed = await (await call('GET', '/api/v1/keys', keys.admin)).text();
      expect(listed).toContain(created.id);
      expect(listed).not.toContain(record.hash);
      for (const key of all) expect(listed).not.toContain(secretOf(key));
    });

    it('honours a key created in the bucket, and stops a revoked key, within a second', async () => {
      const { key, info } = await store.create({ name: 'from outside', scope: 'read' });
      const createdAt = Date.now();
      await waitFor('the new key to work', async () => ((await call('GET', '/api/v1/flows', key)).status === 200 ? true : undefined), 1_000, 20);
      expect(Date.now() - createdAt).toBeLessThan(1_000);

      const revokedAt = Date.now();
      expect((await call('DELETE', `/api/v1/keys/${info.id}`, keys.admin)).status).toBe(204);
      await waitFor('the revoked key to stop working', async () => ((await call('GET', '/api/v1/flows', key)).status === 401 ? true : undefined), 1_000, 20);
      expect(Date.now() - revokedAt).toBeLessThan(1_000);
      // Through the other gateway too, which learnt of it from the same bucket.
      expect((await call('GET', '/api/v1/flows', key, undefined, corsBase)).status).toBe(401);
      expect((await call('DELETE', `/api/v1/keys/${info.id}`, keys.admin)).status).toBe(204);
      const missing = await call('DELETE', '/api/v1/keys/aaaaaaaaaaaa', keys.admin);
      expect(missing.status).toBe(404);
      expect(((await missing.json()) as any).error.code).toBe('API_KEY_NOT_FOUND');
    });

    it('lists keys with their last day of use, written at most once a day', async () => {
      const used = await createKey('read', 'used');
      expect((await call('GET', '/api/v1/flows', used.key)).status).toBe(200);
      const today = new Date().toISOString().slice(0, 10);
      const entry = await waitFor('the use to be recorded', async () => {
        const e = await kv.get(used.id);
        return e && JSON.parse(e.string()).last_used_on === today ? e : undefined;
      });
      for (let i = 0; i < 5; i++) expect((await call('GET', '/api/v1/flows', used.key)).status).toBe(200);
      await sleep(200);
      expect((await kv.get(used.id))!.revision).toBe(entry.revision);
      const { keys: listed } = (await (await call('GET', '/api/v1/keys', keys.admin)).json()) as { keys: any[] };
      expect(listed.find((k) => k.id === used.id)).toEqual({ id: used.id, name: 'used', scope: 'read', created_at: used.created_at, last_used_on: today });
      expect(listed.find((k) => k.id === ADMIN.slice(3, 15))).toMatchObject({ name: 'bootstrap admin', scope: 'admin' });
    });

    it('refuses a key request of the wrong shape, naming each problem', async () => {
      const response = await call('POST', '/api/v1/keys', keys.admin, { name: '', scope: 'root', expires_in: '5y', extra: 1 });
      expect(response.status).toBe(400);
      const { error } = (await response.json()) as any;
      expect(error.code).toBe('INVALID_REQUEST');
      expect(error.problems.map((p: any) => p.path).sort()).toEqual(['expires_in', 'extra', 'name', 'scope']);
    });
  });

  describe('S2: WebSocket feeds', () => {
    it('refuses an upgrade without a key before upgrading, and accepts ?token= or the header', async () => {
      const ws = base.replace('http', 'ws');
      for (const url of [`${ws}/api/v1/feed`, `${ws}/api/v1/feed?token=${generateApiKey().key}`, `${ws}/api/v1/flows/${SOME_FLOW}/feed?token=nope`]) {
        const refused = await upgrade(url);
        expect(refused).toEqual({ opened: false, status: 401, body: UNAUTHORIZED });
      }
      const readKey = keys.read!;
      expect(await upgrade(`${ws}/api/v1/feed?token=${readKey}&after=0`)).toEqual({ opened: true });
      expect(await upgrade(`${ws}/api/v1/feed?after=0`, { authorization: `Bearer ${readKey}` })).toEqual({ opened: true });
      // Past authentication, the feed's own checks: an unknown flow is still a 404.
      expect(await upgrade(`${ws}/api/v1/flows/${SOME_FLOW}/feed?token=${readKey}`)).toMatchObject({ opened: false, status: 404 });
      // Only feeds take a token in the URL.
      expect((await fetch(`${base}/api/v1/flows?token=${readKey}`)).status).toBe(401);
      await sleep(200);
      const logs = deployment.logs();
      expect(logs).toContain('token=[redacted]');
      expect(logs).not.toContain(secretOf(readKey));
      for (const key of [ADMIN, ...Object.values(keys)]) expect(logs).not.toContain(secretOf(key));
    });
  });

  describe('S7: scopes', () => {
    it('lets each scope do what it includes and refuses the rest with 403 naming the scope needed', async () => {
      const forbidden = async (response: Response, needed: string, has: string) => {
        expect(response.status).toBe(403);
        expect(await response.json()).toEqual({ error: { code: 'FORBIDDEN', message: `this route needs the "${needed}" scope; the key has "${has}"`, required_scope: needed } });
      };
      await forbidden(await call('POST', `/api/v1/flows/${SOME_FLOW}/cancel`, keys.read, {}), 'submit', 'read');
      await forbidden(await call('POST', '/api/v1/flows', keys.read, { tasks: [{ id: 'a', executor: 'noop' }] }), 'submit', 'read');
      await forbidden(await call('GET', '/api/v1/secrets', keys.submit), 'admin', 'submit');
      await forbidden(await call('PUT', '/api/v1/secrets/x', keys.submit, { value: 'v' }), 'admin', 'submit');
      await forbidden(await call('POST', '/api/v1/keys', keys.submit, { name: 'mine', scope: 'admin' }), 'admin', 'submit');
      await forbidden(await call('GET', '/api/v1/keys', keys.read), 'admin', 'read');
      await forbidden(await call('GET', '/api/v1/dlq', keys.submit), 'admin', 'submit');
      await forbidden(await call('PUT', '/api/v1/queues/q', keys.submit, { concurrency: 1 }), 'admin', 'submit');

      const submitted = await call('POST', '/api/v1/flows', keys.submit, { tasks: [{ id: 'a', executor: 'noop' }] });
      expect(submitted.status).toBe(202);
      const { flow_id } = (await submitted.json()) as { flow_id: string };
      expect((await call('GET', `/api/v1/flows/${flow_id}`, keys.read)).status).toBe(200);
      expect((await call('GET', `/api/v1/flows/${flow_id}/events`, keys.read)).status).toBe(200);
      expect((await call('POST', `/api/v1/flows/${flow_id}/cancel`, keys.submit, {})).status).toBe(202);
      // The history names the key that submitted and cancelled the flow by its id, never the key.
      const submitter = `key:${keys.submit!.slice(3, 15)}`;
      const { events } = (await (await call('GET', `/api/v1/flows/${flow_id}/events`, keys.read)).json()) as { events: Array<{ event: { type: string; data: Record<string, unknown> } }> };
      expect(events.find((e) => e.event.type === 'flow.submitted')!.event.data.submitted_by).toBe(submitter);
      expect(events.find((e) => e.event.type === 'flow.cancel_requested')!.event.data.requested_by).toBe(submitter);
      expect(JSON.stringify(events)).not.toContain(keys.submit!.slice(16));
      expect((await call('PUT', '/api/v1/secrets/scoped', keys.admin, { value: 'v' })).status).toBe(200);
      expect((await call('GET', '/api/v1/secrets', keys.admin)).status).toBe(200);
    });
  });

  describe('the edge', () => {
    it('limits each key to its rate with a 429 and Retry-After, leaving other keys alone', async () => {
      const { key } = await createKey('read', 'busy');
      const started = Date.now();
      const responses = await Promise.all(Array.from({ length: RATE_LIMIT * 3 }, () => call('GET', '/api/v1/flows', key)));
      // Each started second (a window) lets RATE_LIMIT through; all of these usually fit in one.
      const windows = 1 + Math.floor((Date.now() - started) / 1_000);
      const limited = responses.filter((r) => r.status === 429);
      // Anything but 200 or 429 is a defect: say which, with its body.
      const others = responses.filter((r) => r.status !== 200 && r.status !== 429);
      expect(await Promise.all(others.map(async (r) => `${r.status} ${await r.text()}`))).toEqual([]);
      expect(limited.length).toBeGreaterThan(0);
      expect(responses.filter((r) => r.status === 200).length).toBeLessThanOrEqual(RATE_LIMIT * windows);
      expect(limited.length + responses.filter((r) => r.status === 200).length).toBe(RATE_LIMIT * 3);
      const retryAfter = Number(limited[0]!.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(1);
      const body = (await limited[0]!.json()) as any;
      expect(body.error.code).toBe('RATE_LIMITED');
      expect(body.error.message).toContain(`at most ${RATE_LIMIT} a second`);
      // Another key is not held back by this one.
      expect((await call('GET', '/api/v1/flows', keys.read)).status).toBe(200);
      // Health checks are never limited.
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      await sleep(1_100);
      expect((await call('GET', '/api/v1/flows', key)).status).toBe(200);
    });

    it('answers no CORS by default, and only configured origins when set', async () => {
      const plain = await call('GET', '/api/v1/flows', keys.read, undefined, base);
      expect(plain.headers.get('access-control-allow-origin')).toBeNull();
      const fromOrigin = await fetch(`${base}/api/v1/flows`, { headers: { origin: ORIGIN, authorization: `Bearer ${keys.read}` } });
      expect(fromOrigin.status).toBe(200);
      expect(fromOrigin.headers.get('access-control-allow-origin')).toBeNull();
      const preflightOff = await fetch(`${base}/api/v1/flows`, { method: 'OPTIONS', headers: { origin: ORIGIN, 'access-control-request-method': 'POST' } });
      expect(preflightOff.status).toBe(401);
      expect(preflightOff.headers.get('access-control-allow-origin')).toBeNull();

      const preflight = await fetch(`${corsBase}/api/v1/flows`, { method: 'OPTIONS', headers: { origin: ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' } });
      expect(preflight.status).toBe(204);
      expect(preflight.headers.get('access-control-allow-origin')).toBe(ORIGIN);
      expect(preflight.headers.get('access-control-allow-headers')).toContain('authorization');
      expect(preflight.headers.get('access-control-allow-methods')).toContain('POST');
      const allowed = await fetch(`${corsBase}/api/v1/flows`, { headers: { origin: ORIGIN, authorization: `Bearer ${keys.read}` } });
      expect(allowed.status).toBe(200);
      expect(allowed.headers.get('access-control-allow-origin')).toBe(ORIGIN);
      // A refusal is readable by the page too.
      const refused = await fetch(`${corsBase}/api/v1/flows`, { headers: { origin: ORIGIN } });
      expect(refused.status).toBe(401);
      expect(refused.headers.get('access-control-allow-origin')).toBe(ORIGIN);
      const other = await fetch(`${corsBase}/api/v1/flows`, { headers: { origin: 'https://evil.example.com', authorization: `Bearer ${keys.read}` } });
      expect(other.headers.get('access-control-allow-origin')).toBeNull();
    });

    it('sends the security headers on every response', async () => {
      const responses = [
        await call('GET', '/api/v1/flows', keys.read),
        await call('GET', '/api/v1/flows'),
        await call('GET', '/api/v1/keys', keys.read),
        await call('GET', '/api/v1/nothing', keys.read),
        await call('GET', `/api/v1/flows/${SOME_FLOW}/graph`, keys.read),
        await fetch(`${base}/healthz`),
        await fetch(`${corsBase}/api/v1/flows`, { method: 'OPTIONS', headers: { origin: ORIGIN, 'access-control-request-method': 'GET' } }),
      ];
      for (const response of responses) {
        expect({ status: response.status, nosniff: response.headers.get('x-content-type-options'), frame: response.headers.get('x-frame-options'), referrer: response.headers.get('referrer-policy'), cache: response.headers.get('cache-control') }).toEqual({
          status: response.status,
          nosniff: 'nosniff',
          frame: 'DENY',
          referrer: 'no-referrer',
          cache: 'no-store',
        });
      }
    });
  });

  describe('the CLI', () => {
    it('creates a first key straight on NATS, then creates, lists and revokes keys through the gateway', async () => {
      const first = await cli(['keys', 'create', '--scope', 'admin', '--name', 'first admin', '--nats', nats.url]);
      expect(first.code, first.stderr).toBe(0);
      const adminKey = first.stdout.trim();
      expect(adminKey).toMatch(/^ts_[a-z2-7]{12}_[A-Za-z0-9_-]{43}$/);
      expect(first.stderr).toMatch(/^created API key [a-z2-7]{12} \(scope admin, name "first admin"\); this is the only time it is shown/);

      const created = await cli(['keys', 'create', '--scope', 'read', '--name', 'dashboard', '--expires', '30d', '--server', base, '--api-key', adminKey]);
      expect(created.code, created.stderr).toBe(0);
      const readKey = created.stdout.trim();
      const readId = readKey.slice(3, 15);
      expect(created.stderr).toMatch(/scope read, name "dashboard", expires \d{4}-/);

      // The key from the environment, as every gateway command sends it.
      const listed = await cli(['keys', 'list', '--server', base], { TASKSTREAM_API_KEY: adminKey });
      expect(listed.code, listed.stderr).toBe(0);
      expect(listed.stdout).toMatch(new RegExp(`^${readId}  read +created \\d{4}-[^ ]+  expires \\d{4}-[^ ]+  last used never  dashboard$`, 'm'));
      expect(listed.stdout).toContain(adminKey.slice(3, 15));
      for (const key of [adminKey, readKey]) expect(listed.stdout).not.toContain(secretOf(key));

      const flows = await cli(['flows', '--server', base, '--api-key', readKey]);
      expect(flows.code, flows.stderr).toBe(0);
      const noKey = await cli(['flows', '--server', base]);
      expect(noKey.code).toBe(2);
      expect(noKey.stderr).toContain('error: a valid API key is required: send Authorization: Bearer ts_…\nhint: pass an API key with --api-key or TASKSTREAM_API_KEY');
      const tooWeak = await cli(['keys', 'list', '--server', base, '--api-key', readKey]);
      expect(tooWeak.code).toBe(2);
      expect(tooWeak.stderr).toContain('this route needs the "admin" scope; the key has "read"');

      const revoked = await cli(['keys', 'revoke', readId, '--server', base, '--api-key', adminKey]);
      expect(revoked.code, revoked.stderr).toBe(0);
      expect(revoked.stdout).toBe(`API key ${readId} revoked\n`);
      const after = await cli(['keys', 'list', '--nats', nats.url, '--json']);
      expect(JSON.parse(after.stdout).find((k: any) => k.id === readId).revoked_at).toMatch(/^\d{4}-/);
      await waitFor('the revoked key to stop working', async () => ((await call('GET', '/api/v1/flows', readKey)).status === 401 ? true : undefined), 1_000, 20);

      const badScope = await cli(['keys', 'create', '--scope', 'root', '--name', 'x', '--nats', nats.url]);
      expect(badScope.code).toBe(2);
      expect(badScope.stderr).toContain('--scope must be one of read, submit, admin');
      const badExpiry = await cli(['keys', 'create', '--scope', 'read', '--name', 'x', '--expires', '1y', '--nats', nats.url]);
      expect(badExpiry.code).toBe(2);
      expect(badExpiry.stderr).toContain('--expires must be a whole number and a unit');
    });
  });

  describe('starting a gateway', () => {
    it('refuses to serve beyond loopback without keys unless told to', async () => {
      const gateway = await cli(['gateway', '--host', '0.0.0.0', '--port', '1', '--nats', nats.url], { TASKSTREAM_AUTH: 'none' });
      expect(gateway.code).toBe(2);
      expect(gateway.stderr).toContain('refusing to listen on 0.0.0.0 without authentication');
      const up = await cli(['up', '--host', '0.0.0.0', '--port', '1', '--nats', nats.url]);
      expect(up.code).toBe(2);
      expect(up.stderr).toMatch(/refusing to listen on 0\.0\.0\.0 without authentication.*\nhint: pass --auth/);
      const main = spawn(process.execPath, [join(ROOT, 'services', 'gateway', 'dist', 'main.js')], {
        env: { ...process.env, TASKSTREAM_NATS_URL: nats.url, TASKSTREAM_AUTH: 'none', TASKSTREAM_HOST: '::', TASKSTREAM_PORT: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      main.stdout.on('data', (c) => (output += c));
      const code = await new Promise((resolve) => main.on('exit', resolve));
      expect(code).toBe(1);
      expect(output).toContain('refusing to listen on :: without authentication');
      const wrong = await cli(['gateway', '--port', '1', '--nats', nats.url], { TASKSTREAM_AUTH: 'maybe' });
      expect(wrong.stderr).toContain('TASKSTREAM_AUTH must be "keys"');
    });

    it('requires keys in `taskstream gateway` by default', async () => {
      const port = await freePort();
      const child = spawn(process.execPath, [join(ROOT, 'cli', 'bin', 'taskstream.js'), 'gateway', '--port', String(port), '--nats', nats.url, '--log-level', 'warn'], {
        cwd: ROOT,
        env: { ...process.env, TASKSTREAM_AUTH: '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const exited = new Promise((resolve) => child.on('exit', resolve));
      try {
        const url = `http://127.0.0.1:${port}`;
        await deployment.ready(url);
        expect((await fetch(`${url}/api/v1/flows`)).status).toBe(401);
        expect((await call('GET', '/api/v1/flows', ADMIN, undefined, url)).status).toBe(200);
      } finally {
        child.kill('SIGTERM');
        await exited;
      }
    });
  });
});

describe('the embedded stack with --auth', () => {
  it('creates an admin key when there is no usable key, and prints it once', async () => {
    const nats = await NatsServer.start();
    try {
      const port = await freePort();
      const child = spawn(process.execPath, [join(ROOT, 'cli', 'bin', 'taskstream.js'), 'up', '--auth', '--port', String(port), '--nats', nats.url], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (c) => (output += c));
      child.stderr.on('data', (c) => (output += c));
      const exited = new Promise((resolve) => child.on('exit', resolve));
      try {
        const key = await waitFor(`the admin key in ${output}`, () => /^admin key: (ts_\S+)$/m.exec(output)?.[1], 45_000, 100);
        expect(output).toContain(`NATS ${nats.url}`);
        const base = `http://127.0.0.1:${port}`;
        expect((await fetch(`${base}/api/v1/flows`)).status).toBe(401);
        expect((await fetch(`${base}/api/v1/keys`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(200);
      } finally {
        child.kill('SIGINT');
        await exited;
      }
      // A second start finds that key and creates none; without --auth, no key is needed.
      const again = await startStack({ natsUrl: nats.url, logLevel: 'silent', auth: true });
      try {
        expect(again.adminKey).toBeUndefined();
        expect((await fetch(`${again.gatewayUrl}/api/v1/flows`)).status).toBe(401);
      } finally {
        await again.stop();
      }
      const open = await startStack({ natsUrl: nats.url, logLevel: 'silent' });
      try {
        expect(open.adminKey).toBeUndefined();
        expect((await fetch(`${open.gatewayUrl}/api/v1/flows`)).status).toBe(200);
      } finally {
        await open.stop();
      }
    } finally {
      await nats.stop();
    }
  });
});

describe('the route table', () => {
  it('gives every route a scope, but for the listed exemptions', async () => {
    const nats = await NatsServer.start();
    const ctx = await createContext({ natsUrl: nats.url, name: 'route-table', log: silentLogger });
    try {
      const gateway = await buildGateway(ctx, { auth: 'keys', corsOrigins: [ORIGIN] });
      await gateway.ready();
      const table = routeScopes(gateway);
      // The exemptions, spelt out: health checks, metrics, the API's description (the OpenAPI
      // document, and the reference's page and files), the CORS preflight route, and webhook
      // deliveries (a signature, verified by their trigger, instead of a key).
      expect(EXEMPT_ROUTES).toEqual([
        { method: 'GET', url: '/healthz' },
        { method: 'HEAD', url: '/healthz' },
        { method: 'GET', url: '/readyz' },
        { method: 'HEAD', url: '/readyz' },
        { method: 'GET', url: '/metrics' },
        { method: 'HEAD', url: '/metrics' },
        { method: 'GET', url: '/openapi.json' },
        { method: 'HEAD', url: '/openapi.json' },
        { method: 'GET', url: '/docs' },
        { method: 'HEAD', url: '/docs' },
        { method: 'GET', url: '/docs/static/:file' },
        { method: 'HEAD', url: '/docs/static/:file' },
        { method: 'OPTIONS', url: '*' },
        { method: 'POST', url: '/api/v1/hooks/:name' },
        { method: 'GET', url: '/tasked/healthz' },
        { method: 'HEAD', url: '/tasked/healthz' },
        // The web UI's page and files: they hold no data; the page sends its user's key with each call.
        { method: 'GET', url: '/ui' },
        { method: 'HEAD', url: '/ui' },
        { method: 'GET', url: '/ui/*' },
        { method: 'HEAD', url: '/ui/*' },
      ]);
      const unscoped = table.filter((r) => r.scope === undefined).map((r) => `${r.method} ${r.url}`);
      expect(unscoped.sort()).toEqual([
        'GET /docs',
        'GET /docs/static/:file',
        'GET /healthz',
        'GET /metrics',
        'GET /openapi.json',
        'GET /readyz',
        'GET /tasked/healthz',
        'GET /ui',
        'GET /ui/*',
        'HEAD /docs',
        'HEAD /docs/static/:file',
        'HEAD /healthz',
        'HEAD /metrics',
        'HEAD /openapi.json',
        'HEAD /readyz',
        'HEAD /tasked/healthz',
        'HEAD /ui',
        'HEAD /ui/*',
        'OPTIONS *',
        'POST /api/v1/hooks/:name',
      ]);
      // Every route fastify knows is in the table: the table is complete.
      const printed = gateway.printRoutes({ commonPrefix: false });
      // (fastify registers the catch-all `*` as `/*`.)
      for (const route of table) expect(gateway.hasRoute({ method: route.method as 'GET', url: route.url === '*' ? '/*' : route.url }), `${route.method} ${route.url}`).toBe(true);
      const printedCount = [...printed.matchAll(/\(([A-Z, ]+)\)/g)].reduce((n, m) => n + m[1]!.split(',').length, 0);
      expect(table.length).toBe(printedCount);
      const scoped = Object.fromEntries(table.filter((r) => r.scope !== undefined && r.method !== 'HEAD').map((r) => [`${r.method} ${r.url}`, r.scope]));
      expect(scoped).toEqual({
        'POST /api/v1/flows': 'submit',
        'GET /api/v1/flows/:id': 'read',
        'GET /api/v1/flows/:id/events': 'read',
        'POST /api/v1/flows/:id/cancel': 'submit',
        'POST /api/v1/flows/:id/tasks/:task/ack': 'submit',
        'GET /api/v1/flows/:id/feed': 'read',
        'GET /api/v1/feed': 'read',
        'GET /api/v1/queues': 'read',
        'GET /api/v1/queues/:name': 'read',
        'GET /api/v1/queues/:name/stats': 'read',
        'PUT /api/v1/queues/:name': 'admin',
        'DELETE /api/v1/queues/:name': 'admin',
        'GET /api/v1/events': 'read',
        'GET /api/v1/flows': 'read',
        'GET /api/v1/flows/:id/state': 'read',
        'GET /api/v1/flows/:id/graph': 'read',
        'POST /api/v1/flows/:id/rerun': 'submit',
        'POST /api/v1/flows/:id/fork': 'submit',
        'GET /api/v1/dlq': 'admin',
        'GET /api/v1/dlq/:seq': 'admin',
        'POST /api/v1/dlq/:seq/retry': 'admin',
        'DELETE /api/v1/dlq/:seq': 'admin',
        'GET /api/v1/secrets': 'admin',
        'PUT /api/v1/secrets/:name': 'admin',
        'DELETE /api/v1/secrets/:name': 'admin',
        'POST /api/v1/keys': 'admin',
        'GET /api/v1/keys': 'admin',
        'DELETE /api/v1/keys/:id': 'admin',
        'GET /api/v1/whoami': 'read',
        'GET /api/v1/templates': 'read',
        'PUT /api/v1/templates/:name': 'submit',
        'GET /api/v1/templates/:name': 'read',
        'GET /api/v1/templates/:name/versions': 'read',
        'DELETE /api/v1/templates/:name': 'submit',
        'POST /api/v1/templates/:name/runs': 'submit',
        'GET /api/v1/triggers': 'read',
        'PUT /api/v1/triggers/:name': 'admin',
        'GET /api/v1/triggers/:name': 'read',
        'DELETE /api/v1/triggers/:name': 'admin',
        'POST /api/v1/signals/:name': 'submit',
        'GET /api/v1/flows/:id/artifacts': 'read',
        'GET /api/v1/flows/:id/artifacts/*': 'read',
        'PUT /api/v1/flows/:id/artifacts/*': 'submit',
        'POST /api/v1/schedules': 'submit',
        'GET /api/v1/schedules': 'read',
        'GET /api/v1/schedules/:id': 'read',
        'PUT /api/v1/schedules/:id': 'submit',
        'DELETE /api/v1/schedules/:id': 'submit',
        'POST /api/v1/queues/:name/schedules': 'submit',
        'GET /api/v1/queues/:name/schedules': 'read',
        // MCP over Streamable HTTP: read to connect; each tool's calls need their own route's scope.
        'POST /mcp': 'read',
        'GET /mcp': 'read',
        'DELETE /mcp': 'read',
        // Tasked's REST API, each route with the scope of its Taskstream twin.
        'POST /tasked/api/v1/queues': 'admin',
        'GET /tasked/api/v1/queues': 'read',
        'GET /tasked/api/v1/queues/:qid': 'read',
        'DELETE /tasked/api/v1/queues/:qid': 'admin',
        'POST /tasked/api/v1/queues/:qid/flows': 'submit',
        'GET /tasked/api/v1/queues/:qid/flows': 'read',
        'GET /tasked/api/v1/flows/:id': 'read',
        'DELETE /tasked/api/v1/flows/:id': 'submit',
        'GET /tasked/api/v1/flows/:id/events': 'read',
        'POST /tasked/api/v1/flows/:id/tasks/:tid/ack': 'submit',
        'GET /tasked/api/v1/flows/:id/export': 'read',
        'GET /tasked/api/v1/flows/:id/artifacts': 'read',
        'GET /tasked/api/v1/flows/:id/artifacts/*': 'read',
        'POST /tasked/api/v1/queues/:qid/schedules': 'submit',
        'GET /tasked/api/v1/queues/:qid/schedules': 'read',
        'GET /tasked/api/v1/schedules/:sid': 'read',
        'PUT /tasked/api/v1/schedules/:sid': 'submit',
        'DELETE /tasked/api/v1/schedules/:sid': 'submit',
      });
      await gateway.close();
    } finally {
      await ctx.nc.close();
      await nats.stop();
    }
  });
});
