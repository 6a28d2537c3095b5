import type { Browser } from 'playwright-core';
import { connectNats, jetstream } from '@taskstream/nats';
import { waitFor } from '@taskstream/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { gatewayApi } from '../support/gateway-api.js';
import { recordingEndpoint, TestStack } from '../support/stack.js';
import { launchBrowser, screenshot, WatchedPage } from './support/browser.js';

/**
 * The web UI in a real browser against the embedded stack (its own nats-server on free ports,
 * everything on loopback): the list, the live DAG, time travel, approvals, forks, queues, and the
 * page at phone width. Every page is checked for console errors.
 */

const SUCCEEDED_FILL = 'rgb(210, 244, 220)';
const RUNNING_FILL = 'rgb(255, 241, 191)';

/** The colour a node is painted, as the browser computed it. */
const backgroundOf = (node: unknown) => (globalThis as any).getComputedStyle(node).backgroundColor as string;

/** A page script recording every status each DAG node shows, in order, from the page's first render on. */
const RECORD_STATUSES = `
  window.__statuses = [];
  const seen = new Map();
  new MutationObserver(() => {
    for (const node of document.querySelectorAll('.react-flow__node .task-node')) {
      const task = node.getAttribute('data-task'), status = node.getAttribute('data-status');
      if (seen.get(task) !== status) { seen.set(task, status); window.__statuses.push([task, status]); }
    }
  }).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-status'] });
`;

const delays = (name: string, ms: number) => ({
  name,
  labels: { suite: 'ui' },
  tasks: [
    { id: 'fetch', executor: 'delay', config: { ms } },
    { id: 'build', executor: 'delay', config: { ms }, depends_on: ['fetch'] },
    { id: 'test', executor: 'delay', config: { ms }, depends_on: ['build'] },
    { id: 'lint', executor: 'noop', depends_on: ['fetch'] },
    { id: 'ship', executor: 'noop', depends_on: ['test', 'lint'] },
  ],
});

describe('the web UI', () => {
  let stack: TestStack;
  let browser: Browser;
  let page: WatchedPage | undefined;
  const api = gatewayApi(() => stack.url);

  beforeAll(async () => {
    [stack, browser] = await Promise.all([TestStack.start(), launchBrowser()]);
  });
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });
  afterEach(async (context) => {
    if (page && context.task.result?.state === 'fail') console.error(`page console of "${context.task.name}":\n${page.console}`);
    await page?.close();
    page = undefined;
  });

  /** A page of the UI; `check` runs with the page's console in its failure message. */
  const open = async (path: string, options: { width?: number; height?: number } = {}) => {
    page = await WatchedPage.open(browser, options);
    await page.page.goto(`${stack.url}/ui${path}`);
    return page;
  };
  const noConsoleErrors = (watched: WatchedPage) => expect(watched.unexpectedErrors(), `console errors:\n${watched.console}`).toEqual([]);
  const nodeOf = (watched: WatchedPage, task: string) => watched.page.locator(`.react-flow__node .task-node[data-task="${task}"]`);

  it('lists a submitted flow with its status, queue, labels and task counts', async () => {
    const id = await api.submit(delays('listed', 10));
    await api.settled(id);
    const watched = await open('/');
    const row = watched.page.locator(`tr[data-flow="${id}"]`);
    await expect.poll(() => row.count(), { message: `the list shows flow ${id}\n${watched.console}`, timeout: 15_000 }).toBe(1);
    await expect.poll(() => row.innerText(), { timeout: 15_000 }).toMatch(/succeeded[\s\S]*default[\s\S]*suite:ui[\s\S]*5\/5 done/);
    // A flow submitted while the page is open appears without a reload, from the global feed.
    const later = await api.submit(delays('arrives live', 10));
    await expect.poll(() => watched.page.locator(`tr[data-flow="${later}"]`).count(), { message: `flow ${later} appears live\n${watched.console}`, timeout: 15_000 }).toBe(1);
    // Filters are the API's: a status filter leaves out what does not match.
    await watched.page.getByRole('checkbox', { name: 'failed' }).check();
    await watched.page.getByRole('button', { name: 'Apply filters' }).click();
    await expect.poll(() => watched.page.locator('tr[data-flow]').count(), { timeout: 10_000 }).toBe(0);
    await watched.page.getByRole('button', { name: 'Clear' }).click();
    await expect.poll(() => watched.page.locator('tr[data-flow]').count(), { timeout: 10_000 }).toBeGreaterThanOrEqual(2);
    await screenshot(watched.page, 'flows');
    noConsoleErrors(watched);
  });

  it("colours the DAG's nodes live as the flow runs, without a reload", async () => {
    const id = await api.submit(delays('live colours', 2_000));
    const watched = await open(`/flows/${id}`);
    const { page: p } = watched;
    // A marker a reload would wipe out.
    await p.evaluate('window.__sameDocument = true');
    await expect.poll(() => nodeOf(watched, 'build').count(), { message: `the DAG shows its nodes\n${watched.console}` }).toBe(1);
    // Whichever of the delays runs when the page looks: it is painted as running, then, live, as succeeded.
    const running = p.locator('.react-flow__node .task-node[data-status="running"]').first();
    const task = await waitFor('a task to run', async () => (await running.count()) > 0 ? running.getAttribute('data-task') : undefined, 15_000, 50);
    expect(['fetch', 'build', 'test']).toContain(task);
    expect(await nodeOf(watched, task!).evaluate(backgroundOf)).toBe(RUNNING_FILL);
    // The status is written on the node too, not told by colour alone.
    expect(await nodeOf(watched, task!).innerText()).toContain('running');
    expect(await nodeOf(watched, 'ship').getAttribute('data-status')).toBe('pending');
    await screenshot(p, 'flow-running');
    await expect.poll(() => nodeOf(watched, task!).evaluate(backgroundOf), { message: `${task} turns green when it succeeds\n${watched.console}`, timeout: 15_000, interval: 100 }).toBe(SUCCEEDED_FILL);
    await expect.poll(() => watched.page.getByTestId('flow-status').innerText(), { message: `the flow ends succeeded\n${watched.console}`, timeout: 30_000 }).toContain('succeeded');
    for (const task of ['fetch', 'build', 'test', 'lint', 'ship']) {
      await expect.poll(() => nodeOf(watched, task).evaluate(backgroundOf), { message: `${task} ends green` }).toBe(SUCCEEDED_FILL);
    }
    expect(await p.evaluate('window.__sameDocument === true'), 'the page was not reloaded').toBe(true);
    // The timeline shows each attempt.
    await expect.poll(() => p.locator('.gantt-span.attempt-succeeded').count()).toBeGreaterThanOrEqual(5);
    await p.locator('.task-list button[data-task="build"]').click();
    await expect.poll(() => p.getByRole('region', { name: 'Task build' }).innerText()).toMatch(/Attempts \(1\)[\s\S]*succeeded/);
    await screenshot(p, 'flow-succeeded');
    noConsoleErrors(watched);
  });

  it('shows retries and their waits on the timeline, and the tasks a map adds as it adds them', async () => {
    // Fails twice (500), then answers.
    const endpoint = await recordingEndpoint((_req, n) => (n <= 2 ? 500 : 200));
    try {
      const id = await api.submit({
        name: 'retries and a map',
        tasks: [
          { id: 'flaky', executor: 'http', config: { url: `${endpoint.url}/flaky`, method: 'POST' }, retries: 3, backoff: 'fixed' },
          { id: 'fan', executor: 'delay', depends_on: ['flaky'], map: { items: '[1, 2, 3]', concurrency: 3 }, config: { ms: 300 } },
          { id: 'report', executor: 'noop', depends_on: ['fan'] },
        ],
      });
      const watched = await open(`/flows/${id}`);
      const { page: p } = watched;
      await expect.poll(() => nodeOf(watched, 'flaky').count(), { message: watched.console }).toBe(1);
      expect(await p.locator('.react-flow__node .task-node[data-task^="fan["]').count(), 'no instance before the map runs').toBe(0);
      for (const instance of ['fan[0]', 'fan[1]', 'fan[2]']) {
        await expect.poll(() => nodeOf(watched, instance).getAttribute('data-status'), { message: `${instance} is added to the DAG and runs\n${watched.console}`, timeout: 30_000 }).toBe('succeeded');
      }
      await expect.poll(() => p.getByTestId('flow-status').innerText(), { message: watched.console, timeout: 15_000 }).toContain('succeeded');
      const flaky = p.locator('.gantt-row', { has: p.locator('.gantt-task', { hasText: /^flaky$/ }) });
      await expect.poll(() => flaky.locator('.gantt-span.attempt-failed').count(), { message: watched.console }).toBe(2);
      expect(await flaky.locator('.gantt-span.retry-wait').count()).toBe(2);
      expect(await flaky.locator('.gantt-span.attempt-succeeded').count()).toBe(1);
      await p.locator('.task-list button[data-task="flaky"]').click();
      await expect.poll(() => p.getByRole('region', { name: 'Task flaky' }).innerText()).toMatch(/Attempts \(3\)/);
      await screenshot(p, 'flow-retries');
      noConsoleErrors(watched);
    } finally {
      await endpoint.close();
    }
  });

  it('shows tasks pending at an early event of the slider, described in words', async () => {
    const id = await api.submit(delays('travel', 10));
    await api.settled(id);
    const watched = await open(`/flows/${id}`);
    const { page: p } = watched;
    const slider = p.getByRole('slider');
    await expect.poll(() => nodeOf(watched, 'ship').getAttribute('data-status'), { message: `the live DAG ends succeeded\n${watched.console}` }).toBe('succeeded');
    const events = await api.stored(id);
    await expect.poll(() => p.locator('label[for="event-slider"]').innerText(), { message: `the page has every event\n${watched.console}` }).toBe(`Event ${events.length} of ${events.length}`);
    // The first event: the flow was just submitted, no task has run.
    await slider.focus();
    await p.keyboard.press('Home');
    await expect.poll(() => p.locator('.event-words').innerText()).toMatch(/^#\d+ Flow submitted with 5 tasks/);
    await expect.poll(() => p.locator('.flow-body').getAttribute('data-state')).toBe('past');
    for (const task of ['fetch', 'build', 'test', 'lint', 'ship']) {
      await expect.poll(() => nodeOf(watched, task).getAttribute('data-status'), { message: `${task} is pending at the first event\n${watched.console}` }).toBe('pending');
    }
    expect(await nodeOf(watched, 'ship').innerText()).toContain('pending');
    // A few events on: fetch has become ready and the words say so.
    await p.keyboard.press('ArrowRight');
    await p.keyboard.press('ArrowRight');
    await expect.poll(() => p.locator('.event-words').innerText()).toMatch(/^#\d+ (Flow started|Task fetch)/);
    await expect.poll(() => p.locator('.flow-body').getAttribute('data-state')).toBe('past');
    await screenshot(p, 'time-travel');
    await p.getByRole('button', { name: 'Back to live' }).click();
    await expect.poll(() => nodeOf(watched, 'ship').getAttribute('data-status')).toBe('succeeded');
    noConsoleErrors(watched);
  });

  it('approves a waiting approval from the task panel', async () => {
    const id = await api.submit({
      name: 'needs approval',
      tasks: [
        { id: 'build', executor: 'noop' },
        { id: 'go-live', executor: 'approval', depends_on: ['build'], config: { message: 'Ship it?' } },
        { id: 'deploy', executor: 'noop', depends_on: ['go-live'] },
      ],
    });
    await api.statusIs(id, 'go-live', 'waiting');
    const watched = await open(`/flows/${id}`);
    const { page: p } = watched;
    await p.locator('.task-list button[data-task="go-live"]').click();
    const panel = p.getByRole('region', { name: 'Task go-live' });
    await expect.poll(() => panel.locator('.waiting-reason').innerText(), { message: `the panel says what the task waits for\n${watched.console}` }).toBe('waiting for an approval');
    const form = panel.getByRole('form', { name: 'Approval' });
    expect(await form.getByLabel('Code').inputValue(), 'the code is filled in from the task output').toMatch(/^[0-9a-f]{32}$/);
    await form.getByLabel('Decided by (optional)').fill('ui tester');
    await screenshot(p, 'approval');
    await form.getByRole('button', { name: 'Approve' }).click();
    await expect.poll(() => nodeOf(watched, 'deploy').getAttribute('data-status'), { message: `deploy runs once approved\n${watched.console}`, timeout: 20_000 }).toBe('succeeded');
    const view = await api.settled(id);
    expect(view.status).toBe('succeeded');
    const approved = (await api.events(id)).find((e) => e.type === 'task.succeeded' && e.task_id === 'go-live');
    expect(approved.data.ack.approved_by).toBe('ui tester');
    noConsoleErrors(watched);
  });

  it('sends the signal a wait task waits for from its task panel', async () => {
    const id = await api.submit({
      name: 'waits for a signal',
      tasks: [
        { id: 'paid', executor: 'wait', config: { signal: 'ui_payment', match: 'signal.order == "A-1"' } },
        { id: 'ship', executor: 'noop', depends_on: ['paid'] },
      ],
    });
    await api.statusIs(id, 'paid', 'waiting');
    const watched = await open(`/flows/${id}`);
    const { page: p } = watched;
    await p.locator('.task-list button[data-task="paid"]').click();
    const panel = p.getByRole('region', { name: 'Task paid' });
    await expect.poll(() => panel.locator('.waiting-reason').innerText(), { message: watched.console }).toBe('waiting for the signal "ui_payment" matching signal.order == "A-1"');
    const form = panel.getByRole('form', { name: 'Send a signal' });
    await form.getByLabel('Payload (JSON)').fill('{"order": "A-1", "amount": 12}');
    await form.getByRole('button', { name: 'Send signal' }).click();
    await expect.poll(() => form.getByRole('status').innerText(), { message: watched.console }).toMatch(/Signal ui_payment stored/);
    await expect.poll(() => nodeOf(watched, 'ship').getAttribute('data-status'), { message: `the flow goes on once signalled\n${watched.console}`, timeout: 20_000 }).toBe('succeeded');
    expect((await api.view(id)).tasks.find((t: any) => t.id === 'paid').output).toMatchObject({ order: 'A-1', amount: 12 });
    noConsoleErrors(watched);
  });

  it('reruns a failed flow from its failure, reusing what succeeded', async () => {
    const endpoint = await recordingEndpoint((_req, n) => (n === 1 ? 500 : 200));
    try {
      const id = await api.submit({
        name: 'fails once',
        tasks: [
          { id: 'prepare', executor: 'noop' },
          { id: 'call', executor: 'http', config: { url: `${endpoint.url}/call`, method: 'POST' }, depends_on: ['prepare'], retries: 0 },
        ],
      });
      expect((await api.settled(id)).status).toBe('failed');
      const watched = await open(`/flows/${id}`);
      const { page: p } = watched;
      await expect.poll(() => nodeOf(watched, 'call').getAttribute('data-status'), { message: watched.console }).toBe('failed');
      await p.getByRole('button', { name: 'Rerun from failure' }).click();
      await p.waitForURL((url) => /\/ui\/flows\/[0-9A-Z]{26}$/.test(url.pathname) && !url.pathname.endsWith(id), { timeout: 15_000 });
      const rerun = p.url().split('/').at(-1)!;
      await expect.poll(() => nodeOf(watched, 'call').getAttribute('data-status'), { message: `the rerun's call succeeds\n${watched.console}`, timeout: 20_000 }).toBe('succeeded');
      // React Flow keeps a node hidden (no inner text) until it has measured it: ask until it shows.
      await expect.poll(() => nodeOf(watched, 'prepare').innerText(), { message: `the reused task's node\n${watched.console}` }).toContain('reused');
      expect((await api.view(rerun)).lineage).toMatchObject({ kind: 'rerun', parent_flow_id: id });
      noConsoleErrors(watched);
    } finally {
      await endpoint.close();
    }
  });

  it('lists dead letters with their reason; a letter of the log cannot be retried and says why; one is discarded', async () => {
    const nc = await connectNats({ servers: stack.nats.url, name: 'ui-test' });
    try {
      await jetstream(nc).publish('ts.evt.0.01JAAAAAAAAAAAAAAAAAAAAAAA.task.ready', '{not json');
    } finally {
      await nc.close();
    }
    const listed = async () => ((await (await fetch(`${stack.url}/api/v1/dlq`)).json()) as { letters: unknown[] }).letters.length;
    // The planner, the projector and the dispatcher each set it aside; the page is opened once all three have.
    await waitFor('the malformed event to be set aside by its three readers', async () => ((await listed()) >= 3 ? true : undefined), 20_000, 200);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const before = await listed();
    const watched = await open('/dead-letters');
    const { page: p } = watched;
    const letters = p.locator('.letters > li');
    await expect.poll(() => letters.count(), { message: watched.console }).toBeGreaterThanOrEqual(before);
    const first = letters.first();
    expect(await first.innerText()).toMatch(/TS_EVENTS/);
    await first.getByRole('button', { name: 'Retry' }).click();
    await expect.poll(() => p.getByRole('alert').innerText(), { message: watched.console }).toMatch(/EVENT_LETTER_NOT_RETRYABLE|immutable log|cannot be retried|discard/i);
    const count = await letters.count();
    await letters.first().getByRole('button', { name: 'Discard' }).click();
    await expect.poll(() => p.getByRole('status').innerText(), { message: watched.console }).toMatch(/discarded/);
    await expect.poll(() => letters.count()).toBe(count - 1);
    expect(watched.unexpectedErrors([/status of 409/])).toEqual([]);
  });

  it('forks at an event with a JSON patch, and opens the derived flow', async () => {
    const id = await api.submit(delays('to fork', 10));
    await api.settled(id);
    const watched = await open(`/flows/${id}`);
    const { page: p } = watched;
    await expect.poll(() => nodeOf(watched, 'ship').getAttribute('data-status'), { message: watched.console }).toBe('succeeded');
    await p.getByRole('button', { name: 'Fork here' }).click();
    const form = p.getByRole('form', { name: 'Fork here' });
    // A patch that is not JSON is refused in the page, with the reason.
    await form.getByRole('textbox').fill('{"tasks": [');
    await form.getByRole('button', { name: 'Fork' }).click();
    await expect.poll(() => form.getByRole('alert').innerText()).toMatch(/the patch is not valid JSON/);
    // One the gateway refuses is answered with the gateway's problems.
    await form.getByRole('textbox').fill('{"tasks": [{"id": "ship", "executor": "nope"}]}');
    await form.getByRole('button', { name: 'Fork' }).click();
    await expect.poll(() => form.getByRole('alert').innerText()).toMatch(/INVALID|problem|executor/i);
    await form.getByRole('textbox').fill('{"tasks": [{"id": "ship", "executor": "delay", "config": {"ms": 20}}]}');
    await screenshot(p, 'fork');
    await form.getByRole('button', { name: 'Fork' }).click();
    await p.waitForURL((url) => /\/ui\/flows\/[0-9A-Z]{26}$/.test(url.pathname) && !url.pathname.endsWith(id), { timeout: 15_000 });
    const child = p.url().split('/').at(-1)!;
    const view = await api.settled(child);
    expect(view.status).toBe('succeeded');
    expect(view.lineage).toMatchObject({ kind: 'fork', parent_flow_id: id });
    expect(view.tasks.find((t: any) => t.id === 'ship').executor).toBe('delay');
    await expect.poll(() => p.getByText(`A fork of ${id}`).count(), { message: watched.console }).toBe(1);
    const parent = await api.view(id);
    expect(parent.derived?.map((d: any) => d.child_flow_id)).toContain(child);
    // Errors shown to the user above were answers, not console errors: the gateway's 400 is logged by the browser as a failed resource.
    expect(watched.unexpectedErrors([/status of 400/])).toEqual([]);
  });

  it('shows why a task waits for its queue, and the queue with its limits; a wrong policy is answered with its problems', async () => {
    const put = await fetch(`${stack.url}/api/v1/queues/ci`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ concurrency: 1 }) });
    expect(put.status, await put.text()).toBe(200);
    const id = await api.submit({ name: 'queued', queue: 'ci', tasks: [{ id: 'first', executor: 'delay', config: { ms: 4_000 } }, { id: 'second', executor: 'delay', config: { ms: 10 } }] });
    const held = await waitFor('a task held by the concurrency limit', async () => {
      const view = await api.view(id);
      return view.tasks?.find((t: any) => t.waiting_reason === 'concurrency');
    }, 15_000, 100);
    const watched = await open(`/flows/${id}`);
    const { page: p } = watched;
    await p.locator(`.task-list button[data-task="${held.id}"]`).click();
    await expect.poll(() => p.getByRole('region', { name: `Task ${held.id}` }).locator('.waiting-reason').innerText(), { message: watched.console, timeout: 10_000 }).toBe('1/1 running in queue ci');
    await watched.page.goto(`${stack.url}/ui/queues`);
    const queue = p.getByRole('region', { name: 'Queue ci' });
    await expect.poll(() => queue.innerText(), { message: watched.console }).toMatch(/Running\s*1 of 1/);
    await queue.getByText('Edit policy').click();
    await queue.getByLabel('Concurrency (tasks at once)').fill('0');
    await queue.getByRole('button', { name: 'Save policy' }).click();
    await expect.poll(() => queue.getByRole('alert').innerText(), { message: watched.console }).toMatch(/concurrency/);
    await queue.getByLabel('Concurrency (tasks at once)').fill('3');
    await queue.getByRole('button', { name: 'Save policy' }).click();
    await expect.poll(() => queue.getByRole('status').innerText()).toBe('Saved.');
    expect(((await (await fetch(`${stack.url}/api/v1/queues/ci`)).json()) as any).policy.concurrency).toBe(3);
    await screenshot(p, 'queues');
    expect(watched.unexpectedErrors([/status of 400/])).toEqual([]);
    await api.settled(id);
  });

  it("reaches the DAG's nodes with Tab alone, names each with its task and status, and opens a task with Enter or Space", async () => {
    const id = await api.submit(delays('by keyboard', 10));
    await api.settled(id);
    const watched = await open(`/flows/${id}`);
    const { page: p } = watched;
    await expect.poll(() => nodeOf(watched, 'ship').getAttribute('data-status'), { message: `the DAG ends succeeded\n${watched.console}` }).toBe('succeeded');
    // React Flow keeps a node hidden until it has measured it, and a hidden node takes no focus.
    await expect.poll(() => nodeOf(watched, 'ship').innerText(), { message: watched.console }).toContain('succeeded');
    /** The DAG node that has the focus: its task and accessible name, or nothing when the focus is elsewhere. */
    const focusedNode = () =>
      p.evaluate(() => {
        const node = (globalThis as any).document.activeElement?.closest('.react-flow__node');
        return node ? { task: node.getAttribute('data-id') as string, name: node.getAttribute('aria-label') as string } : undefined;
      });
    // From the top of the page, Tab alone: the focus reaches the DAG, on the layout's first task.
    let first: { task: string; name: string } | undefined;
    for (let presses = 0; presses < 80 && !first; presses++) {
      await p.keyboard.press('Tab');
      first = await focusedNode();
    }
    expect(first, 'Tab reaches a node of the DAG').toBeDefined();
    expect(first!.task).toBe('fetch');
    // Its name is the task's id and its status in words, as a screen reader finds it.
    expect(first!.name).toBe('Task fetch: succeeded');
    const fetchNode = p.getByRole('button', { name: 'Task fetch: succeeded' });
    expect(await fetchNode.evaluate((node) => node === (globalThis as any).document.activeElement)).toBe(true);
    // The focus is visible: a ring the page draws, not React Flow's removed outline.
    expect(await fetchNode.evaluate((node) => (globalThis as any).getComputedStyle(node).outlineStyle)).toBe('solid');
    expect(await fetchNode.evaluate((node) => (globalThis as any).getComputedStyle(node).outlineColor)).toBe('rgb(30, 58, 138)');
    // Tab goes through every node once, in the layout's order (left to right), then on out of the DAG.
    const visited = [first!.task];
    for (;;) {
      await p.keyboard.press('Tab');
      const next = await focusedNode();
      if (!next) break;
      expect(next.name).toBe(`Task ${next.task}: succeeded`);
      visited.push(next.task);
      expect(visited.length, `the nodes visited: ${visited.join(', ')}`).toBeLessThanOrEqual(5);
    }
    expect(visited.at(-1)).toBe('ship');
    expect([...visited].sort()).toEqual(['build', 'fetch', 'lint', 'ship', 'test']);
    // Back onto the last node; Enter opens its task in the panel, as a click does, and the focus stays on the node.
    await p.keyboard.press('Shift+Tab');
    expect((await focusedNode())?.task).toBe('ship');
    expect(await p.getByRole('region', { name: 'Task ship' }).count(), 'the panel shows another task before Enter').toBe(0);
    await p.keyboard.press('Enter');
    await expect.poll(() => p.getByRole('region', { name: 'Task ship' }).count(), { message: `Enter opens ship in the task panel\n${watched.console}` }).toBe(1);
    expect(await p.getByRole('button', { name: 'Task ship: succeeded' }).getAttribute('aria-pressed')).toBe('true');
    expect((await focusedNode())?.task).toBe('ship');
    // Space does the same on the node before it.
    await p.keyboard.press('Shift+Tab');
    const before = (await focusedNode())!.task;
    const scrolled = await p.evaluate('window.scrollY');
    await p.keyboard.press(' ');
    await expect.poll(() => p.getByRole('region', { name: `Task ${before}` }).count(), { message: `Space opens ${before} in the task panel\n${watched.console}` }).toBe(1);
    expect(await p.getByRole('button', { name: 'Task ship: succeeded' }).getAttribute('aria-pressed')).toBe('false');
    expect(await p.evaluate('window.scrollY'), 'Space does not scroll the page').toBe(scrolled);
    // A click goes the same way.
    await nodeOf(watched, 'fetch').click();
    await expect.poll(() => p.getByRole('region', { name: 'Task fetch' }).count(), { message: `a click opens fetch in the task panel\n${watched.console}` }).toBe(1);
    noConsoleErrors(watched);
  });

  it('fits a phone: the flow page stacks, nothing scrolls sideways, tasks are reachable by keyboard', async () => {
    const id = await api.submit(delays('on a phone', 10));
    await api.settled(id);
    page = await WatchedPage.open(browser, { width: 390, height: 844 });
    const watched = page;
    const { page: p } = watched;
    await p.addInitScript({ content: RECORD_STATUSES });
    await p.goto(`${stack.url}/ui/flows/${id}`);
    const events = await api.stored(id);
    await expect.poll(() => p.locator('label[for="event-slider"]').innerText(), { message: `the page has every event\n${watched.console}` }).toBe(`Event ${events.length} of ${events.length}`);
    // The state read as the events arrive never goes back behind the view the page opened with.
    const shown = (await p.evaluate('window.__statuses')) as Array<[string, string]>;
    const ship = shown.filter(([task]) => task === 'ship').map(([, status]) => status);
    expect(ship.slice(ship.indexOf('succeeded')), `ship was shown as ${ship.join(', ')}`).toEqual(['succeeded']);
    expect(await nodeOf(watched, 'ship').getAttribute('data-status')).toBe('succeeded');
    expect(await p.getByTestId('flow-status').innerText()).toContain('succeeded');
    expect(await p.evaluate('document.documentElement.scrollWidth <= window.innerWidth'), 'no sideways scrolling').toBe(true);
    await p.locator('.task-list button[data-task="test"]').focus();
    await p.keyboard.press('Enter');
    await expect.poll(() => p.getByRole('region', { name: 'Task test' }).count()).toBe(1);
    await screenshot(p, 'flow-phone');
    noConsoleErrors(watched);
  });
});
