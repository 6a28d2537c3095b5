import { Kvm } from '@nats-io/kv';
import type { FlowSummary } from '@taskstream/domain';
import { connectNats, FlowSummaryStore, jetstream, jetstreamManager, newId, silentLogger, type NatsConnection } from '@taskstream/nats';
import { createContext, type ServiceContext } from '@taskstream/runtime';
import { LoopbackProxy, NatsServer, waitFor } from '@taskstream/testing';
import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildGateway } from '../src/app.js';

/*
 * Gateways whose connection to NATS runs through a proxy the test cuts, while retention (played
 * here through a direct connection) removes a flow and drops its removal marker, as it does once
 * the marker is SUMMARY_MARKER_MS old: a watch cut off meanwhile never sees the removal.
 */
describe("a gateway's flows list across a NATS outage", () => {
  let nats: NatsServer;
  let direct: NatsConnection;
  let summaries: FlowSummaryStore;
  const opened: Array<{ proxy: LoopbackProxy; ctx: ServiceContext; gateway: FastifyInstance; statuses: string[] }> = [];

  beforeAll(async () => {
    nats = await NatsServer.start();
    direct = await connectNats({ servers: nats.url, name: 'retention' });
    // The gateway makes the topology; the summaries bucket is opened once it exists.
    const first = await gatewayThroughProxy(0);
    summaries = new FlowSummaryStore(await new Kvm(jetstream(direct)).open(first.ctx.topo.summariesBucket), first.ctx.topo.summariesBucket);
  });

  afterEach(async () => {
    for (const { proxy, ctx, gateway } of opened.splice(0)) {
      await gateway.close();
      await ctx.nc.close();
      await proxy.close();
    }
  });

  afterAll(async () => {
    await direct?.close();
    await nats?.stop();
  });

  async function gatewayThroughProxy(listReadAgainAfterOutageMs: number) {
    const proxy = await LoopbackProxy.start(Number(new URL(nats.url).port));
    const ctx = await createContext({ natsUrl: `nats://127.0.0.1:${proxy.port}`, name: 'gateway-behind-proxy', log: silentLogger });
    const gateway = await buildGateway(ctx, { auth: 'none', rateLimit: 0, listReadAgainAfterOutageMs });
    await gateway.ready();
    const statuses: string[] = [];
    void (async () => {
      for await (const status of ctx.nc.status()) statuses.push(status.type);
    })();
    const behind = { proxy, ctx, gateway, statuses };
    opened.push(behind);
    return behind;
  }

  const summary = (flowId: string): FlowSummary => ({ flow_id: flowId, status: 'succeeded', queue: 'default', submitted_at: new Date().toISOString(), total: 1 });
  const listed = async (gateway: FastifyInstance) => ((await gateway.inject({ method: 'GET', url: '/api/v1/flows?limit=500' })).json() as { flows: FlowSummary[] }).flows.map((f) => f.flow_id);

  /** Lists two flows, cuts the gateway off, removes one (marker dropped), and lets it back. */
  async function removeDuringOutage(behind: Awaited<ReturnType<typeof gatewayThroughProxy>>) {
    const [kept, removed] = [newId(), newId()];
    await summaries.put(kept, summary(kept));
    await summaries.put(removed, summary(removed));
    await waitFor('both flows to be listed', async () => ((await listed(behind.gateway)).includes(removed) ? true : undefined));
    behind.proxy.cut();
    await waitFor('the gateway to see the outage', () => (behind.statuses.includes('disconnect') ? true : undefined));
    await summaries.remove(removed);
    await summaries.dropMarker(await jetstreamManager(direct), removed);
    behind.proxy.restore();
    await waitFor('the gateway to reconnect', () => (behind.statuses.includes('reconnect') ? true : undefined));
    return { kept, removed };
  }

  it('reads the list again after an outage as long as a removal marker is kept, so a flow removed meanwhile leaves it', async () => {
    const behind = await gatewayThroughProxy(0);
    const { kept, removed } = await removeDuringOutage(behind);
    await waitFor('the removed flow to leave the list', async () => ((await listed(behind.gateway)).includes(removed) ? undefined : true));
    expect(await listed(behind.gateway)).toContain(kept);
  });

  it('after a shorter outage, reads nothing again: the watch alone misses the removal (what the read again is for)', async () => {
    const behind = await gatewayThroughProxy(3_600_000);
    const { kept, removed } = await removeDuringOutage(behind);
    // A summary stored after the outage comes through the resumed watch; the removal never does.
    const later = newId();
    await summaries.put(later, summary(later));
    await waitFor('the later flow to be listed', async () => ((await listed(behind.gateway)).includes(later) ? true : undefined));
    expect(await listed(behind.gateway)).toEqual(expect.arrayContaining([kept, removed, later]));
  });
});
