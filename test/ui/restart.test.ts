import { NatsServer } from '@taskstream/testing';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_SERVICES, Deployment, FAST_FAILOVER } from '../support/deployment.js';
import { gatewayApi } from '../support/gateway-api.js';
import { launchBrowser, WatchedPage } from './support/browser.js';

/**
 * The flow page across a gateway restart, with every service its own process: the page's feed
 * resumes from the last sequence it saw once the gateway is back, and the DAG ends as the flow
 * did, without a reload.
 */

const TASKS = ['one', 'two', 'three', 'four'];

/** What a browser logs while the gateway is gone: failed WebSocket and HTTP connections, which the page rides out. */
const OUTAGE = [/WebSocket connection to .* failed/, /Failed to load resource/, /ERR_CONNECTION_REFUSED/];

describe('the web UI across a gateway restart', () => {
  let nats: NatsServer;
  let deployment: Deployment;
  let browser: Browser;
  const api = gatewayApi(() => deployment.gatewayUrl);

  beforeAll(async () => {
    nats = await NatsServer.start();
    [deployment, browser] = await Promise.all([Deployment.start(nats.url, ALL_SERVICES, FAST_FAILOVER), launchBrowser()]);
  });
  afterAll(async () => {
    await browser?.close();
    await deployment?.stop();
    await nats?.stop();
  });

  it('resumes the live DAG after the gateway restarts mid-flow and ends with the right colours', async () => {
    const id = await api.submit({ name: 'across a restart', tasks: TASKS.map((task, i) => ({ id: task, executor: 'delay', config: { ms: 2_000 }, ...(i > 0 && { depends_on: [TASKS[i - 1]] }) })) });
    const watched = await WatchedPage.open(browser);
    const { page } = watched;
    const statusOf = (task: string) => page.locator(`.react-flow__node .task-node[data-task="${task}"]`).getAttribute('data-status');
    const explain = () => `page console:\n${watched.console}\nservices:\n${deployment.logs()}`;
    try {
      await page.goto(`${deployment.gatewayUrl}/ui/flows/${id}`);
      await page.evaluate('window.__sameDocument = true');
      await expect.poll(() => statusOf('one'), { message: `the first task runs\n${explain()}`, timeout: 20_000 }).toBe('running');
      await deployment.restart('gateway');
      await deployment.ready();
      const view = await api.settled(id, 60_000);
      expect(view.status, explain()).toBe('succeeded');
      for (const task of TASKS) await expect.poll(() => statusOf(task), { message: `${task} ends succeeded on the page\n${explain()}`, timeout: 30_000 }).toBe('succeeded');
      await expect.poll(() => page.getByTestId('flow-status').innerText(), { message: explain(), timeout: 10_000 }).toContain('succeeded');
      expect(await page.evaluate('window.__sameDocument === true'), 'the page was not reloaded').toBe(true);
      // Each event shown once: the slider counts exactly the flow's events, none lost or repeated across the restart.
      const events = await api.stored(id);
      await expect.poll(() => page.locator('label[for="event-slider"]').innerText(), { message: explain() }).toBe(`Event ${events.length} of ${events.length}`);
      expect(watched.unexpectedErrors(OUTAGE), explain()).toEqual([]);
    } finally {
      await watched.close();
    }
  });
});
