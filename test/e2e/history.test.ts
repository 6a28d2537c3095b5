import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { evolve, toFlowView, type FlowState } from '@taskstream/domain';
import { startProjector } from '@taskstream/projector';
import { createContext } from '@taskstream/runtime';
import { silentLogger } from '@taskstream/nats';
import { waitFor } from '@taskstream/testing';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestStack, timeline } from '../support/stack.js';

function foldEvents(events: any[], upTo = Number.MAX_SAFE_INTEGER): FlowState | null {
  let state: FlowState | null = null;
  for (const e of events) if (e.seq <= upTo) state = evolve(state, e.event, e.seq);
  return state;
}

describe('history: views, replay, rerun, fork, feeds', () => {
  let stack: TestStack;
  const dir = mkdtempSync(join(tmpdir(), 'taskstream-history-'));
  const ids: string[] = [];

  beforeAll(async () => {
    stack = await TestStack.start({ logLevel: process.env.DEBUG_STACK ?? 'silent' });
    const marker = join(dir, 'fixed');
    ids.push(
      await stack.submit({ name: 'green', labels: { team: 'a' }, tasks: [{ id: 'a', executor: 'noop' }, { id: 'b', executor: 'noop', depends_on: ['a'] }] }),
      await stack.submit({
        name: 'red',
        labels: { team: 'b' },
        tasks: [
          { id: 'a', executor: 'shell', config: { command: 'echo a-output' } },
          { id: 'b', executor: 'shell', config: { command: `test -e ${marker}` }, depends_on: ['a'], retries: 0 },
          { id: 'c', executor: 'noop', depends_on: ['b'] },
          { id: 'd', executor: 'noop' },
        ],
      }),
      await stack.submit({ name: 'flaky', tasks: [{ id: 'x', executor: 'shell', config: { command: '[ "$TASKSTREAM_ATTEMPT" -ge 2 ]' }, retries: 2, backoff: 'fixed' }] }),
    );
    for (const id of ids) await stack.settled(id);
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('keeps views equal to the fold of the log, and a rebuild from empty equals them', async () => {
    const before = new Map<string, any>();
    for (const id of ids) {
      const view = await stack.view(id);
      const events = await stack.events(id);
      expect(view).toEqual(toFlowView(foldEvents(events)!));
      before.set(id, view);
    }
    const statsBefore = (await stack.inject({ method: 'GET', url: '/api/v1/queues/default/stats' })).json();

    await stack.stack.services.get('projector')!.stop();
    const ctx = await createContext({ natsUrl: stack.nats.url, name: 'rebuild', log: silentLogger });
    const rebuilt = await startProjector(ctx, { rebuild: true });
    try {
      for (const id of ids) {
        expect(await stack.view(id)).toEqual(before.get(id));
      }
      await waitFor('queue stats rebuilt', async () => {
        const stats = (await stack.inject({ method: 'GET', url: '/api/v1/queues/default/stats' })).json();
        return stats.last_seq === statsBefore.last_seq ? stats : undefined;
      });
      expect((await stack.inject({ method: 'GET', url: '/api/v1/queues/default/stats' })).json()).toEqual(statsBefore);
    } finally {
      await rebuilt.stop();
      await ctx.nc.close();
    }
    const restarted = await startProjector(await createContext({ natsUrl: stack.nats.url, name: 'projector-again', log: silentLogger }));
    stack.stack.services.set('projector', restarted);
  });

  it('replays a flow to any sequence: state?at= equals folding the prefix', async () => {
    const id = ids[1]!;
    const events = await stack.events(id);
    for (const { seq } of events) {
      const response = await stack.inject({ method: 'GET', url: `/api/v1/flows/${id}/state?at=${seq}` });
      expect(response.statusCode).toBe(200);
      expect(response.json().state).toEqual(toFlowView(foldEvents(events, seq)!));
    }
    expect((await stack.inject({ method: 'GET', url: `/api/v1/flows/${id}/state` })).statusCode).toBe(400);
    expect((await stack.inject({ method: 'GET', url: `/api/v1/flows/${id}/state?at=1` })).json().error.message).toMatch(/submitted later than sequence 1|first event/);
  });

  it('reruns a failed flow: only the failed task and its descendants run again', async () => {
    const parent = ids[1]!;
    writeFileSync(join(dir, 'fixed'), '');
    expect(existsSync(join(dir, 'fixed'))).toBe(true);
    const response = await stack.inject({ method: 'POST', url: `/api/v1/flows/${parent}/rerun` });
    expect(response.statusCode).toBe(202);
    const child = response.json().flow_id;
    const view = await stack.settled(child);
    expect(view.status).toBe('succeeded');
    expect(view.lineage).toMatchObject({ kind: 'rerun', parent_flow_id: parent });
    const byId = Object.fromEntries(view.tasks.map((t: any) => [t.id, t]));
    expect(byId.a).toMatchObject({ status: 'succeeded', reused: true, output: { exit_code: 0, stdout: 'a-output\n' } });
    expect(byId.d).toMatchObject({ status: 'succeeded', reused: true });
    const started = timeline(await stack.events(child)).filter((t) => t.startsWith('task.started'));
    expect(started.sort()).toEqual(['task.started:b', 'task.started:c']);
    const parentEvents = await stack.events(parent);
    expect(parentEvents.at(-1).event).toMatchObject({ type: 'flow.derived', data: { kind: 'rerun', child_flow_id: child } });
    expect((await stack.view(parent)).derived).toEqual([expect.objectContaining({ child_flow_id: child })]);

    const still = await stack.submit({ tasks: [{ id: 'slow', executor: 'delay', config: { ms: 5000 } }] });
    expect((await stack.inject({ method: 'POST', url: `/api/v1/flows/${still}/rerun` })).statusCode).toBe(409);
    await stack.inject({ method: 'POST', url: `/api/v1/flows/${still}/cancel` });
    expect((await stack.inject({ method: 'POST', url: `/api/v1/flows/${parent}/rerun`, payload: '{"from":"nope"}', headers: { 'content-type': 'application/json' } })).statusCode).toBe(400);
  });

  it('forks at a sequence from that state, with a patch that runs the patched task again', async () => {
    const parent = ids[0]!;
    const events = await stack.events(parent);
    const aDone = events.find((e: any) => e.event.type === 'task.succeeded' && e.event.task_id === 'a').seq;
    const fork = await stack.inject({ method: 'POST', url: `/api/v1/flows/${parent}/fork`, payload: JSON.stringify({ at: aDone }), headers: { 'content-type': 'application/json' } });
    expect(fork.statusCode).toBe(202);
    const view = await stack.settled(fork.json().flow_id);
    expect(view.tasks.map((t: any) => [t.id, t.status, t.reused ?? false])).toEqual([
      ['a', 'succeeded', true],
      ['b', 'succeeded', false],
    ]);
    expect(view.lineage).toEqual({ kind: 'fork', parent_flow_id: parent, at_seq: aDone });

    const last = events.at(-1).seq;
    const patched = await stack.inject({
      method: 'POST',
      url: `/api/v1/flows/${parent}/fork`,
      payload: JSON.stringify({ at: last, patch: { tasks: [{ id: 'a', config: { output: 'patched' } }] } }),
      headers: { 'content-type': 'application/json' },
    });
    const patchedView = await stack.settled(patched.json().flow_id);
    expect(patchedView.tasks.map((t: any) => [t.id, t.reused ?? false])).toEqual([
      ['a', false],
      ['b', false],
    ]);
    expect(patchedView.tasks[0].output).toBe('patched');
    const bad = await stack.inject({ method: 'POST', url: `/api/v1/flows/${parent}/fork`, payload: JSON.stringify({ at: last, patch: { tasks: [{ id: 'a', executor: 'nope' }] } }), headers: { 'content-type': 'application/json' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.problems[0].message).toMatch(/unknown executor "nope"/);
  });

  it('lists flows with filters, and pages through every flow once while new ones arrive', async () => {
    const list = async (query: string) => (await stack.inject({ method: 'GET', url: `/api/v1/flows?${query}` })).json();
    await waitFor('summaries', async () => ((await list('status=failed')).flows.some((f: any) => f.flow_id === ids[1]) ? true : undefined));
    const teamB = (await list('label=team:b')).flows;
    expect(teamB.map((f: any) => f.flow_id)).toContain(ids[1]);
    expect(teamB.every((f: any) => f.labels.team === 'b')).toBe(true);
    expect(teamB.map((f: any) => f.flow_id)).not.toContain(ids[0]);
    expect((await list('name=gre')).flows.map((f: any) => f.flow_id)).toContain(ids[0]);
    expect((await stack.inject({ method: 'GET', url: '/api/v1/flows?status=bogus' })).statusCode).toBe(400);

    const existing: string[] = [];
    for (let i = 0; i < 20; i++) existing.push(await stack.submit({ name: `page-${i}`, tasks: [{ id: 'n', executor: 'noop' }] }));
    await waitFor('all listed', async () => ((await list('limit=1000&name=page-')).flows.length === 20 ? true : undefined));
    const seen: string[] = [];
    let cursor: string | undefined;
    let arrivals = 0;
    do {
      const page = await list(`limit=6&name=page-${cursor ? `&cursor=${cursor}` : ''}`);
      seen.push(...page.flows.map((f: any) => f.flow_id));
      cursor = page.next_cursor;
      if (arrivals < 3) {
        arrivals++;
        await stack.submit({ name: `page-new-${arrivals}`, tasks: [{ id: 'n', executor: 'noop' }] });
      }
    } while (cursor);
    const old = seen.filter((id) => existing.includes(id));
    expect(new Set(seen).size).toBe(seen.length);
    expect(old.sort()).toEqual([...existing].sort());
  });

  it('streams every event once across a reconnect, and cuts off a client that falls behind', async () => {
    const collected: any[] = [];
    const first = new WebSocket(`${stack.url.replace('http', 'ws')}/api/v1/feed?type=task.succeeded,flow.succeeded`);
    await new Promise<void>((resolve) => first.on('open', () => resolve()));
    let firstOpen = true;
    first.on('message', (d) => {
      // A client resumes from the last event it processed; anything arriving while it closes is not processed.
      if (firstOpen) collected.push(JSON.parse(d.toString()));
    });
    const id = await stack.submit({ tasks: Array.from({ length: 6 }, (_, i) => ({ id: `s${i}`, executor: 'delay', config: { ms: 100 * i } })) });
    await waitFor('some events', () => (collected.some((m) => m.event.flow_id === id) ? true : undefined));
    firstOpen = false;
    first.close();
    const lastSeq = collected.at(-1).seq;
    const rest: any[] = [];
    const second = new WebSocket(`${stack.url.replace('http', 'ws')}/api/v1/feed?type=task.succeeded,flow.succeeded&after=${lastSeq}`);
    second.on('message', (d) => rest.push(JSON.parse(d.toString())));
    await waitFor('the flow to end on the feed', () => (rest.some((m) => m.event.type === 'flow.succeeded' && m.event.flow_id === id) ? true : undefined));
    second.close();
    const mine = [...collected, ...rest].filter((m) => m.event.flow_id === id);
    const expected = (await stack.events(id)).filter((e: any) => ['task.succeeded', 'flow.succeeded'].includes(e.event.type));
    expect(mine.map((m) => m.seq)).toEqual(expected.map((e: any) => e.seq));

    // A client that stops reading gets a resync and is closed; a reading client gets everything.
    const slow = new WebSocket(`${stack.url.replace('http', 'ws')}/api/v1/feed`);
    const fast = new WebSocket(`${stack.url.replace('http', 'ws')}/api/v1/feed`);
    await Promise.all([slow, fast].map((s) => new Promise<void>((r) => s.on('open', () => r()))));
    (slow as any)._socket.pause();
    const fastSeen: any[] = [];
    fast.on('message', (d) => fastSeen.push(JSON.parse(d.toString())));
    let slowClosed = 0;
    slow.on('close', (code) => (slowClosed = code));
    const big = await stack.submit({ tasks: Array.from({ length: 150 }, (_, i) => ({ id: `big${i}`, executor: 'shell', config: { command: "head -c 60000 /dev/zero | tr '\\0' x" } })) });
    await stack.settled(big, 60_000);
    await waitFor('the fast client to see the end', () => (fastSeen.some((m) => m.event?.type === 'flow.succeeded' && m.event.flow_id === big) ? true : undefined), 30_000);
    (slow as any)._socket.resume();
    await waitFor('the slow client to be cut off', () => (slowClosed ? true : undefined), 30_000);
    expect(slowClosed).toBe(4008);
    fast.close();
    const bigEvents = await stack.events(big);
    expect(fastSeen.filter((m) => m.event?.flow_id === big).map((m) => m.seq)).toEqual(bigEvents.map((e: any) => e.seq));
    // The view keeps a summary of each large output; the history keeps it whole.
    const bigView = await stack.view(big);
    expect(bigView.tasks[0].output).toMatchObject({ truncated: true, see: 'events' });
    const full = bigEvents.find((e: any) => e.event.type === 'task.succeeded').event.data.output;
    expect(full.stdout).toHaveLength(60000);
  });

  it('exports history as NDJSON, draws the graph, and keeps queue statistics', async () => {
    const ndjson = await stack.inject({ method: 'GET', url: `/api/v1/flows/${ids[0]}/events?format=ndjson` });
    expect(ndjson.headers['content-type']).toMatch(/application\/x-ndjson/);
    const lines = ndjson.body.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines[0].event.type).toBe('flow.submitted');

    const since = new Date(Date.now() - 3_600_000).toISOString();
    const all = await stack.inject({ method: 'GET', url: `/api/v1/events?since=${since}` });
    const exported = all.body.trim().split('\n').map((l) => JSON.parse(l));
    expect(exported.map((e: any) => e.seq)).toEqual([...exported.map((e: any) => e.seq)].sort((a: number, b: number) => a - b));
    expect(exported.some((e: any) => e.event.flow_id === ids[1])).toBe(true);
    expect((await stack.inject({ method: 'GET', url: '/api/v1/events?since=yesterday' })).statusCode).toBe(400);

    const dot = (await stack.inject({ method: 'GET', url: `/api/v1/flows/${ids[1]}/graph?format=dot` })).body;
    expect(dot).toContain('"a" -> "b";');
    expect(dot).toContain(`"b" [fillcolor="#f4a3a3", label="b\\nfailed"];`);
    const mermaid = (await stack.inject({ method: 'GET', url: `/api/v1/flows/${ids[1]}/graph?format=mermaid` })).body;
    expect(mermaid).toMatch(/^flowchart LR/);
    expect(mermaid).toContain('t0 --> t1');
    expect(mermaid).toContain('t2["c<br/>upstream_failed"]:::upstream_failed');

    const stats = (await stack.inject({ method: 'GET', url: '/api/v1/queues/default/stats' })).json();
    expect(stats).toMatchObject({ queue: 'default', waiting: 0 });
    const totals = Object.values(stats.minutes as Record<string, { succeeded: number; failed: number }>).reduce((t, m) => ({ s: t.s + m.succeeded, f: t.f + m.failed }), { s: 0, f: 0 });
    expect(totals.f).toBeGreaterThanOrEqual(1);
    expect(totals.s).toBeGreaterThanOrEqual(5);
  });
});
