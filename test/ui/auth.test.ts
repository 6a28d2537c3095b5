import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestStack } from '../support/stack.js';
import { launchBrowser, screenshot, WatchedPage } from './support/browser.js';

/**
 * The web UI with API keys on: a key entered once and kept in the tab, feeds authenticated with
 * `?token=`, and only the actions the key's scope allows, which the gateway enforces anyway.
 */

/** The browser logs each refused request as a failed resource: the sign-in's 401s are expected. */
const REFUSED = [/status of 401/];

describe('the web UI with API keys', () => {
  let stack: TestStack;
  let browser: Browser;
  let admin: string;
  let read: { id: string; key: string };
  const as = (key: string) => ({ authorization: `Bearer ${key}`, 'content-type': 'application/json' });

  beforeAll(async () => {
    [stack, browser] = await Promise.all([TestStack.start({ auth: true }), launchBrowser()]);
    admin = stack.stack.adminKey!;
    const created = await fetch(`${stack.url}/api/v1/keys`, { method: 'POST', headers: as(admin), body: JSON.stringify({ name: 'dashboard', scope: 'read' }) });
    expect(created.status, await created.clone().text()).toBe(201);
    read = (await created.json()) as { id: string; key: string };
  });
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  const submitRunning = async () => {
    const submitted = await fetch(`${stack.url}/api/v1/flows`, { method: 'POST', headers: as(admin), body: JSON.stringify({ name: 'long', tasks: [{ id: 'wait', executor: 'delay', config: { ms: 60_000 } }, { id: 'after', executor: 'noop', depends_on: ['wait'] }] }) });
    expect(submitted.status).toBe(202);
    return ((await submitted.json()) as { flow_id: string }).flow_id;
  };

  it('tells its key what it may do: GET /api/v1/whoami', async () => {
    const answer = await fetch(`${stack.url}/api/v1/whoami`, { headers: as(read.key) });
    expect(answer.status).toBe(200);
    expect(await answer.json()).toEqual({ auth: 'keys', scope: 'read', scopes: ['read'], key: { id: read.id, name: 'dashboard' } });
    expect((await fetch(`${stack.url}/api/v1/whoami`)).status).toBe(401);
  });

  it('asks for a key once, and shows a read key no cancel button; the gateway refuses the cancel (403)', async () => {
    const id = await submitRunning();
    const watched = await WatchedPage.open(browser);
    const { page } = watched;
    try {
      await page.goto(`${stack.url}/ui/flows/${id}`);
      const form = page.getByRole('form', { name: 'Sign in' });
      await form.getByLabel('API key').fill('ts_notakey_nope');
      await form.getByRole('button', { name: 'Sign in' }).click();
      await expect.poll(() => form.getByRole('alert').innerText(), { message: watched.console }).toMatch(/a valid API key is required/);
      await screenshot(page, 'sign-in');
      await form.getByLabel('API key').fill(read.key);
      await form.getByRole('button', { name: 'Sign in' }).click();
      await expect.poll(() => page.getByLabel('Signed in as').innerText(), { message: watched.console }).toBe('dashboard (read)');
      // The feed (authenticated with ?token=) shows the task running.
      await expect.poll(() => page.locator('.react-flow__node .task-node[data-task="wait"]').getAttribute('data-status'), { message: watched.console, timeout: 15_000 }).toBe('running');
      expect(await page.getByRole('button', { name: 'Cancel flow' }).count(), 'a read key is offered no cancel').toBe(0);
      expect(await page.getByRole('button', { name: 'Fork here' }).count(), 'nor a fork').toBe(0);
      expect(await page.getByRole('link', { name: 'Dead letters' }).count(), 'nor dead letters').toBe(0);
      // The key is kept for the tab: a reload asks for nothing.
      await page.reload();
      await expect.poll(() => page.getByLabel('Signed in as').innerText(), { message: watched.console }).toBe('dashboard (read)');
      const refused = await fetch(`${stack.url}/api/v1/flows/${id}/cancel`, { method: 'POST', headers: as(read.key), body: '{}' });
      expect(refused.status).toBe(403);
      expect(((await refused.json()) as any).error).toMatchObject({ code: 'FORBIDDEN', required_scope: 'submit' });
      expect(watched.unexpectedErrors(REFUSED), watched.console).toEqual([]);
    } finally {
      await watched.close();
    }
    // An admin's page offers the cancel, and it cancels.
    const adminPage = await WatchedPage.open(browser, { apiKey: admin });
    try {
      await adminPage.page.goto(`${stack.url}/ui/flows/${id}`);
      await adminPage.page.getByRole('button', { name: 'Cancel flow' }).click();
      await adminPage.page.getByRole('button', { name: 'Yes, cancel it' }).click();
      await expect.poll(() => adminPage.page.getByTestId('flow-status').innerText(), { message: adminPage.console, timeout: 20_000 }).toContain('cancelled');
      expect(adminPage.unexpectedErrors(), adminPage.console).toEqual([]);
    } finally {
      await adminPage.close();
    }
    const view = (await (await fetch(`${stack.url}/api/v1/flows/${id}`, { headers: as(admin) })).json()) as { status: string };
    expect(view.status).toBe('cancelled');
  });
});
