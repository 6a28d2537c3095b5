import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { HttpConfig, type TaskSpec } from '@taskstream/domain';
import { waitFor } from '@taskstream/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { LOCAL_HTTP_ALLOW } from '../src/steps/address-policy.js';
import { BODY_LIMIT, createHttpStep } from '../src/steps/http.js';
import { stepContext } from './processes.js';

/** The http step as the embedded stack builds it: this machine's loopback allowed, where these servers listen. */
const runHttp = createHttpStep({ allow: LOCAL_HTTP_ALLOW });
const runHttpCapped = (bodyLimit: number) => createHttpStep({ allow: LOCAL_HTTP_ALLOW, bodyLimit });

let server: Server | undefined;
const recorders: Server[] = [];

afterEach(async () => {
  for (const s of [server, ...recorders.splice(0)]) {
    s?.closeAllConnections();
    await new Promise((resolve) => s?.close(resolve) ?? resolve(undefined));
  }
  server = undefined;
});

async function serve(handler: (res: ServerResponse) => void): Promise<string> {
  server = createServer((req, res) => {
    req.resume();
    handler(res);
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
}

describe('http step bodies', () => {
  it('reads at most the byte cap of a large body, says it cut it, and drops the connection instead of downloading the rest', async () => {
    const total = 50 * 1024 * 1024;
    const chunk = Buffer.alloc(64 * 1024, 'a');
    const seen = { sent: 0, closedEarly: false };
    const url = await serve((res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(total) });
      res.on('close', () => (seen.closedEarly = !res.writableFinished));
      const write = () => {
        while (seen.sent < total && !res.destroyed) {
          seen.sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', write);
        }
        if (!res.destroyed) res.end();
      };
      write();
    });

    const output = (await runHttp(stepContext('http', { url, method: 'GET' }))) as Record<string, unknown>;
    expect(output).toMatchObject({ status: 200, truncated: true, body_bytes: BODY_LIMIT });
    expect(output.body).toBe('a'.repeat(BODY_LIMIT));
    await waitFor('the server to see the connection closed', () => (seen.closedEarly ? true : undefined), 10_000);
    expect(seen.sent).toBeLessThan(total);
  });

  it("gives up on a server that does not answer within the step's own timeout_secs, as a retryable timeout", async () => {
    const url = await serve(() => undefined);
    await expect(runHttp(stepContext('http', { url, method: 'GET', timeout_secs: 0.2 }))).rejects.toMatchObject({ detail: { code: 'HTTP_TIMEOUT', retryable: true, message: expect.stringContaining('within 0.2s') } });
  });

  it('cuts at a character boundary: no half character in the text', async () => {
    const url = await serve((res) => res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end('é'.repeat(100)));
    const output = (await runHttpCapped(11)(stepContext('http', { url, method: 'GET' }))) as Record<string, unknown>;
    expect(output).toMatchObject({ status: 200, body: 'ééééé', truncated: true, body_bytes: 10 });
  });

  it('leaves a body within the cap whole, as text with its parsed value beside it when it is JSON, and says nothing of truncation', async () => {
    const url = await serve((res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true,"n":3}'));
    expect(await runHttp(stepContext('http', { url, method: 'GET' }))).toEqual({ status: 200, body: '{"ok":true,"n":3}', json: { ok: true, n: 3 } });
  });

  it('does not parse a cut JSON body: text only, no json', async () => {
    const url = await serve((res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ list: Array.from({ length: 100 }, (_, i) => i) })));
    const output = (await runHttpCapped(20)(stepContext('http', { url, method: 'GET' }))) as Record<string, unknown>;
    expect(output).toEqual({ status: 200, body: '{"list":[0,1,2,3,4,5', truncated: true, body_bytes: 20 });
  });

  it('reads an error answer up to the cap too, and fails with its status', async () => {
    const url = await serve((res) => res.writeHead(503, { 'content-type': 'text/plain' }).end('x'.repeat(BODY_LIMIT * 4)));
    await expect(runHttp(stepContext('http', { url, method: 'GET' }))).rejects.toMatchObject({ detail: { code: 'HTTP_STATUS', http_status: 503, retryable: true } });
  });
});

interface Seen {
  method: string;
  contentType: string | undefined;
  idempotencyKey: string | undefined;
  body: string;
}

/** A server answering `status`, `contentType` and `text`, recording every request it got. */
async function recording(status: number, contentType: string | undefined, text: string): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const recorder = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method!, contentType: req.headers['content-type'], idempotencyKey: req.headers['idempotency-key'] as string | undefined, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(status, contentType === undefined ? {} : { 'content-type': contentType }).end(text);
    });
  });
  recorders.push(recorder);
  await new Promise<void>((resolve) => recorder.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(recorder.address() as { port: number }).port}/hook`, seen };
}

/** A step context as the executor builds it: the config as validation leaves it (defaults filled in), and the task's input. */
function httpTask(config: Record<string, unknown>, input?: unknown) {
  const ctx = stepContext('http', HttpConfig.parse(config) as Record<string, unknown>);
  const spec: TaskSpec = { ...ctx.spec, ...(input !== undefined && { input }) };
  return { ...ctx, spec };
}

describe('http steps as Tasked defines them', () => {
  it('POSTs by default, sending the task input as the JSON body when the config has no body', async () => {
    const { url, seen } = await recording(200, 'text/plain', 'ok');
    const output = await runHttp(httpTask({ url }, { id: 7, tags: ['a'] }));
    expect(seen).toEqual([{ method: 'POST', contentType: 'application/json', idempotencyKey: 'k', body: '{"id":7,"tags":["a"]}' }]);
    expect(output).toEqual({ status: 200, body: 'ok' });
  });

  it('sends the config body instead of the input when it has one', async () => {
    const { url, seen } = await recording(200, 'text/plain', '');
    await runHttp(httpTask({ url, method: 'put', body: { from: 'config' } }, { from: 'input' }));
    expect(seen).toMatchObject([{ method: 'PUT', contentType: 'application/json', body: '{"from":"config"}' }]);
  });

  it('sends no input with methods that carry no body, and no body when the task has no input', async () => {
    const { url, seen } = await recording(200, 'text/plain', '');
    await runHttp(httpTask({ url, method: 'GET' }, { ignored: true }));
    await runHttp(httpTask({ url, method: 'DELETE' }, { ignored: true }));
    await runHttp(httpTask({ url }));
    expect(seen.map((s) => [s.method, s.body, s.contentType])).toEqual([
      ['GET', '', undefined],
      ['DELETE', '', undefined],
      ['POST', '', undefined],
    ]);
  });

  it('sends a string input as a JSON string', async () => {
    const { url, seen } = await recording(200, 'text/plain', '');
    await runHttp(httpTask({ url }, 'hello'));
    expect(seen[0]!.body).toBe('"hello"');
  });

  it('keeps the body as text and puts the parsed value in json, so ${tasks.x.output.json.id} reaches into it', async () => {
    const { url } = await recording(201, 'application/json; charset=utf-8', '{"id":"u-1","n":[1,2]}');
    expect(await runHttp(httpTask({ url }))).toEqual({ status: 201, body: '{"id":"u-1","n":[1,2]}', json: { id: 'u-1', n: [1, 2] } });
  });

  it('parses +json content types too', async () => {
    const { url } = await recording(200, 'application/vnd.api+json', '[1]');
    expect(await runHttp(httpTask({ url }))).toEqual({ status: 200, body: '[1]', json: [1] });
  });

  it('gives no json for a body that is not JSON, nor for JSON-looking text the server does not call JSON', async () => {
    const html = await recording(200, 'text/html', '<p>hi</p>');
    expect(await runHttp(httpTask({ url: html.url }))).toEqual({ status: 200, body: '<p>hi</p>' });
    const plain = await recording(200, 'text/plain', '42');
    expect(await runHttp(httpTask({ url: plain.url }))).toEqual({ status: 200, body: '42' });
    const broken = await recording(200, 'application/json', '{"cut":');
    expect(await runHttp(httpTask({ url: broken.url }))).toEqual({ status: 200, body: '{"cut":' });
  });

  it('fails on a 4xx for good, and on a 5xx or 429 retryably, with the status and the start of the body', async () => {
    const notFound = await recording(404, 'text/plain', 'no such thing');
    await expect(runHttp(httpTask({ url: notFound.url }))).rejects.toMatchObject({
      detail: { code: 'HTTP_STATUS', http_status: 404, retryable: false, message: `POST ${notFound.url} answered 404 Not Found: no such thing` },
    });
    const busy = await recording(429, 'text/plain', '');
    await expect(runHttp(httpTask({ url: busy.url }))).rejects.toMatchObject({ detail: { http_status: 429, retryable: true } });
    const broken = await recording(500, 'text/plain', 'boom');
    await expect(runHttp(httpTask({ url: broken.url }))).rejects.toMatchObject({ detail: { http_status: 500, retryable: true } });
  });
});
