import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { toFlowView } from '@taskstream/domain';
import { encodeJson, flowViewKey, foldFlowHistory, silentLogger } from '@taskstream/nats';
import { createContext, type ServiceContext } from '@taskstream/runtime';
import { NatsServer } from '@taskstream/testing';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGateway } from '../src/app.js';

/*
 * A gateway against a real nats-server with no projector: the views are written by the test, as a
 * projector that is behind the log would write them.
 */
describe("a gateway's reads of a flow", () => {
  let nats: NatsServer;
  let ctx: ServiceContext;
  let gateway: FastifyInstance;

  beforeAll(async () => {
    nats = await NatsServer.start();
    ctx = await createContext({ natsUrl: nats.url, name: 'flow-reads', log: silentLogger });
    gateway = await buildGateway(ctx, { auth: 'none', rateLimit: 0 });
    await gateway.ready();
  });

  afterAll(async () => {
    await gateway?.close();
    await ctx?.nc.close();
    await nats?.stop();
  });

  const read = async (id: string) => {
    const response = await gateway.inject({ method: 'GET', url: `/api/v1/flows/${id}` });
    expect(response.statusCode).toBe(200);
    return response.json() as { status: string; last_seq: number; written_by?: string };
  };
  /** Stores the view of the flow folded up to `seq`, as the projector would, marked as stored. */
  const storeView = async (id: string, seq: number) => {
    const state = (await foldFlowHistory(ctx.js, ctx.topo, id, seq))!;
    const kv = await new Kvm(jetstream(ctx.nc)).open(ctx.topo.flowsBucket);
    await kv.put(flowViewKey(id), encodeJson({ ...toFlowView(state), written_by: 'projector' }));
  };

  it('never go back to an older state: a view behind an earlier answer from the log is not served', async () => {
    const submitted = await gateway.inject({ method: 'POST', url: '/api/v1/flows', payload: { tasks: [{ id: 'a', executor: 'noop' }] } });
    expect(submitted.statusCode).toBe(202);
    const id = (submitted.json() as { flow_id: string }).flow_id;
    const first = await read(id);
    expect(first.written_by).toBeUndefined();

    expect((await gateway.inject({ method: 'POST', url: `/api/v1/flows/${id}/cancel`, payload: {} })).statusCode).toBeLessThan(300);
    // No view yet: folded from the log, the cancel in it.
    const cancelling = await read(id);
    expect(cancelling.last_seq).toBeGreaterThan(first.last_seq);
    expect(cancelling.written_by).toBeUndefined();

    // The projector, behind, stores the view as of the submission: this gateway answered later already.
    await storeView(id, first.last_seq);
    expect(await read(id)).toEqual(cancelling);

    // Once the view catches up, it is served.
    await storeView(id, cancelling.last_seq);
    expect(await read(id)).toEqual({ ...cancelling, written_by: 'projector' });
  });

  it('fold the log for a client that saw the flow further on, through another gateway', async () => {
    const submitted = await gateway.inject({ method: 'POST', url: '/api/v1/flows', payload: { tasks: [{ id: 'a', executor: 'noop' }] } });
    const id = (submitted.json() as { flow_id: string }).flow_id;
    const first = (await foldFlowHistory(ctx.js, ctx.topo, id))!.last_seq;
    await storeView(id, first);
    await gateway.inject({ method: 'POST', url: `/api/v1/flows/${id}/cancel`, payload: {} });
    const cancelled = (await foldFlowHistory(ctx.js, ctx.topo, id))!;
    // This gateway has not answered for the flow; the client read `cancelled` elsewhere.
    const answer = await gateway.inject({ method: 'GET', url: `/api/v1/flows/${id}?min_seq=${cancelled.last_seq}` });
    expect(answer.json()).toMatchObject({ last_seq: cancelled.last_seq, status: cancelled.status });
    expect(answer.json()).not.toHaveProperty('written_by');
    // Without it, the stored view is served as it is.
    const fresh = await buildGateway(ctx, { auth: 'none', rateLimit: 0 });
    expect((await fresh.inject({ method: 'GET', url: `/api/v1/flows/${id}` })).json()).toMatchObject({ last_seq: first, written_by: 'projector' });
    await fresh.close();
    const refused = await gateway.inject({ method: 'GET', url: `/api/v1/flows/${id}?min_seq=-1` });
    expect(refused.statusCode).toBe(400);
  });

  it('serve a view the gateway has not answered beyond, as stored', async () => {
    const submitted = await gateway.inject({ method: 'POST', url: '/api/v1/flows', payload: { tasks: [{ id: 'a', executor: 'noop' }] } });
    const id = (submitted.json() as { flow_id: string }).flow_id;
    const state = (await foldFlowHistory(ctx.js, ctx.topo, id))!;
    await storeView(id, state.last_seq);
    expect(await read(id)).toMatchObject({ last_seq: state.last_seq, written_by: 'projector' });
  });
});
