import { connectNats, generateApiKey, jetstreamManager, topology, type NatsConnection } from '@taskstream/nats';
import { freePort, NatsServer, waitFor } from '@taskstream/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_SERVICES, Deployment, FAST_FAILOVER } from '../support/deployment.js';
import { runCli } from '../support/cli.js';
import { gatewayApi } from '../support/gateway-api.js';

/*
 * Approval tasks through every service as its own process: the planner holds them waiting (no work
 * item, no slot), the gateway's ack ends them, the planner's durable timer times them out.
 */

const CODE = /^[0-9a-f]{32}$/;
const ADMIN = generateApiKey().key;

const cli = (args: string[]) => runCli(args);

describe('approval tasks through the services', () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let deployment: Deployment;
  let base: string;
  /** A second gateway, with API keys on. */
  let keyed: string;
  const topo = topology();

  const api = gatewayApi(() => base);
  const { submit, view, taskOf, events, settled, statuses } = api;
  const ack = (id: string, task: string, body: unknown) => api.post(`/api/v1/flows/${id}/tasks/${encodeURIComponent(task)}/ack`, body);
  const waiting = (id: string, task: string, timeoutMs = 20_000): Promise<any> => api.statusIs(id, task, 'waiting', timeoutMs);
  const sideDone = (id: string) => waitFor(`the side task of ${id} to finish on the one slot`, async () => ((await taskOf(id, 'side'))?.status === 'succeeded' ? true : undefined), 20_000);

  /** The work stream holds no item and no executor consumer has one pending or in hand. */
  const expectNoWork = async () => {
    const jsm = await jetstreamManager(nc);
    const stream = await jsm.streams.info(topo.workStream);
    expect(stream.state.messages).toBe(0);
    const consumers = await jsm.consumers.list(topo.workStream).next();
    expect(consumers.length).toBeGreaterThan(0);
    for (const consumer of consumers) expect({ name: consumer.name, pending: consumer.num_pending, inHand: consumer.num_ack_pending }).toEqual({ name: consumer.name, pending: 0, inHand: 0 });
    const stats = (await (await fetch(`${base}/api/v1/queues/default/stats`)).json()) as any;
    expect({ waiting: stats.waiting, running: stats.running, throttled: stats.throttled }).toEqual({ waiting: 0, running: 0, throttled: 0 });
  };

  const gated = (extra: Record<string, unknown> = {}) => ({
    params: { version: '1.4.2' },
    // One slot: the side task runs while the approval waits only if the wait holds none.
    queue_config: { concurrency: 1 },
    tasks: [
      { id: 'build', executor: 'noop', config: { output: { artifact: 'app.tar' } } },
      { id: 'release/gate', executor: 'approval', depends_on: ['build'], config: { message: 'Ship ${params.version} (${tasks.build.output.artifact})?' }, ...extra },
      { id: 'side', executor: 'delay', depends_on: ['build'], config: { ms: 200 } },
      { id: 'deploy', executor: 'noop', depends_on: ['release/gate'] },
    ],
  });

  beforeAll(async () => {
    nats = await NatsServer.start();
    const keyedPort = await freePort();
    deployment = await Deployment.start(nats.url, [...ALL_SERVICES, ['keyed', 'gateway', { TASKSTREAM_AUTH: 'keys', TASKSTREAM_BOOTSTRAP_ADMIN_KEY: ADMIN, TASKSTREAM_PORT: String(keyedPort) }]], FAST_FAILOVER);
    base = deployment.gatewayUrl;
    keyed = `http://127.0.0.1:${keyedPort}`;
    await deployment.ready(keyed);
    nc = await connectNats({ servers: nats.url, name: 'approvals-test' });
  });
  afterAll(async () => {
    await nc?.close();
    await deployment?.stop();
    await nats?.stop();
  });

  it('waits with Tasked\'s output, holding no work item or slot; a wrong code changes nothing; the ack runs its dependents; a second ack is a 409', async () => {
    const id = await submit(gated());
    const gate = await waiting(id, 'release/gate');
    expect(gate.output).toEqual({ awaiting_approval: true, message: 'Ship 1.4.2 (app.tar)?', code: expect.stringMatching(CODE) });
    await sideDone(id);
    expect(statuses(await view(id))).toEqual({ build: 'succeeded', 'release/gate': 'waiting', side: 'succeeded', deploy: 'pending' });
    await expectNoWork();

    const before = await events(id);
    const wrong = await ack(id, 'release/gate', { status: 'success', code: '0'.repeat(32) });
    expect(wrong.status).toBe(403);
    expect(wrong.body.error.code).toBe('INVALID_APPROVAL_CODE');
    expect(JSON.stringify(wrong.body)).not.toContain(gate.output.code);
    expect((await ack(id, 'release/gate', { status: 'success' })).status).toBe(403);
    expect(await events(id)).toEqual(before);
    expect((await taskOf(id, 'release/gate')).status).toBe('waiting');

    expect((await ack(id, 'nope', { status: 'success', code: gate.output.code })).body.error.code).toBe('TASK_NOT_FOUND');
    expect((await ack('01JAAAAAAAAAAAAAAAAAAAAAAA', 'release/gate', { status: 'success' })).status).toBe(404);
    const notApproval = await ack(id, 'build', { status: 'success' });
    expect({ status: notApproval.status, code: notApproval.body.error.code }).toEqual({ status: 400, code: 'NOT_AN_APPROVAL' });
    const badBody = await ack(id, 'release/gate', { status: 'approved', code: gate.output.code });
    expect(badBody.status).toBe(400);
    expect(badBody.body.error.problems).toEqual([{ path: 'status', message: 'must be "success" (approve) or "failed" (reject)' }]);

    const ok = await ack(id, 'release/gate', { status: 'success', code: gate.output.code, approved_by: 'alice', output: { ticket: 'OPS-42' } });
    expect(ok.status).toBe(204);
    const again = await ack(id, 'release/gate', { status: 'failed', code: gate.output.code });
    expect(again.status).toBe(409);
    expect(again.body.error).toMatchObject({ code: 'TASK_NOT_WAITING', message: expect.stringContaining('already approved by alice') });

    const done = await settled(id);
    expect(done.status).toBe('succeeded');
    expect(statuses(done)).toEqual({ build: 'succeeded', 'release/gate': 'succeeded', side: 'succeeded', deploy: 'succeeded' });
    expect(done.tasks.find((t: any) => t.id === 'release/gate').output).toEqual({ ticket: 'OPS-42', approved_by: 'alice', acked_at: expect.any(String) });
    const log = await events(id);
    expect(log.filter((e) => e.task_id === 'release/gate').map((e) => e.type)).toEqual(['task.waiting', 'task.succeeded']);
    expect(log.find((e) => e.type === 'task.succeeded' && e.task_id === 'release/gate').data.ack).toEqual({ approved_by: 'alice' });
  });

  it('fails the flow when rejected, its dependents upstream_failed', async () => {
    const id = await submit(gated());
    const gate = await waiting(id, 'release/gate');
    expect((await ack(id, 'release/gate', { status: 'failed', code: gate.output.code, approved_by: 'bob', error: 'not on a Friday' })).status).toBe(204);
    const done = await settled(id);
    expect(done.status).toBe('failed');
    expect(statuses(done)).toMatchObject({ 'release/gate': 'failed', deploy: 'upstream_failed' });
    expect(done.tasks.find((t: any) => t.id === 'release/gate').error).toEqual({ message: 'not on a Friday', code: 'REJECTED', retryable: false });
    const again = await ack(id, 'release/gate', { status: 'success', code: gate.output.code });
    expect(again.body.error.message).toContain('already rejected by bob');
  });

  it('taskstream approve and reject: the code read from the task, a wrong one refused, the outcome in the replay', async () => {
    const approved = await submit(gated());
    const rejected = await submit(gated());
    await waiting(approved, 'release/gate');
    await waiting(rejected, 'release/gate');
    const wrong = await cli(['reject', rejected, 'release/gate', '--server', base, '--code', 'f'.repeat(32)]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('error: the code does not match the approval code of task "release/gate"');
    expect(wrong.stderr).toContain('hint: leave out --code');
    const badOutput = await cli(['approve', approved, 'release/gate', '--server', base, '--output', '{ticket']);
    expect(badOutput.stderr).toContain('error: --output is not valid JSON');

    const yes = await cli(['approve', approved, 'release/gate', '--server', base, '--by', 'carol', '--output', '{"ticket": "OPS-7"}']);
    expect(yes.stdout.trim(), yes.stderr).toBe(`Task release/gate of flow ${approved} approved`);
    const no = await cli(['reject', rejected, 'release/gate', '--server', base, '--by', 'dave', '--reason', 'freeze week']);
    expect(no.stdout.trim(), no.stderr).toBe(`Task release/gate of flow ${rejected} rejected`);
    expect((await settled(approved)).status).toBe('succeeded');
    expect((await settled(rejected)).tasks.find((t: any) => t.id === 'release/gate').error.message).toBe('freeze week');

    const twice = await cli(['approve', approved, 'release/gate', '--server', base]);
    expect(twice.stderr).toContain('task "release/gate" is succeeded, not waiting for approval');
    const replay = await cli(['replay', approved, '--server', base]);
    expect(replay.stdout).toMatch(/planner +task\.waiting +\[release\/gate\] awaiting approval: Ship 1\.4\.2 \(app\.tar\)\?/);
    expect(replay.stdout).toMatch(/gateway +task\.succeeded +\[release\/gate\] approved by carol after/);
    const replayRejected = await cli(['replay', rejected, '--server', base]);
    expect(replayRejected.stdout).toMatch(/gateway +task\.failed +\[release\/gate\] rejected by dave: freeze week/);
  });

  it('needs the submit scope, and records the key that acked beside approved_by', async () => {
    const call = (key: string, path: string, body?: unknown) =>
      fetch(`${keyed}${path}`, { method: body === undefined ? 'GET' : 'POST', headers: { authorization: `Bearer ${key}`, ...(body !== undefined && { 'content-type': 'application/json' }) }, ...(body !== undefined && { body: JSON.stringify(body) }) });
    const keyOf = async (scope: string) => ((await (await call(ADMIN, '/api/v1/keys', { name: `approvals ${scope}`, scope })).json()) as { id: string; key: string });
    const [reader, submitter] = [await keyOf('read'), await keyOf('submit')];
    const id = ((await (await call(submitter.key, '/api/v1/flows', gated())).json()) as { flow_id: string }).flow_id;
    const { output } = await waiting(id, 'release/gate');
    const body = { status: 'success', code: output.code, approved_by: 'erin' };
    const refused = await call(reader.key, `/api/v1/flows/${id}/tasks/release%2Fgate/ack`, body);
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as any).error).toMatchObject({ code: 'FORBIDDEN', required_scope: 'submit' });
    expect((await call(submitter.key, `/api/v1/flows/${id}/tasks/release%2Fgate/ack`, body)).status).toBe(204);
    const succeeded = (await events(id)).find((e) => e.type === 'task.succeeded' && e.task_id === 'release/gate');
    expect(succeeded.data.ack).toEqual({ approved_by: 'erin', requested_by: `key:${submitter.id}` });
  });

  it('stores one of two racing acks; the other is a 409', async () => {
    const id = await submit(gated());
    const { output } = await waiting(id, 'release/gate');
    const answers = await Promise.all(
      Array.from({ length: 4 }, (_, i) => ack(id, 'release/gate', { status: i % 2 === 0 ? 'success' : 'failed', code: output.code, approved_by: `approver-${i}` })),
    );
    expect(answers.map((a) => a.status).sort()).toEqual([204, 409, 409, 409]);
    await settled(id);
    const ends = (await events(id)).filter((e) => e.task_id === 'release/gate' && (e.type === 'task.succeeded' || e.type === 'task.failed'));
    expect(ends).toHaveLength(1);
  });

  it('times out after its timeout_secs, failing the flow', async () => {
    const id = await submit(gated({ timeout_secs: 1 }));
    await waiting(id, 'release/gate');
    const done = await settled(id);
    expect(done.status).toBe('failed');
    expect(statuses(done)).toMatchObject({ 'release/gate': 'timed_out', deploy: 'upstream_failed' });
    expect(done.tasks.find((t: any) => t.id === 'release/gate').error).toMatchObject({ code: 'APPROVAL_TIMEOUT', retryable: false });
    const late = await ack(id, 'release/gate', { status: 'success', code: (await events(id)).find((e) => e.type === 'task.waiting').data.output.code });
    expect(late.status).toBe(409);
    expect(late.body.error.message).toContain('timed out');
  });

  it('is cancelled with its flow', async () => {
    const id = await submit(gated());
    await waiting(id, 'release/gate');
    expect((await fetch(`${base}/api/v1/flows/${id}/cancel`, { method: 'POST' })).status).toBe(202);
    const done = await settled(id);
    expect(done.status).toBe('cancelled');
    expect(statuses(done)).toMatchObject({ 'release/gate': 'cancelled', deploy: 'cancelled' });
  });

  it('keeps waiting, and its timeout keeps running, across a restart of every service', async () => {
    const acked = await submit(gated());
    const timed = await submit(gated({ timeout_secs: 15 }));
    const gate = await waiting(acked, 'release/gate');
    await waiting(timed, 'release/gate');
    for (const [name] of ALL_SERVICES) await deployment.restart(name);
    await deployment.ready();
    const restartedAt = Date.now();
    await sideDone(acked);
    await sideDone(timed);
    await expectNoWork();
    expect((await taskOf(acked, 'release/gate')).status).toBe('waiting');

    expect((await ack(acked, 'release/gate', { status: 'success', code: gate.output.code })).status).toBe(204);
    const done = await settled(acked);
    expect(statuses(done)).toEqual({ build: 'succeeded', 'release/gate': 'succeeded', side: 'succeeded', deploy: 'succeeded' });
    expect(done.tasks.find((t: any) => t.id === 'release/gate').output).toEqual({ approved: true, acked_at: expect.any(String) });

    const timedOut = await settled(timed, 40_000);
    expect(statuses(timedOut)).toMatchObject({ 'release/gate': 'timed_out', deploy: 'upstream_failed' });
    const fired = (await events(timed)).find((e) => e.type === 'task.timed_out');
    expect(Date.parse(fired.time)).toBeGreaterThan(restartedAt);
  }, 90_000);
});
