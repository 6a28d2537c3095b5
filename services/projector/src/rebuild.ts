import { allEventsFilter, evolve, isTerminalFlow, toFlowListing, type FlowState } from '@taskstream/domain';
import { AckPolicy, decodeEvent, DeliverPolicy, readStored, type Definitions, type ensureOrderedTakeover, type FlowSummaryStore, type FlowViewStore } from '@taskstream/nats';
import type { ServiceContext } from '@taskstream/runtime';
import type { FlowMemory } from './flow-memory.js';
import { planViewWrite } from './view-store.js';

/** What a rebuild needs: the stores it rewrites and how the live consumers are configured. */
export interface RebuildParts {
  views: FlowViewStore;
  summaries: FlowSummaryStore;
  definitions: Definitions;
  memory: FlowMemory;
  consumer: string;
  consumerConfig: (partition: number) => Parameters<typeof ensureOrderedTakeover>[2];
}

/**
 * Throws every view away and folds the whole log first, writing each view once with its final
 * state, so readers never see a view go back in time; then points the live consumers just after
 * the last event read.
 */
export async function rebuildViews(ctx: ServiceContext, parts: RebuildParts): Promise<void> {
  ctx.log.info({ consumer: parts.consumer }, 'rebuilding every view from the log');
  const { flows, lastSeq } = await foldWholeLog(ctx, parts.definitions);
  await parts.views.purgeAll();
  await parts.summaries.purgeAll();
  for (const [flowId, state] of flows) {
    const write = planViewWrite({ state, paged: false }, 'all');
    await parts.views.write([write], () => [parts.summaries.put(flowId, toFlowListing(state))]);
    if (!isTerminalFlow(state)) parts.memory.hold(flowId, state, write.paged);
  }
  for (let p = 0; p < ctx.topo.layout.partitions; p++) {
    const config = parts.consumerConfig(p);
    await ctx.jsm.consumers.delete(ctx.topo.eventsStream, config.durable_name).catch(() => false);
    await ctx.jsm.consumers.add(ctx.topo.eventsStream, { ...config, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: lastSeq + 1 });
  }
  ctx.log.info({ flows: flows.size, through_seq: lastSeq }, 'rebuild complete; going live');
}

async function foldWholeLog(ctx: ServiceContext, definitions: Definitions): Promise<{ flows: Map<string, FlowState>; lastSeq: number }> {
  const flows = new Map<string, FlowState>();
  const reader = await ctx.js.consumers.get(ctx.topo.eventsStream, { filter_subjects: allEventsFilter(ctx.topo.layout) });
  let lastSeq = (await ctx.jsm.streams.info(ctx.topo.eventsStream)).state.first_seq - 1;
  const end = await readStored(reader, async (msg) => {
    lastSeq = msg.seq;
    const decoded = decodeEvent(msg.data);
    if (!decoded.ok) return;
    const event = decoded.value.type === 'flow.submitted' ? await definitions.hydrate(decoded.value) : decoded.value;
    const state = evolve(flows.get(event.flow_id) ?? null, event, msg.seq);
    if (state) flows.set(event.flow_id, state);
  });
  if (end === 'stalled') throw new Error(`the log stopped delivering after sequence ${lastSeq} during the rebuild; start the projector again`);
  return { flows, lastSeq };
}
