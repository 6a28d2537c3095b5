import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { request as httpRequest, createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_TASKS_PER_FLOW } from '@taskstream/domain';
import { generateApiKey } from '@taskstream/nats';
import { NatsServer, waitFor } from '@taskstream/testing';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Deployment } from '../support/deployment.js';

/*
 * Security properties of docs/security.md that no other test proves, on services run as a
 * deployment runs them: each its own process, API keys required, the gateway's body limit set by
 * TASKSTREAM_BODY_LIMIT, and two executor pools as operators would configure them: `default` with
 * shell steps off and nothing private allowed (the defaults), `trusted` with shell steps on and one
 * loopback alias allowed. Every address below is a loopback address; a refused step reaches none.
 */

const ADMIN = generateApiKey().key;
const BODY_LIMIT = 1024 * 1024;
const MAX_CLIENT_MESSAGE = 64 * 1024;
/** A referenced value a shell would run if it ever parsed it. */
const hostile = (dir: string) =>
  `; touch ${dir}/semicolon $(touch ${dir}/subshell) \`touch ${dir}/backtick\` && touch ${dir}/and | touch ${dir}/pipe ' " \${HOME} $PATH`;

/** An HTTP server on a loopback address that counts the connections it accepted and the requests it read. */
async function listen(host: string, answer: (url: string) => { status: number; headers?: Record<string, string> }) {
  const server: Server = createServer((req, res) => {
    seen.requests.push(req.url!);
    const { status, headers } = answer(req.url!);
    req.resume();
    res.writeHead(status, { 'content-type': 'text/plain', ...headers }).end('ok');
  });
  const seen = { port: 0, connections: 0, requests: [] as string[], close: () => new Promise<void>((r) => server.close(() => r())) };
  server.on('connection', () => seen.connections++);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  seen.port = (server.address() as { port: number }).port;
  return seen;
}

/** Sends `body` without a Content-Length (chunked) and returns the status and body of the answer. */
function postChunked(url: string, key: string, body: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = httpRequest(url, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (res) => {
      answered = true;
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body: text }));
    });
    // The gateway may answer and close before it has read everything; the answer is what counts.
    req.on('error', (error) => (answered ? undefined : reject(error)));
    for (let at = 0; at < body.length; at += 16 * 1024) req.write(body.subarray(at, at + 16 * 1024));
    req.end();
  });
}

describe('security properties of a deployed stack', () => {
  let nats: NatsServer;
  let deployment: Deployment;
  let base: string;
  const keys: Record<string, string> = {};

  const call = (method: string, path: string, key: string | undefined, body?: string, contentType = 'application/json') =>
    fetch(`${base}${path}`, {
      method,
      headers: { ...(key !== undefined && { authorization: `Bearer ${key}` }), ...(body !== undefined && { 'content-type': contentType }) },
      ...(body !== undefined && { body }),
    });
  const submit = async (flow: unknown) => {
    const response = await call('POST', '/api/v1/flows', keys.submit, JSON.stringify(flow));
    expect(response.status, await response.clone().text()).toBe(202);
    return ((await response.json()) as { flow_id: string }).flow_id;
  };
  const settled = (flowId: string) =>
    waitFor(`flow ${flowId} to end`, async () => {
      const view = (await (await call('GET', `/api/v1/flows/${flowId}`, keys.read)).json()) as any;
      return ['succeeded', 'failed', 'cancelled'].includes(view.status) ? view : undefined;
    }, 30_000, 100);
  const tasksOf = (view: any): Record<string, any> => Object.fromEntries(view.tasks.map((t: any) => [t.id, t]));

  beforeAll(async () => {
    nats = await NatsServer.start();
    deployment = await Deployment.start(nats.url, [
      ['gateway', 'gateway', { TASKSTREAM_AUTH: 'keys', TASKSTREAM_BOOTSTRAP_ADMIN_KEY: ADMIN, TASKSTREAM_BODY_LIMIT: String(BODY_LIMIT), TASKSTREAM_RATE_LIMIT: '0' }],
      ['planner', 'planner'],
      ['dispatcher', 'dispatcher'],
      ['projector', 'projector'],
      ['executor-default', 'executor', { TASKSTREAM_QUEUE: 'default', TASKSTREAM_ALLOW_SHELL: 'false', TASKSTREAM_HTTP_ALLOW: '' }],
      ['executor-trusted', 'executor', { TASKSTREAM_QUEUE: 'trusted', TASKSTREAM_ALLOW_SHELL: 'true', TASKSTREAM_HTTP_ALLOW: '127.0.0.2/32' }],
    ]);
    base = deployment.gatewayUrl;
    for (const scope of ['read', 'submit']) {
      const response = await call('POST', '/api/v1/keys', ADMIN, JSON.stringify({ name: `security ${scope}`, scope }));
      expect(response.status, await response.clone().text()).toBe(201);
      keys[scope] = ((await response.json()) as { key: string }).key;
    }
  });
  afterAll(async () => {
    await deployment?.stop();
    await nats?.stop();
  });

  describe('S2: WebSocket frames', () => {
    it('keeps a feed open after a 64 KiB client message, and closes it with 1009 and a reason on one byte more', async () => {
      const client = new WebSocket(`${base.replace('http', 'ws')}/api/v1/feed?after=0`, { headers: { authorization: `Bearer ${keys.read}` } });
      const closed = new Promise<{ code: number; reason: string }>((resolve) => client.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
      client.on('error', () => undefined);
      await new Promise<void>((resolve, reject) => {
        client.once('open', () => resolve());
        client.once('unexpected-response', (_req, res) => reject(new Error(`feed refused with ${res.statusCode}`)));
      });

      client.send('x'.repeat(MAX_CLIENT_MESSAGE));
      // Frames are handled in order: a pong after it means the message at the limit was taken.
      const answer = Promise.race([new Promise((resolve) => client.once('pong', () => resolve('pong'))), closed.then((c) => `closed with ${c.code}`)]);
      client.ping();
      expect(await answer).toBe('pong');

      client.send('x'.repeat(MAX_CLIENT_MESSAGE + 1));
      expect(await closed).toEqual({ code: 1009, reason: 'a message was larger than 64 KiB' });
    });
  });

  describe('S3: input bounds', () => {
    const flowOfBytes = (bytes: number) => {
      const flow = JSON.stringify({ tasks: [{ id: 'a', executor: 'noop' }] });
      return flow + ' '.repeat(bytes - Buffer.byteLength(flow));
    };

    it('answers a body over TASKSTREAM_BODY_LIMIT with 413, with or without a declared length, and only once the key is known', async () => {
      const before = await (await call('GET', '/api/v1/flows', keys.read)).text();

      const declared = await call('POST', '/api/v1/flows', keys.submit, flowOfBytes(BODY_LIMIT + 1));
      expect(declared.status).toBe(413);
      expect(await declared.json()).toEqual({ error: { code: 'BODY_TOO_LARGE', message: expect.stringContaining(`the ${BODY_LIMIT / 1024} KiB limit`) } });

      const chunked = await postChunked(`${base}/api/v1/flows`, keys.submit!, Buffer.from(flowOfBytes(BODY_LIMIT + 1)));
      expect(chunked.status).toBe(413);
      expect(JSON.parse(chunked.body).error.code).toBe('BODY_TOO_LARGE');

      // Without a key the body is never read: the answer is the 401 every anonymous request gets.
      expect((await call('POST', '/api/v1/flows', undefined, flowOfBytes(BODY_LIMIT + 1))).status).toBe(401);

      expect(await (await call('GET', '/api/v1/flows', keys.read)).text()).toBe(before);
      // The limit is the configured one, not the 10 MiB default: a body of exactly the limit is taken.
      const atLimit = await call('POST', '/api/v1/flows', keys.submit, flowOfBytes(BODY_LIMIT));
      expect(atLimit.status, await atLimit.clone().text()).toBe(202);
    });

    it('refuses a flow of one task over the task limit with a 400 naming the limit, as JSON and as YAML', async () => {
      const ids = Array.from({ length: MAX_TASKS_PER_FLOW + 1 }, (_, i) => `t${i}`);
      const json = JSON.stringify({ tasks: ids.map((id) => ({ id, executor: 'noop' })) });
      const yaml = `tasks:\n${ids.map((id) => `  - {id: ${id}, executor: noop}`).join('\n')}\n`;
      for (const [body, type] of [[json, 'application/json'], [yaml, 'application/yaml']] as const) {
        expect(Buffer.byteLength(body)).toBeLessThan(BODY_LIMIT);
        const response = await call('POST', '/api/v1/flows', keys.submit, body, type);
        expect(response.status, type).toBe(400);
        const { error } = (await response.json()) as any;
        expect(error.code).toBe('INVALID_FLOW');
        expect(error.problems).toEqual([{ path: 'tasks', message: expect.stringContaining(`at most ${MAX_TASKS_PER_FLOW}`) }]);
      }
    });
  });

  describe('S4: SSRF from a deployed executor pool', () => {
    it('fails http steps to loopback in any spelling, and a redirect to it from an allowed host, for good and without connecting', async () => {
      const target = await listen('127.0.0.1', () => ({ status: 200 }));
      const allowed = await listen('127.0.0.2', (url) => (url === '/ok' ? { status: 200 } : { status: 302, headers: { location: `http://127.0.0.1:${target.port}/secret` } }));
      try {
        const spellings = ['127.0.0.1', '2130706433', '0x7f000001', '0177.0.0.1', '127.1', '[::ffff:127.0.0.1]', '0.0.0.0'];
        const id = await submit({
          tasks: [
            ...spellings.map((host, i) => ({ id: `direct-${i}`, executor: 'http', config: { url: `http://${host}:${target.port}/`, method: 'GET' }, retries: 3 })),
            { id: 'redirected', executor: 'http', queue: 'trusted', config: { url: `http://127.0.0.2:${allowed.port}/start`, method: 'GET' }, retries: 3 },
            { id: 'allowed', executor: 'http', queue: 'trusted', config: { url: `http://127.0.0.2:${allowed.port}/ok`, method: 'GET' } },
          ],
        });
        const tasks = tasksOf(await settled(id));
        for (const [i, host] of spellings.entries()) {
          const task = tasks[`direct-${i}`];
          expect({ host, status: task.status, attempts: task.attempts.length, error: task.error }).toMatchObject({
            host,
            status: 'failed',
            attempts: 1,
            error: { code: 'SSRF_BLOCKED', retryable: false, message: expect.stringMatching(/^http step refused to connect to (127\.0\.0\.1|0\.0\.0\.0): (loopback|unspecified) addresses are blocked/) },
          });
        }
        expect(tasks.redirected).toMatchObject({ status: 'failed', error: { code: 'SSRF_BLOCKED', retryable: false, message: expect.stringContaining('(redirect 1 of GET') } });
        expect(tasks.redirected.attempts).toHaveLength(1);
        // The pool reaches what it allows; nothing reached the blocked address.
        expect(tasks.allowed.status).toBe('succeeded');
        expect(allowed.requests.sort()).toEqual(['/ok', '/start']);
        expect(target.connections).toBe(0);
      } finally {
        await target.close();
        await allowed.close();
      }
    });
  });

  describe('S5: shell steps', () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'taskstream-security-'));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('fails a shell step on a pool without shell steps at its first attempt, without running it', async () => {
      const id = await submit({ tasks: [{ id: 'sh', executor: 'shell', config: { command: `touch ${dir}/ran` }, retries: 3 }] });
      const { sh } = tasksOf(await settled(id));
      expect(sh).toMatchObject({ status: 'failed', error: { code: 'SHELL_DISABLED', retryable: false, message: expect.stringContaining('--allow-shell') } });
      expect(sh.attempts).toHaveLength(1);
      expect(existsSync(join(dir, 'ran'))).toBe(false);
    });

    it('passes a referenced value holding ;, $() and backticks as data: one argument in args, a variable in command', async () => {
      const value = hostile(dir);
      for (const part of ['; touch', '$(touch', '`touch', '&& touch', '| touch']) expect(value).toContain(part);
      const ref = '${tasks.source.output.title}';
      const id = await submit({
        queue: 'trusted',
        tasks: [
          { id: 'source', executor: 'noop', config: { output: { title: value } } },
          { id: 'whole', executor: 'shell', config: { args: ['printf', '%s', ref] }, depends_on: ['source'] },
          { id: 'inside', executor: 'shell', config: { args: ['printf', '%s|%s', `pre-${ref}-post`, 'second'] }, depends_on: ['source'] },
          { id: 'env', executor: 'shell', config: { args: ['printenv', 'TITLE'], env: { TITLE: ref } }, depends_on: ['source'] },
          { id: 'command', executor: 'shell', config: { command: `printf '%s' "${ref}"` }, depends_on: ['source'] },
        ],
      });
      const view = await settled(id);
      const tasks = tasksOf(view);
      expect(view.status, JSON.stringify(view.tasks.map((t: any) => [t.id, t.status, t.error]))).toBe('succeeded');
      expect(tasks.whole.output).toEqual({ exit_code: 0, stdout: value, stderr: '' });
      expect(tasks.inside.output).toEqual({ exit_code: 0, stdout: `pre-${value}-post|second`, stderr: '' });
      expect(tasks.env.output).toEqual({ exit_code: 0, stdout: `${value}\n`, stderr: '' });
      expect(tasks.command.output).toEqual({ exit_code: 0, stdout: value, stderr: '' });
      expect(readdirSync(dir)).toEqual([]);
    });
  });
});
