import { createServer, type Server, type ServerResponse } from 'node:http';
import { waitFor } from '@taskstream/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { BODY_LIMIT, runHttp } from '../src/steps/http.js';
import { stepContext } from './processes.js';

let server: Server | undefined;

afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
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
    await expect(runHttp(stepContext('http', { url, method: 'GET', timeout_secs: 0.2 }))).rejects.toMatchObject({ detail: { code: 'TIMEOUT', retryable: true, message: expect.stringContaining('within 0.2s') } });
  });

  it('cuts at a character boundary: no half character in the text', async () => {
    const url = await serve((res) => res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end('é'.repeat(100)));
    const output = (await runHttp(stepContext('http', { url, method: 'GET' }), 11)) as Record<string, unknown>;
    expect(output).toMatchObject({ status: 200, body: 'ééééé', truncated: true, body_bytes: 10 });
  });

  it('leaves a body within the cap whole, parsed when it is JSON, and says nothing of truncation', async () => {
    const url = await serve((res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true,"n":3}'));
    expect(await runHttp(stepContext('http', { url, method: 'GET' }))).toEqual({ status: 200, body: { ok: true, n: 3 } });
  });

  it('keeps a cut JSON body as text rather than failing to parse it', async () => {
    const url = await serve((res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ list: Array.from({ length: 100 }, (_, i) => i) })));
    const output = (await runHttp(stepContext('http', { url, method: 'GET' }), 20)) as Record<string, unknown>;
    expect(output).toMatchObject({ status: 200, body: '{"list":[0,1,2,3,4,5', truncated: true });
  });

  it('reads an error answer up to the cap too, and fails with its status', async () => {
    const url = await serve((res) => res.writeHead(503, { 'content-type': 'text/plain' }).end('x'.repeat(BODY_LIMIT * 4)));
    await expect(runHttp(stepContext('http', { url, method: 'GET' }))).rejects.toMatchObject({ detail: { code: 'HTTP_STATUS', http_status: 503, retryable: true } });
  });
});
