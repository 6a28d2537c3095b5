import { Kvm } from '@nats-io/kv';
import { validateFlow, type FlowEvent } from '@taskstream/domain';
import { definitionsOf, EventLog, FlowSummaryStore, FlowViewStore, readFlowHistory, silentLogger, submitFlow, type JsMsg, type ViewWrite } from '@taskstream/nats';
import { createContext, type ServiceContext } from '@taskstream/runtime';
import { NatsServer } from '@taskstream/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlowMemory } from '../src/flow-memory.js';
import { Projection } from '../src/projection.js';
import { viewBatch } from '../src/view-batch.js';

/** A view store whose writes wait while `held` is set, as writes do under load. */
class SlowViews extends FlowViewStore {
  held: Promise<void> | undefined;

  override async write(writes: ViewWrite[], beside?: () => Array<Promise<unknown>>): Promise<void> {
    await this.held;
    return super.write(writes, beside);
  }
}

/** A delivered message as the projection sees one: its sequence, what is pending after it, and an ack. */
const delivered = (seq: number, pending: number, deliveryCount = 1) => ({ seq, info: { pending, deliveryCount }, ack() {} }) as unknown as JsMsg;

describe("the projector's projection of a partition", () => {
  let nats: NatsServer;
  let ctx: ServiceContext;

  beforeAll(async () => {
    nats = await NatsServer.start();
    ctx = await createContext({ natsUrl: nats.url, name: 'projection', log: silentLogger });
  });

  afterAll(async () => {
    await ctx?.nc.close();
    await nats?.stop();
  });

  it("never writes a flow's view back to an older state when an early event comes again after the flow ended", async () => {
    const parsed = validateFlow({ tasks: [{ id: 'a', executor: 'noop' }] });
    if (!parsed.ok) throw new Error('invalid flow');
    const { flowId } = await submitFlow(ctx.js, ctx.topo, { definition: parsed.flow });
    const log = new EventLog(ctx.js, ctx.topo);
    await log.appendNew({ type: 'flow.started', flow_id: flowId, data: {} }, `${flowId}:started`);
    await log.appendNew({ type: 'flow.cancelled', flow_id: flowId, data: { reason: 'not needed', succeeded: 0, total: 1 } }, `${flowId}:cancelled`);
    const [submitted, started, cancelled] = (await readFlowHistory(ctx.js, ctx.topo, flowId)) as Array<{ seq: number; event: FlowEvent }>;
    if (submitted === undefined || started === undefined || cancelled === undefined) throw new Error('the flow was not stored');

    const kvm = new Kvm(ctx.js);
    const views = new SlowViews(ctx.js, await kvm.open(ctx.topo.flowsBucket), ctx.topo.flowsBucket);
    const summariesKv = await kvm.open(ctx.topo.summariesBucket);
    const summaries = new FlowSummaryStore(summariesKv, ctx.topo.summariesBucket);
    const batch = viewBatch(silentLogger, views, summaries);
    const projection = new Projection(ctx, new FlowMemory(100, ctx.topo.layout.partitions), views, await definitionsOf(ctx.js, ctx.topo), batch);

    let release!: () => void;
    views.held = new Promise((resolve) => (release = resolve));
    await projection.handle(submitted.event, delivered(submitted.seq, 2));
    await projection.handle(started.event, delivered(started.seq, 1));
    // The end is folded and its write starts, held back: the flow is let go meanwhile.
    const ending = projection.handle(cancelled.event, delivered(cancelled.seq, 0));
    await new Promise((resolve) => setImmediate(resolve));
    // The start comes again (its acknowledgement was late), and is folded while the flow's last
    // state is not stored yet (more is pending after it, so its write waits for the next batch).
    await projection.handle(started.event, delivered(started.seq, 1, 2));
    release();
    await ending;
    await batch.close();

    expect(await views.read(flowId)).toMatchObject({ status: 'cancelled', last_seq: cancelled.seq });
    // The flows list's summary too.
    expect((await summariesKv.get(flowId))?.json<{ status: string }>().status).toBe('cancelled');
  });
});
