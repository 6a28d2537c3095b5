import { createHmac, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { eventSubject } from '@taskstream/domain';
import { connectNats, FlowRetention, generateApiKey, SUMMARY_MARKER_MS, jetstream, jetstreamManager, Kvm, topology, type NatsConnection } from '@taskstream/nats';
import { ConfiguredNats, waitFor } from '@taskstream/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Deployment } from '../support/deployment.js';
import { recordingEndpoint, ROOT, ServiceProcess } from '../support/stack.js';
import { runCli } from '../support/cli.js';

/**
 * The deployment's NATS permissions (deploy/nats/permissions.conf) on a real nats-server: the stack
 * provisioned by the provisioner and run with one NATS user per service does its whole job without
 * one refusal, and a service's user is refused what is not its own.
 */

const USERS = ['provisioner', 'gateway', 'planner', 'dispatcher', 'executor', 'projector', 'scheduler'] as const;
type User = (typeof USERS)[number];
// nats-server's configuration parser reads a bare value that starts with a digit or '-' as a number
// (or refuses it): a password starts with a letter and holds only letters and digits.
const PASSWORDS = Object.fromEntries(USERS.map((user) => [user, `p${randomBytes(18).toString('hex')}`])) as Record<User, string>;
const SERVER_ENV = Object.fromEntries(USERS.map((user) => [`TASKSTREAM_${user.toUpperCase()}_PASSWORD`, PASSWORDS[user]]));
const ADMIN = generateApiKey().key;
const topo = topology();

const as = (user: User) => ({ TASKSTREAM_NATS_USER: user, TASKSTREAM_NATS_PASSWORD: PASSWORDS[user] });
const startNats = () => ConfiguredNats.start({ include: [join(ROOT, 'deploy', 'nats', 'permissions.conf')], env: SERVER_ENV });
const violations = (output: string) => output.split('\n').filter((line) => /violation/i.test(line));

const cli = (args: string[], env: Record<string, string>) => runCli(args, { env });

/** Starts `service` as `user` and waits for it to give up; returns what it logged. */
async function failedStart(url: string, service: string, user: User, env: Record<string, string>): Promise<string> {
  const started = ServiceProcess.start(service, { TASKSTREAM_NATS_URL: url, ...as(user), ...env });
  try {
    await waitFor(`${service} to exit`, () => (started.exited ? true : undefined), 30_000);
  } finally {
    await started.stop('SIGKILL');
  }
  expect(started.child.exitCode, started.logs()).toBe(1);
  return started.logs();
}

describe('NATS permissions: one user per service, streams made by the provisioner', () => {
  it('keeps a service from starting on an unprovisioned server, saying what is missing and how to provision', async () => {
    const nats = await startNats();
    try {
      const checking = await failedStart(nats.url, 'planner', 'planner', { TASKSTREAM_PROVISION: 'false' });
      expect(checking).toContain('NATS has no stream TS_EVENTS, stream TS_WORK, stream TS_TIMERS, stream TS_SIGNALS, stream TS_DLQ, key-value bucket ts_flows');
      expect(checking).toContain('object store ts_definitions');
      expect(checking).toContain('taskstream provision --nats <url>');

      // Left to provision (the default), a service's user is refused the stream's creation.
      const provisioning = await failedStart(nats.url, 'planner', 'planner', {});
      expect(provisioning).toMatch(/Permissions Violation for Publish to \\?"\$JS\.API\.STREAM\.CREATE\.TS_EVENTS\\?"/);
      expect(provisioning).toContain('this NATS user may not create or update streams and buckets');
      expect(provisioning).toContain('TASKSTREAM_PROVISION=false');

      const wrong = await failedStart(nats.url, 'planner', 'planner', { TASKSTREAM_NATS_PASSWORD: 'not-the-password' });
      expect(wrong).toContain('NATS refused the user \\"planner\\"');
    } finally {
      await nats.stop();
    }
  });

  describe('a provisioned server', () => {
    let nats: ConfiguredNats;
    let deployment: Deployment | undefined;
    let endpoint: Awaited<ReturnType<typeof recordingEndpoint>>;
    const connections: NatsConnection[] = [];
    const connectAs = async (user: User) => {
      const nc = await connectNats({ servers: nats.url, name: `permissions-test-${user}`, user, pass: PASSWORDS[user] });
      connections.push(nc);
      return nc;
    };
    const api = async (method: string, path: string, body?: unknown) => {
      const response = await fetch(`${deployment!.gatewayUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${ADMIN}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
        ...(body !== undefined && { body: JSON.stringify(body) }),
      });
      const text = await response.text();
      return { status: response.status, body: text === '' ? undefined : (JSON.parse(text) as any) };
    };
    const settled = (flowId: string, status: string) =>
      waitFor(`flow ${flowId} to end`, async () => {
        const view = (await api('GET', `/api/v1/flows/${flowId}`)).body;
        return ['succeeded', 'failed', 'cancelled'].includes(view?.status) ? view : undefined;
      }, 60_000, 100).then((view) => {
        expect(view.status, `${JSON.stringify(view.tasks?.map((t: any) => [t.id, t.status, t.error]))}\n${deployment!.logs()}`).toBe(status);
        return view;
      });

    beforeAll(async () => {
      nats = await startNats();
      // The hook fails once, so its task retries.
      endpoint = await recordingEndpoint((_req, n) => (n === 1 ? 503 : 200));
    });
    afterAll(async () => {
      await Promise.all(connections.map((nc) => nc.close().catch(() => undefined)));
      await deployment?.stop();
      await endpoint?.close();
      await nats?.stop();
    });

    it('is provisioned by the provisioner, then runs flows with every service as its own user and nothing refused', async () => {
      const provisioned = await cli(['provision', '--nats', nats.url], as('provisioner'));
      expect(provisioned, provisioned.stderr).toMatchObject({ code: 0 });
      expect(provisioned.stdout).toContain('streams: TS_EVENTS, TS_WORK, TS_TIMERS, TS_SIGNALS, TS_DLQ');
      expect(provisioned.stdout).toContain('object stores: ts_definitions, ts_artifacts');

      const services: Array<[string, string, Record<string, string>]> = [
        ['gateway', 'gateway', { ...as('gateway'), TASKSTREAM_AUTH: 'keys', TASKSTREAM_BOOTSTRAP_ADMIN_KEY: ADMIN }],
        ['planner', 'planner', as('planner')],
        ['dispatcher', 'dispatcher', as('dispatcher')],
        ['executor', 'executor', { ...as('executor'), TASKSTREAM_ALLOW_SHELL: 'true' }],
        ['projector', 'projector', as('projector')],
        ['scheduler', 'scheduler', as('scheduler')],
      ];
      deployment = await Deployment.start(nats.url, services, { TASKSTREAM_PROVISION: 'false' });

      // A queue with limits (the dispatcher's compare-and-set bucket, throttled tasks), a secret the executor reads.
      expect((await api('PUT', '/api/v1/queues/default', { concurrency: 1 })).status).toBe(200);
      expect((await api('PUT', '/api/v1/secrets/hook_token', { value: 'let-me-in' })).status).toBe(200);

      // Over 256 KiB, so its definition goes to the object store; a deadline, so the planner sets a timer.
      const big = 'x'.repeat(100 * 1024);
      const flow = {
        name: 'permitted',
        timeout_secs: 300,
        // Delivered by the executor's user, which folds the flow from the object store to build the body.
        webhooks: { on_complete: `${endpoint.url}/done` },
        tasks: [
          { id: 'one', executor: 'noop', config: { output: big } },
          { id: 'two', executor: 'noop', config: { output: big } },
          { id: 'three', executor: 'noop', config: { output: big } },
          { id: 'hook', executor: 'http', config: { url: `${endpoint.url}/hook`, method: 'POST', headers: { authorization: 'Bearer ${secrets.hook_token}' } }, depends_on: ['one'], retries: 2, backoff: 'fixed' },
          { id: 'pause', executor: 'delay', config: { ms: 20 }, depends_on: ['two'] },
          { id: 'last', executor: 'noop', depends_on: ['hook', 'pause', 'three'] },
        ],
      };
      const submitted = await api('POST', '/api/v1/flows', flow);
      expect(submitted.status, JSON.stringify(submitted.body)).toBe(202);
      const flowId = submitted.body.flow_id as string;
      const view = await settled(flowId, 'succeeded');
      expect(view.tasks.map((t: any) => t.status)).toEqual(Array(6).fill('succeeded'));
      expect(endpoint.requests.filter((r) => r.url === '/hook').map((r) => r.headers.authorization)).toEqual(['Bearer let-me-in', 'Bearer let-me-in']);
      const types = async (id: string) => ((await api('GET', `/api/v1/flows/${id}/events`)).body.events as any[]).map((e) => e.event.type as string);
      expect(await types(flowId)).toEqual(expect.arrayContaining(['task.throttled', 'task.attempt_failed', 'task.retry_scheduled']));
      expect((await api('GET', `/api/v1/flows/${flowId}/events`)).body.events[0].event.data.definition_ref).toMatchObject({ object: flowId });
      await waitFor('the completion webhook to be delivered', async () => ((await types(flowId)).includes('flow.webhook_delivered') ? true : undefined), 30_000, 100);
      expect(endpoint.requests.filter((r) => r.url === '/done').map((r) => JSON.parse(r.body))).toEqual([expect.objectContaining({ event: 'flow_completed', flow_id: flowId, state: 'succeeded' })]);

      // A schedule of a template (the gateway writes it; the scheduler reads it and the template, decides by compare-and-set, submits the run).
      const template = await api('PUT', '/api/v1/templates/permitted-tick', { flow: { tasks: [{ id: 'tick', executor: 'noop' }] }, params_schema: { type: 'object', properties: {} } });
      expect(template.status, JSON.stringify(template.body)).toBeLessThan(300);
      const schedule = await api('POST', '/api/v1/schedules', { name: 'permitted', cron: '* * * * * *', template: 'permitted-tick', overlap: 'allow' });
      expect(schedule.status, JSON.stringify(schedule.body)).toBe(201);
      const scheduled = await waitFor('a scheduled run', async () => (await api('GET', `/api/v1/flows?schedule=${schedule.body.id}`)).body?.flows?.[0], 30_000, 200);
      expect((await api('PUT', `/api/v1/schedules/${schedule.body.id}`, { enabled: false })).status).toBe(200);
      expect((await settled(scheduled.flow_id, 'succeeded')).origin).toMatchObject({ template: { name: 'permitted-tick', version: 1 }, schedule: { id: schedule.body.id } });

      // Artifacts: stored by one shell step (the artifacts object store, task.artifact_stored), fetched
      // for a later one, and downloaded through the gateway.
      const files = (await api('POST', '/api/v1/flows', {
        name: 'files',
        tasks: [
          { id: 'make', executor: 'shell', config: { command: 'printf stored > "$TASKSTREAM_ARTIFACTS/a.txt"' } },
          { id: 'use', executor: 'shell', depends_on: ['make'], config: { command: 'cat "${tasks.make.artifacts.a.txt}"' } },
        ],
      })).body.flow_id as string;
      expect((await settled(files, 'succeeded')).tasks[1].output.stdout).toBe('stored');
      const download = await fetch(`${deployment.gatewayUrl}/api/v1/flows/${files}/artifacts/a.txt`, { headers: { authorization: `Bearer ${ADMIN}` } });
      expect([download.status, await download.text()]).toEqual([200, 'stored']);

      // A signal (the gateway's signals stream) ends a wait task (the planner's wait index, look-back
      // and signal consumer), and a trigger task's child (submitted and ended by the planner).
      const waits = (await api('POST', '/api/v1/flows', {
        name: 'waits',
        tasks: [
          { id: 'wait', executor: 'wait', config: { signal: 'permitted', match: 'signal.ok' } },
          { id: 'child', executor: 'trigger', config: { flow: { tasks: [{ id: 'inner', executor: 'noop', config: { output: 7 } }] } } },
        ],
      })).body.flow_id as string;
      await waitFor('the wait to begin', async () => ((await api('GET', `/api/v1/flows/${waits}`)).body?.tasks?.[0]?.status === 'waiting' ? true : undefined), 30_000, 100);
      expect((await api('POST', '/api/v1/signals/permitted', { ok: true })).status).toBe(202);
      const waited = await settled(waits, 'succeeded');
      expect(waited.tasks.map((t: any) => t.output)).toEqual([{ ok: true }, expect.objectContaining({ state: 'succeeded', outputs: { inner: 7 } })]);

      // A template (ts_templates) run through REST, and a webhook trigger (ts_triggers, its secret, the
      // idempotency claim of its delivery) running it, once.
      const greeting = { params_schema: { type: 'object', properties: { who: { type: 'string' } } }, flow: { tasks: [{ id: 'greet', executor: 'noop', config: { output: 'hello ${params.who}' } }] } };
      expect((await api('PUT', '/api/v1/templates/permitted', greeting)).status).toBe(201);
      const templateRun = await api('POST', '/api/v1/templates/permitted/runs', { params: { who: 'rest' } });
      expect(templateRun.status, JSON.stringify(templateRun.body)).toBe(202);
      expect((await settled(templateRun.body.flow_id, 'succeeded')).tasks[0].output).toBe('hello rest');
      expect((await api('PUT', '/api/v1/triggers/permitted', { template: 'permitted', params: { who: '${trigger.body.who}' }, verify: { scheme: 'hmac', secret: 'hook_token' } })).status).toBe(201);
      const delivery = JSON.stringify({ who: 'hook' });
      const deliver = () =>
        fetch(`${deployment!.gatewayUrl}/api/v1/hooks/permitted`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-signature': createHmac('sha256', 'let-me-in').update(delivery).digest('hex') }, body: delivery });
      const delivered = await deliver();
      expect(delivered.status).toBe(202);
      expect((await settled(((await delivered.json()) as any).flow_id, 'succeeded')).tasks[0].output).toBe('hello hook');
      expect((await deliver()).status).toBe(200);

      // A rerun (flow.derived), and a cancel that stops a running step (the executor's watch of the log's stops).
      const rerun = await api('POST', `/api/v1/flows/${flowId}/rerun`, {});
      expect(rerun.status, JSON.stringify(rerun.body)).toBe(202);
      await settled(rerun.body.flow_id, 'succeeded');
      const long = (await api('POST', '/api/v1/flows', { name: 'stopped', tasks: [{ id: 'sleep', executor: 'delay', config: { ms: 60_000 } }] })).body.flow_id as string;
      await waitFor('the long task to run', async () => ((await api('GET', `/api/v1/flows/${long}`)).body?.tasks?.[0]?.status === 'running' ? true : undefined), 30_000, 100);
      expect((await api('POST', `/api/v1/flows/${long}/cancel`, { reason: 'enough' })).status).toBe(202);
      await settled(long, 'cancelled');
      // A deadline that passes while a step runs (the planner's timers, the executor's stop subscriptions).
      const late = (await api('POST', '/api/v1/flows', { name: 'late', timeout_secs: 1, tasks: [{ id: 'sleep', executor: 'delay', config: { ms: 60_000 } }] })).body.flow_id as string;
      await settled(late, 'failed');
      expect(await types(late)).toContain('flow.deadline_passed');

      // Messages no consumer can decode are set aside by each, then read and discarded through the gateway.
      const provisioner = await connectAs('provisioner');
      await jetstream(provisioner).publish(`ts.evt.0.${flowId}.task.ready`, '{ not json');
      await jetstream(provisioner).publish('ts.work.default', '{ not json');
      const letters = await waitFor('the dead letters', async () => {
        const listed = (await api('GET', '/api/v1/dlq')).body?.letters as Array<{ source: string; dlq_seq: number }> | undefined;
        const sources = new Set(listed?.map((l) => l.source));
        return ['planner', 'dispatcher', 'projector', 'executor-default'].every((s) => sources.has(s)) ? listed : undefined;
      }, 30_000, 100);
      expect((await api('DELETE', `/api/v1/dlq/${letters[0]!.dlq_seq}`)).status).toBe(204);

      // The projector rebuilds every view from the log under its own user.
      await deployment.restart('projector', { TASKSTREAM_REBUILD: 'true', TASKSTREAM_LOG_LEVEL: 'info' });
      await waitFor('the rebuild', () => (deployment!.processes.get('projector')!.logs().includes('rebuild complete; going live') ? true : undefined), 30_000);
      expect((await api('GET', `/api/v1/flows/${flowId}`)).body.status).toBe('succeeded');

      // Flow retention under the projector's user: each ended flow purged from the log, the views
      // and summaries, and both object stores (the large definition, the artifact).
      const retention = await FlowRetention.open(jetstream(await connectAs('projector')), topo, 1);
      let removed = 0;
      // Twice: a flow with a rerun goes at the sweep after the rerun's.
      for (const round of [1, 2]) {
        for (let partition = 0; partition < topo.layout.partitions; partition++) removed += (await retention.sweep(partition, Date.now() + round * 1_000)).removed;
      }
      expect(removed).toBeGreaterThanOrEqual(8);
      // Half an hour on, the summaries' removal markers are dropped, under the same user.
      await retention.sweep(0, Date.now() + SUMMARY_MARKER_MS + 3_000);
      const summaryKv = await new Kvm(jetstream(await connectAs('provisioner'))).open(topo.summariesBucket);
      expect(await summaryKv.get(flowId)).toBeNull();
      expect((await api('GET', `/api/v1/flows/${flowId}`)).status).toBe(404);
      expect((await api('GET', `/api/v1/flows/${files}/artifacts/a.txt`)).status).toBe(404);
      const stored = await jetstreamManager(await connectAs('provisioner'));
      expect((await stored.streams.info(`OBJ_${topo.definitionsBucket}`)).state.messages).toBe(0);
      expect((await stored.streams.info(`OBJ_${topo.artifactsBucket}`)).state.messages).toBe(0);

      expect(violations(nats.output()), nats.output()).toEqual([]);
      expect([...deployment.processes.values()].every((p) => !p.exited), deployment.logs()).toBe(true);
    }, 180_000);

    it("refuses the executor's user a flow.submitted and a stream's deletion, and the gateway's a stream's deletion", async () => {
      const flowId = '01JAAAAAAAAAAAAAAAAAAAAAAA';
      const subject = eventSubject(topo.layout, flowId, 'flow.submitted');
      const executor = await connectAs('executor');
      await expect(jetstream(executor).publish(subject, JSON.stringify({ type: 'flow.submitted', flow_id: flowId }))).rejects.toThrow(
        `Permissions Violation for Publish to "${subject}"`,
      );
      await expect((await jetstreamManager(executor)).streams.delete(topo.eventsStream)).rejects.toThrow(`Permissions Violation for Publish to "$JS.API.STREAM.DELETE.${topo.eventsStream}"`);

      const gateway = await connectAs('gateway');
      await expect((await jetstreamManager(gateway)).streams.delete(topo.eventsStream)).rejects.toThrow(`Permissions Violation for Publish to "$JS.API.STREAM.DELETE.${topo.eventsStream}"`);
      await expect((await jetstreamManager(gateway)).streams.delete(topo.dlqStream)).rejects.toThrow(`Permissions Violation for Publish to "$JS.API.STREAM.DELETE.${topo.dlqStream}"`);

      // The server logged each refusal; the log is intact and holds no forged submission.
      await waitFor('the refusals in the server log', () => (violations(nats.output()).length >= 4 ? true : undefined), 5_000);
      const jsm = await jetstreamManager(await connectAs('provisioner'));
      expect((await jsm.streams.info(topo.eventsStream)).config.name).toBe(topo.eventsStream);
      expect(await jsm.direct.getMessage(topo.eventsStream, { last_by_subj: subject })).toBeNull();
    });
  });
});
