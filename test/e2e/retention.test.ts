import { flowEventsFilter, type FlowSummary } from '@taskstream/domain';
import { jetstreamManager, silentLogger, topology } from '@taskstream/nats';
import { startProjector } from '@taskstream/projector';
import { createContext, scrapeMetrics, type ServiceContext, type ServiceHandle } from '@taskstream/runtime';
import { NatsServer, waitFor } from '@taskstream/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_SERVICES, Deployment, FAST_FAILOVER } from '../support/deployment.js';

/*
 * Flow retention through the services: the gateway, planner, dispatcher and executor as their own
 * processes, the projector in this process with a retention of two seconds (the setting's floor is
 * an hour; the option under it is not bounded). A flow is removed from every API and every store
 * once it has ended that long ago; a flow still waiting is kept however old it is.
 */

const RETENTION_SECS = 2;
const topo = topology();

describe('flow retention', () => {
  let nats: NatsServer;
  let deployment: Deployment;
  let ctx: ServiceContext;
  let projector: ServiceHandle;
  let base: string;

  const api = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${base}${path}`, { method, ...(body !== undefined && { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }) });
    const text = await response.text();
    return { status: response.status, body: text === '' ? undefined : (JSON.parse(text) as any) };
  };
  const submit = async (flow: unknown): Promise<string> => {
    const submitted = await api('POST', '/api/v1/flows', flow);
    expect(submitted.status, JSON.stringify(submitted.body)).toBe(202);
    return submitted.body.flow_id;
  };
  const statusOf = async (id: string) => (await api('GET', `/api/v1/flows/${id}`)).body?.status;
  const listed = async () => ((await api('GET', '/api/v1/flows?limit=100')).body.flows as FlowSummary[]).map((f) => f.flow_id);

  beforeAll(async () => {
    nats = await NatsServer.start();
    // Every service but the projector, which runs here.
    deployment = await Deployment.start(nats.url, ALL_SERVICES.filter(([name]) => name !== 'projector'), FAST_FAILOVER);
    base = deployment.gatewayUrl;
    ctx = await createContext({ natsUrl: nats.url, name: 'projector-with-retention', log: silentLogger });
    projector = await startProjector(ctx, { flowRetentionSecs: RETENTION_SECS, leaseMs: 2000 });
  });
  afterAll(async () => {
    await projector?.stop();
    await ctx?.nc.close();
    await deployment?.stop();
    await nats?.stop();
  });

  it('removes an ended flow from every API and store once it has been kept the retention, and keeps a waiting one', async () => {
    // Over 256 KiB, so its definition is an object of its own; a shell step stores an artifact.
    const ended = await submit({
      name: 'kept-a-while',
      tasks: [
        ...['one', 'two', 'three'].map((id) => ({ id, executor: 'noop', config: { output: 'x'.repeat(100 * 1024) } })),
        { id: 'files', executor: 'shell', config: { command: 'printf kept > "$TASKSTREAM_ARTIFACTS/out.txt"' } },
      ],
    });
    const waiting = await submit({ name: 'waits', tasks: [{ id: 'gate', executor: 'approval', config: { message: 'later' } }] });
    await waitFor('the flow to succeed', async () => ((await statusOf(ended)) === 'succeeded' ? true : undefined), 30_000, 100);
    const jsm = await jetstreamManager(ctx.nc);
    expect((await jsm.streams.info(`OBJ_${topo.definitionsBucket}`)).state.messages).toBeGreaterThan(0);
    const download = await fetch(`${base}/api/v1/flows/${ended}/artifacts/out.txt`);
    expect([download.status, await download.text()]).toEqual([200, 'kept']);
    expect(await listed()).toEqual(expect.arrayContaining([ended, waiting]));

    await waitFor('the ended flow to be removed', async () => ((await api('GET', `/api/v1/flows/${ended}`)).status === 404 ? true : undefined), 30_000, 200);
    const missing = await api('GET', `/api/v1/flows/${ended}`);
    expect(missing.body).toMatchObject({ error: { code: 'FLOW_NOT_FOUND' } });
    expect((await api('GET', `/api/v1/flows/${ended}/events`)).status).toBe(404);
    expect((await fetch(`${base}/api/v1/flows/${ended}/artifacts/out.txt`)).status).toBe(404);
    expect((await api('POST', `/api/v1/flows/${ended}/rerun`, {})).status).toBe(404);
    await waitFor('the flows list to drop it', async () => (!(await listed()).includes(ended) ? true : undefined), 10_000, 100);

    // Nothing of it is left in the log or the object stores.
    expect(await jsm.direct.getMessage(topo.eventsStream, { next_by_subj: flowEventsFilter(topo.layout, ended), seq: 1 })).toBeNull();
    expect((await jsm.streams.info(`OBJ_${topo.definitionsBucket}`)).state.messages).toBe(0);
    expect((await jsm.streams.info(`OBJ_${topo.artifactsBucket}`)).state.messages).toBe(0);

    // The waiting flow, older than the retention by now, is still there in full; once approved and
    // ended, it goes too.
    await new Promise((r) => setTimeout(r, RETENTION_SECS * 1000));
    expect(await statusOf(waiting)).toBe('running');
    expect(await listed()).toContain(waiting);
    const code = (await api('GET', `/api/v1/flows/${waiting}`)).body.tasks[0].output.code;
    const approved = await api('POST', `/api/v1/flows/${waiting}/tasks/gate/ack`, { status: 'success', code });
    expect(approved.status, JSON.stringify(approved.body)).toBeLessThan(300);
    await waitFor('the waiting flow to end and be removed', async () => ((await api('GET', `/api/v1/flows/${waiting}`)).status === 404 ? true : undefined), 30_000, 200);
    expect((await scrapeMetrics()).body).toMatch(/^taskstream_projector_flows_removed_total 2$/m);
    expect(deployment.logs()).not.toMatch(/"level":50/);
  });
});
