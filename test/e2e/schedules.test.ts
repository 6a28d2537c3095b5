import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectNats, derivedFlowId, jetstream, ScheduleStore, topology } from '@taskstream/nats';
import { freePort, NatsServer, waitFor } from '@taskstream/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_SERVICES, Deployment, FAST_FAILOVER } from '../support/deployment.js';
import { runCli } from '../support/cli.js';
import { TestStack } from '../support/stack.js';

/*
 * Schedules through every service as its own process, with two scheduler instances: the routes
 * (ours and Tasked's), runs recorded with their schedule and scheduled time, pause and resume,
 * overlap `skip` with a slow flow, catch-up per policy after every scheduler was down, and the CLI.
 */

const GRACE_MS = 1000;
const SCHEDULERS: Array<[string, string, Record<string, string>]> = [];

const quick = { tasks: [{ id: 'tick', executor: 'noop' }] };

describe('schedules through the services', () => {
  let nats: NatsServer;
  let deployment: Deployment;
  let base: string;

  const api = async (method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> => {
    const response = await fetch(`${base}${path}`, { method, ...(body !== undefined && { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }) });
    const text = await response.text();
    return { status: response.status, body: text === '' ? undefined : JSON.parse(text) };
  };
  const create = async (body: unknown, path = '/api/v1/schedules'): Promise<any> => {
    const created = await api('POST', path, body);
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    return created.body;
  };
  /** The runs of a schedule, by scheduled time, from the flows list. */
  const runs = async (id: string): Promise<any[]> => {
    const { body } = await api('GET', `/api/v1/flows?schedule=${id}&limit=1000`);
    return (body.flows as any[]).sort((a, b) => (a.origin.schedule.scheduled_at < b.origin.schedule.scheduled_at ? -1 : 1));
  };
  const pause = async (id: string) => expect((await api('PUT', `/api/v1/schedules/${id}`, { enabled: false })).status).toBe(200);

  /** Runs the schedulers counted as submitted by themselves, summed over the instances. */
  const submittedCount = async () => {
    let total = 0;
    for (const [, , env] of SCHEDULERS) {
      const text = await (await fetch(`http://127.0.0.1:${env.TASKSTREAM_METRICS_PORT}/metrics`)).text();
      for (const m of text.matchAll(/^taskstream_scheduler_runs_submitted_total\{queue="default"\} (\d+)$/gm)) total += Number(m[1]);
    }
    return total;
  };

  beforeAll(async () => {
    for (const n of [1, 2]) SCHEDULERS.push([`scheduler-${n}`, 'scheduler', { TASKSTREAM_SCHEDULE_GRACE_MS: String(GRACE_MS), TASKSTREAM_METRICS_PORT: String(await freePort()) }]);
    nats = await NatsServer.start();
    deployment = await Deployment.start(nats.url, [...ALL_SERVICES, ...SCHEDULERS], { ...FAST_FAILOVER, TASKSTREAM_QUEUE: '*' });
    base = deployment.gatewayUrl;
  });
  afterAll(async () => {
    await deployment?.stop();
    await nats?.stop();
  });

  it('refuses a wrong schedule with every problem, each with its path and what to do', async () => {
    const wrong = await api('POST', '/api/v1/schedules', { name: 'x', cron: '* * *', timezone: 'Mars/Base', catchup: 'some', overlap: 'never', catchup_window_secs: 0, extra: 1 });
    expect(wrong.status).toBe(400);
    expect(wrong.body.error.code).toBe('INVALID_SCHEDULE');
    const byPath = Object.fromEntries(wrong.body.error.problems.map((p: any) => [p.path, p.message]));
    expect(byPath).toMatchObject({
      cron: expect.stringMatching(/^has 3 fields; write 5 fields/),
      timezone: expect.stringMatching(/^must be an IANA time zone name/),
      catchup: expect.stringMatching(/^must be "none"/),
      overlap: expect.stringMatching(/^must be "skip"/),
      catchup_window_secs: 'must be at least 1 second',
      extra: expect.stringMatching(/^unknown field/),
    });
    const noFlow = await api('POST', '/api/v1/schedules', { cron: '0 3 * * *' });
    expect(noFlow.body.error.problems).toEqual([{ path: 'flow', message: expect.stringMatching(/^is required: give "flow"/) }]);
    const badFlow = await api('POST', '/api/v1/schedules', { cron: '0 3 * * *', flow: { tasks: [{ id: 'a', executor: 'teleport' }] } });
    expect(badFlow.body.error.problems[0]).toMatchObject({ path: 'flow.tasks[0].executor' });
    const both = await api('POST', '/api/v1/schedules', { cron: '0 3 * * *', flow: quick, template: 'nightly' });
    expect(both.body.error.problems[0]).toMatchObject({ path: 'template', message: expect.stringMatching(/not both/) });
    const noTemplate = await api('POST', '/api/v1/schedules', { cron: '0 3 * * *', template: 'nightly' });
    expect(noTemplate.body.error.problems).toEqual([{ path: 'template', message: expect.stringMatching(/^no template named "nightly"/) }]);
    expect((await api('GET', '/api/v1/schedules/01JAAAAAAAAAAAAAAAAAAAAAAA')).body.error.code).toBe('SCHEDULE_NOT_FOUND');
    expect((await api('GET', '/api/v1/schedules/nope')).status).toBe(404);
    expect((await api('PUT', '/api/v1/schedules/nope', { enabled: false })).status).toBe(404);
    expect((await api('DELETE', '/api/v1/schedules/nope')).status).toBe(404);
    const huge = await api('POST', '/api/v1/schedules', { cron: '0 3 * * *', flow: { tasks: [{ id: 'a', executor: 'noop', config: { output: 'x'.repeat(300 * 1024) } }] } });
    expect(huge.body.error.problems[0]).toMatchObject({ path: 'flow', message: expect.stringMatching(/over the 256 KiB a schedule's flow may have/) });
  });

  it('starts a run per scheduled time, recorded with the schedule and the time; paused, it starts none; deleted, it is gone', async () => {
    const schedule = await create({ name: 'every second', cron: '* * * * * *', flow: quick, overlap: 'allow' });
    expect(schedule).toMatchObject({ enabled: true, timezone: 'UTC', catchup: 'latest', overlap: 'allow', last_run: null });
    expect(schedule.next_runs).toHaveLength(5);
    for (const t of schedule.next_runs) expect(t).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/);
    await waitFor('three runs', async () => ((await runs(schedule.id)).length >= 3 ? true : undefined), 20_000, 200);
    await pause(schedule.id);
    const paused = (await api('GET', `/api/v1/schedules/${schedule.id}`)).body;
    expect(paused).toMatchObject({ enabled: false, next_run_at: null, next_runs: [] });
    const seen = await runs(schedule.id);
    const times = seen.map((f) => f.origin.schedule.scheduled_at);
    expect(new Set(times).size).toBe(times.length);
    // Consecutive seconds, none missing between the first and the last.
    for (let i = 1; i < times.length; i++) expect(Date.parse(times[i]) - Date.parse(times[i - 1])).toBe(1000);
    expect(seen.every((f) => f.name === 'every second')).toBe(true);
    const view = (await api('GET', `/api/v1/flows/${seen[0].flow_id}`)).body;
    expect(view.origin).toEqual({ schedule: { id: schedule.id, scheduled_at: times[0] } });
    const submitted = (await api('GET', `/api/v1/flows/${seen[0].flow_id}/events`)).body.events[0].event;
    expect(submitted.data.origin).toEqual({ schedule: { id: schedule.id, scheduled_at: times[0] } });
    // Paused: no run after the ones already decided.
    await new Promise((r) => setTimeout(r, 2500));
    expect((await runs(schedule.id)).length).toBe(seen.length);
    // Each run was counted by the one instance whose submission was stored.
    expect(await submittedCount()).toBe(seen.length);
    expect((await api('GET', '/api/v1/schedules')).body.schedules.map((s: any) => s.id)).toContain(schedule.id);
    expect((await api('DELETE', `/api/v1/schedules/${schedule.id}`)).status).toBe(204);
    expect((await api('GET', `/api/v1/schedules/${schedule.id}`)).status).toBe(404);
  });

  it("takes Tasked's queue route as it is: the queue from the URL, the flow's tasks run on it", async () => {
    const schedule = await create({ cron: '* * * * * *', flow: { tasks: [{ id: 'a', executor: 'noop' }] }, name: 'tasked', enabled: true }, '/api/v1/queues/nightly/schedules');
    expect(schedule).toMatchObject({ queue_id: 'nightly', name: 'tasked', cron: '* * * * * *', enabled: true, last_triggered_at: null, overlap: 'allow' });
    expect(schedule.next_run_at).toMatch(/Z$/);
    const listed = (await api('GET', '/api/v1/queues/nightly/schedules')).body;
    expect(Array.isArray(listed) && listed.map((s: any) => s.id)).toEqual([schedule.id]);
    expect((await api('GET', '/api/v1/queues/other/schedules')).body).toEqual([]);
    const run = await waitFor('a run', async () => (await runs(schedule.id))[0], 20_000, 200);
    await pause(schedule.id);
    const view = await waitFor('the run to end', async () => {
      const v = (await api('GET', `/api/v1/flows/${run.flow_id}`)).body;
      return v.status === 'succeeded' ? v : undefined;
    }, 20_000, 200);
    expect(view.queue).toBe('nightly');
    expect((await api('GET', `/api/v1/schedules/${schedule.id}`)).body.last_triggered_at).toEqual(expect.any(String));
    const nulls = await create({ cron: '0 0 1 1 *', flow: quick, name: null, enabled: null }, '/api/v1/queues/nightly/schedules');
    expect(nulls).toMatchObject({ enabled: true, queue_id: 'nightly' });
    expect(nulls.name).toBeUndefined();
    expect((await api('DELETE', `/api/v1/schedules/${nulls.id}`)).status).toBe(204);
    const invalid = await api('POST', '/api/v1/queues/nightly/schedules', { cron: 'every day', flow: quick });
    expect(invalid.body.error.problems).toEqual([{ path: 'cron', message: expect.stringMatching(/^has 2 fields/) }]);
  });

  it('runs a template with its params, the version pinned when saved; params are checked as for a template run; a schedule whose template is gone can still be paused', async () => {
    const template = { params_schema: { type: 'object', properties: { env: { type: 'string', enum: ['dev', 'prod'] } }, required: ['env'], additionalProperties: false }, flow: { name: 'deploy', tasks: [{ id: 'say', executor: 'noop', config: { output: { env: '${params.env}' } } }] } };
    expect((await api('PUT', '/api/v1/templates/scheduled-deploy', template)).status).toBeLessThan(300);
    const wrong = await api('POST', '/api/v1/schedules', { cron: '* * * * * *', template: 'scheduled-deploy', params: { env: 'moon' } });
    expect(wrong.status).toBe(400);
    expect(wrong.body.error.problems[0].path).toBe('params.env');
    const inlineParams = await api('POST', '/api/v1/schedules', { cron: '* * * * * *', flow: quick, params: { env: 'dev' } });
    expect(inlineParams.body.error.problems).toEqual([{ path: 'params', message: expect.stringMatching(/template's params/) }]);
    const schedule = await create({ cron: '* * * * * *', template: 'scheduled-deploy', params: { env: 'prod' }, overlap: 'allow' });
    expect(schedule.template).toEqual({ name: 'scheduled-deploy', version: 1 });
    const run = await waitFor('a run', async () => (await runs(schedule.id))[0], 20_000, 200);
    await pause(schedule.id);
    const view = await waitFor('the run to end', async () => {
      const v = (await api('GET', `/api/v1/flows/${run.flow_id}`)).body;
      return v.status === 'succeeded' ? v : undefined;
    }, 20_000, 200);
    expect(view.origin).toEqual({ template: { name: 'scheduled-deploy', version: 1 }, schedule: { id: schedule.id, scheduled_at: run.origin.schedule.scheduled_at } });
    expect(view.tasks[0].output).toEqual({ env: 'prod' });
    expect((await api('DELETE', '/api/v1/templates/scheduled-deploy')).status).toBe(204);
    expect((await api('PUT', `/api/v1/schedules/${schedule.id}`, { enabled: true })).status).toBe(200);
    expect((await api('PUT', `/api/v1/schedules/${schedule.id}`, { enabled: false })).status).toBe(200);
    const repoint = await api('PUT', `/api/v1/schedules/${schedule.id}`, { params: { env: 'dev' } });
    expect(repoint.body.error.problems).toEqual([{ path: 'template', message: expect.stringMatching(/^template "scheduled-deploy" has no version 1/) }]);
  });

  it.each([
    ['skip', 'the next run is a time due after the previous one ended'],
    ['buffer_one', 'the next run is the time that waited while the previous one ran'],
  ] as const)('overlap %s: no run starts while the previous one goes on; %s', async (overlap, _outcome) => {
    const slow = { tasks: [{ id: 'slow', executor: 'delay', config: { ms: 2500 } }] };
    const schedule = await create({ cron: '* * * * * *', flow: slow, overlap });
    await waitFor('three runs', async () => ((await runs(schedule.id)).length >= 3 ? true : undefined), 30_000, 250);
    await pause(schedule.id);
    const seen = await runs(schedule.id);
    const events = async (id: string) => (await api('GET', `/api/v1/flows/${id}/events`)).body.events as any[];
    for (let i = 1; i < seen.length; i++) {
      const previous = await events(seen[i - 1].flow_id);
      const ended = previous.find((e) => e.event.type === 'flow.succeeded');
      const submitted = (await events(seen[i].flow_id))[0];
      expect(ended, 'the previous run ended before the next started').toBeDefined();
      expect(submitted.seq).toBeGreaterThan(ended.seq);
      // Runs last 2.5 s and times come every second: a buffered time is from well before the end.
      const lead = Date.parse(ended.event.time) - Date.parse(seen[i].origin.schedule.scheduled_at);
      if (overlap === 'buffer_one') expect(lead).toBeGreaterThan(1000);
      else expect(lead).toBeLessThan(1000);
    }
    expect((await api('GET', `/api/v1/schedules/${schedule.id}`)).body.skipped).toBeGreaterThan(0);
  });

  it('catches up after every scheduler was down, by policy: none drops, latest runs the latest, all runs each', async () => {
    await Promise.all(SCHEDULERS.map(([name]) => deployment.kill(name)));
    // Three times, a second apart, all while no scheduler runs.
    const first = Math.ceil((Date.now() + 2000) / 1000) * 1000;
    const times = [first, first + 1000, first + 2000];
    const cron = `${times.map((t) => new Date(t).getUTCSeconds()).join(',')} * * * * *`;
    const made = await Promise.all((['none', 'latest', 'all'] as const).map((catchup) => create({ name: `catch-up ${catchup}`, cron, flow: quick, catchup, overlap: 'allow' })));
    const [none, latest, all] = made.map((s) => s.id as string);
    // Missed by more than the grace, then the schedulers come back.
    await new Promise((r) => setTimeout(r, times[2]! + GRACE_MS + 1500 - Date.now()));
    for (const [name] of SCHEDULERS) await deployment.restart(name);
    const iso = (t: number) => new Date(t).toISOString();
    await waitFor('every catch-up decided', async () => {
      const views = await Promise.all(made.map(async (s) => (await api('GET', `/api/v1/schedules/${s.id}`)).body));
      return views.every((v) => v.last_run !== null || v.skipped === 3) ? true : undefined;
    }, 30_000, 250);
    await waitFor('the runs listed', async () => ((await runs(all!)).length === 3 && (await runs(latest!)).length === 1 ? true : undefined), 20_000, 250);
    expect((await runs(all!)).map((f) => f.origin.schedule.scheduled_at)).toEqual(times.map(iso));
    expect((await runs(latest!)).map((f) => f.origin.schedule.scheduled_at)).toEqual([iso(times[2]!)]);
    expect(await runs(none!)).toEqual([]);
    expect((await api('GET', `/api/v1/schedules/${none}`)).body).toMatchObject({ skipped: 3, last_run: null });
    expect((await api('GET', `/api/v1/schedules/${latest}`)).body).toMatchObject({ skipped: 2, last_triggered_at: iso(times[2]!) });
    for (const id of [none, latest, all]) await pause(id!);
  });

  it('a run decided by an instance that died before submitting it is submitted by the next instance that looks', async () => {
    const schedule = await create({ name: 'orphaned decision', cron: '0 0 1 1 *', flow: quick, enabled: false });
    // The progress a scheduler stores just before it dies: a run decided, never submitted.
    const at = '2026-01-01T00:00:00.000Z';
    const flowId = derivedFlowId(`schedule:${schedule.id}:${at}`, Date.parse(at));
    const nc = await connectNats({ servers: nats.url, name: 'schedules-test' });
    try {
      const store = await ScheduleStore.open(jetstream(nc), topology());
      const run = { scheduled_at: at, flow_id: flowId };
      expect(await store.writeProgress(schedule.id, { through: at, started: [run], last_run: run, skipped: 0, updated_at: at }, 0)).toBe(true);
    } finally {
      await nc.close();
    }
    expect((await api('GET', `/api/v1/flows/${flowId}`)).status).toBe(404);
    // Any change makes every instance look at the schedule again; paused, it decides nothing new.
    expect((await api('PUT', `/api/v1/schedules/${schedule.id}`, { name: 'orphaned decision, seen' })).status).toBe(200);
    const view = await waitFor('the run to be submitted and end', async () => {
      const v = await api('GET', `/api/v1/flows/${flowId}`);
      return v.status === 200 && v.body.status === 'succeeded' ? v.body : undefined;
    }, 20_000, 200);
    expect(view.origin).toEqual({ schedule: { id: schedule.id, scheduled_at: at } });
    expect((await api('GET', `/api/v1/flows/${flowId}/events`)).body.events.filter((e: any) => e.event.type === 'flow.submitted')).toHaveLength(1);
  });

  it('a run removed by flow retention is neither submitted again nor waited for by overlap', async () => {
    const schedule = await create({ name: 'after retention', cron: '* * * * * *', overlap: 'skip', flow: quick, enabled: false });
    // The progress once the last run ended and flow retention removed it: the decision is recorded as
    // submitted, and the log no longer holds the run.
    const at = new Date(Date.now() - 3_600_000).toISOString();
    const removed = derivedFlowId(`schedule:${schedule.id}:${at}`, Date.parse(at));
    const nc = await connectNats({ servers: nats.url, name: 'schedules-retention-test' });
    try {
      const store = await ScheduleStore.open(jetstream(nc), topology());
      const run = { scheduled_at: at, flow_id: removed };
      expect(await store.writeProgress(schedule.id, { through: at, started: [run], last_run: run, submitted: true, skipped: 0, updated_at: at }, 0)).toBe(true);
      expect((await api('PUT', `/api/v1/schedules/${schedule.id}`, { enabled: true })).status).toBe(200);
      // Overlap `skip` asks whether the last run goes on: it ended (it is gone), so the next times run.
      const started = await waitFor('a run after the removed one', async () => ((await runs(schedule.id)).length > 0 ? await runs(schedule.id) : undefined), 20_000, 200);
      await pause(schedule.id);
      expect(started.every((r) => r.flow_id !== removed)).toBe(true);
      expect((await api('GET', `/api/v1/flows/${removed}`)).status).toBe(404);
      // The new decision's runs are recorded as submitted by the look after it.
      await waitFor('the decision to be recorded as submitted', async () => ((await store.progress(schedule.id)).progress?.submitted === true && (await store.progress(schedule.id)).progress?.last_run?.flow_id !== removed ? true : undefined), 10_000, 100);
    } finally {
      await nc.close();
    }
  });

  it('taskstream schedule add, list, show (the next five fire times), pause, resume and delete, through the gateway', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'schedule-cli-'));
    const file = join(dir, 'nightly.json');
    writeFileSync(file, JSON.stringify(quick));
    const cli = (args: string[]) => runCli([...args, '--server', base]);
    const added = await cli(['schedule', 'add', file, '--cron', '30 2 * * *', '--timezone', 'America/New_York', '--name', 'nightly', '--catchup', 'none']);
    expect(added, added.stderr).toMatchObject({ code: 0 });
    const id = /^Schedule (\S+)/.exec(added.stdout)![1]!;
    expect(added.stdout).toContain('30 2 * * * (America/New_York)');
    const shown = await cli(['schedule', 'show', id]);
    const next = shown.stdout.split('\n').filter((l) => /^\s{4}\d{4}-/.test(l)).map((l) => l.trim());
    expect(next).toHaveLength(5);
    for (const t of next) expect(t).toMatch(/^\d{4}-\d\d-\d\dT0[23]:\d\d:00-0[45]:00$/);
    expect((await cli(['schedule', 'list'])).stdout).toContain(`${id}  enabled`);
    expect((await cli(['schedule', 'pause', id])).stdout).toContain(`schedule ${id} paused`);
    expect((await cli(['schedule', 'show', id])).stdout).toContain('status      paused');
    expect((await cli(['schedule', 'resume', id])).stdout).toMatch(new RegExp(`schedule ${id} resumed; next run \\d{4}-`));
    const wrong = await cli(['schedule', 'add', file, '--cron', '99 * * * *']);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/cron: is not a valid cron expression/);
    const template = { params_schema: { type: 'object', properties: { replicas: { type: 'integer' } }, required: ['replicas'] }, flow: { tasks: [{ id: 'scale', executor: 'noop', config: { output: '${params.replicas}' } }] } };
    expect((await api('PUT', '/api/v1/templates/cli-scale', template)).status).toBeLessThan(300);
    const fromTemplate = await cli(['schedule', 'add', '--template', 'cli-scale', '--param', 'replicas=3', '--cron', '0 4 * * *', '--paused']);
    expect(fromTemplate, fromTemplate.stderr).toMatchObject({ code: 0 });
    expect(fromTemplate.stdout).toContain('runs        template cli-scale v1');
    expect(fromTemplate.stdout).toContain('status      paused');
    const templated = /^Schedule (\S+)/.exec(fromTemplate.stdout)![1]!;
    expect((await api('GET', `/api/v1/schedules/${templated}`)).body.params).toEqual({ replicas: 3 });
    const badParam = await cli(['schedule', 'add', '--template', 'cli-scale', '--param', 'replicas=many', '--cron', '0 4 * * *']);
    expect(badParam.code).toBe(2);
    expect(badParam.stderr).toContain('params.replicas');
    expect((await cli(['schedule', 'delete', id])).stdout).toContain(`schedule ${id} deleted`);
    const gone = await cli(['schedule', 'show', id]);
    expect(gone.code).toBe(2);
    expect(gone.stderr).toContain(`no schedule with id "${id}"`);
  });
});

describe('schedules in the embedded stack', () => {
  it('taskstream up runs a scheduler: a schedule made through its gateway starts its runs', async () => {
    const stack = await TestStack.start();
    try {
      const created = await stack.inject({ method: 'POST', url: '/api/v1/schedules', payload: JSON.stringify({ cron: '* * * * * *', flow: quick, overlap: 'allow' }), headers: { 'content-type': 'application/json' } });
      expect(created.statusCode, created.body).toBe(201);
      const id = created.json().id as string;
      const run = await waitFor('a run', async () => (await stack.inject({ method: 'GET', url: `/api/v1/flows?schedule=${id}` })).json().flows[0], 20_000, 200);
      expect((await stack.inject({ method: 'PUT', url: `/api/v1/schedules/${id}`, payload: '{"enabled": false}', headers: { 'content-type': 'application/json' } })).statusCode).toBe(200);
      expect((await stack.settled(run.flow_id)).status).toBe('succeeded');
    } finally {
      await stack.stop();
    }
  });
});
