import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveUi, UI_CSP } from '@taskstream/gateway';
import { freePort, NatsServer, waitFor } from '@taskstream/testing';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, TestStack } from '../support/stack.js';

/** How the gateway serves the built UI: caching, the page's Content-Security-Policy, the single-page fallback, no key needed; and without a build. */
describe('serving the web UI', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await TestStack.start({ auth: true });
  });
  afterAll(async () => stack?.stop());

  const asset = () => readdirSync(join(ROOT, 'ui', 'dist', 'assets')).find((name) => name.endsWith('.js'))!;

  it('serves the page without a key, with its CSP and revalidated on each load', async () => {
    for (const path of ['/ui', '/ui/', '/ui/flows/01JAAAAAAAAAAAAAAAAAAAAAAA', '/ui/queues?x=1']) {
      const page = await fetch(`${stack.url}${path}`);
      expect(page.status, path).toBe(200);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      expect(page.headers.get('content-security-policy')).toBe(UI_CSP);
      expect(page.headers.get('cache-control')).toBe('no-cache');
      expect(await page.text()).toContain('<div id="root"></div>');
    }
    // The API beside it still needs a key.
    expect((await fetch(`${stack.url}/api/v1/flows`)).status).toBe(401);
  });

  it('caches hashed assets for good, and answers a missing one 404 rather than the page', async () => {
    const file = await fetch(`${stack.url}/ui/assets/${asset()}`);
    expect(file.status).toBe(200);
    expect(file.headers.get('content-type')).toMatch(/javascript/);
    expect(file.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    const missing = await fetch(`${stack.url}/ui/assets/nope-1234.js`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as any).error.code).toBe('ROUTE_NOT_FOUND');
    expect((await fetch(`${stack.url}/ui/favicon.svg`)).headers.get('cache-control')).toBe('no-cache');
    // Nothing outside the build is reachable through it.
    for (const path of ['/ui/../package.json', '/ui/%2e%2e/package.json', '/ui/assets/..%2f..%2fpackage.json']) {
      const answer = await fetch(`${stack.url}${path}`);
      expect(await answer.text(), path).not.toContain('"workspaces"');
    }
  });

  it('says so when the UI was not built', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'taskstream-ui-'));
    const app = Fastify();
    try {
      await serveUi(app, { dist: join(empty, 'dist') });
      const answer = await app.inject({ method: 'GET', url: '/ui/' });
      expect(answer.statusCode).toBe(503);
      expect(answer.json().error).toMatchObject({ code: 'UNAVAILABLE', message: expect.stringMatching(/the web UI was not built.*npm run build/) });
    } finally {
      await app.close();
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('taskstream up prints the UI address, and the UI is there', async () => {
    const nats = await NatsServer.start();
    const port = await freePort();
    const child = spawn(process.execPath, [join(ROOT, 'cli', 'bin', 'taskstream.js'), 'up', '--port', String(port), '--nats', nats.url, '--log-level', 'warn'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c) => (output += c));
    child.stderr.on('data', (c) => (output += c));
    try {
      const url = await waitFor(`taskstream up to print the UI address:\n${output}`, () => /web UI (http:\/\/\S+)/.exec(output)?.[1], 45_000, 100);
      expect(url).toBe(`http://127.0.0.1:${port}/ui/`);
      const page = await fetch(url);
      expect(page.status, output).toBe(200);
      expect(await page.text()).toContain('<div id="root"></div>');
    } finally {
      await new Promise((resolve) => {
        child.once('exit', resolve);
        child.kill('SIGTERM');
      });
      await nats.stop();
    }
  });
});
