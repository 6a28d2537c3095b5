import { evolve, isTerminalFlow, toFlowView, type FlowEvent, type FlowState } from '@taskstream/domain';
import {
  DeadLetters,
  decodeEvent,
  encodeJson,
  ensureConsumer,
  foldFlowHistory,
  Kvm,
  startConsumerLoop,
  type JsMsg,
} from '@taskstream/nats';
import type { ServiceContext, ServiceHandle } from '@taskstream/runtime';

export interface ProjectorOptions {
  consumer?: string;
  maxDeliver?: number;
  maxCachedFlows?: number;
}

/**
 * Folds every event into per-flow views in the `<prefix>_flows` KV bucket, which the gateway
 * serves. Views are derived: deleting the bucket and replaying the log rebuilds them.
 */
export async function startProjector(ctx: ServiceContext, options: ProjectorOptions = {}): Promise<ServiceHandle> {
  const consumer = options.consumer ?? 'projector';
  const maxDeliver = options.maxDeliver ?? 10;
  const maxCached = options.maxCachedFlows ?? 50_000;
  await ensureConsumer(ctx.jsm, ctx.topo.eventsStream, {
    durable_name: consumer,
    filter_subject: `${ctx.topo.layout.prefix}.evt.>`,
    max_deliver: maxDeliver,
    ack_wait: 30_000_000_000,
    max_ack_pending: 20_000,
  });
  const views = await new Kvm(ctx.js).open(ctx.topo.flowsBucket);
  const cache = new Map<string, FlowState>();

  async function handle(event: FlowEvent, msg: JsMsg): Promise<void> {
    let state = cache.get(event.flow_id) ?? null;
    if (state === null) {
      state = event.type === 'flow.submitted' ? evolve(null, event, msg.seq) : await foldFlowHistory(ctx.js, ctx.topo, event.flow_id, msg.seq);
      if (state === null) return;
      cache.set(event.flow_id, state);
      if (cache.size > maxCached) cache.delete(cache.keys().next().value!);
    } else {
      if (msg.seq <= state.last_seq) return;
      evolve(state, event, msg.seq);
    }
    await views.put(event.flow_id, encodeJson(toFlowView(state)));
    if (isTerminalFlow(state)) cache.delete(event.flow_id);
  }

  const loop = await startConsumerLoop({
    js: ctx.js,
    stream: ctx.topo.eventsStream,
    consumer,
    source: 'projector',
    decode: decodeEvent,
    handle,
    deadLetters: new DeadLetters(ctx.js, ctx.topo),
    log: ctx.log,
    maxDeliver,
  });
  ctx.log.info({ consumer }, 'projector started');
  return { name: 'projector', stop: () => loop.stop() };
}
