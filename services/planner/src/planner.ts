import { hostname } from 'node:os';
import {
  decide,
  decideAll,
  evolve,
  FlowDeadline,
  flowDeadline,
  isTerminalFlow,
  partitionFilter,
  timerSubject,
  TERMINAL_FLOW_STATUSES,
  type EventDraft,
  type FlowEvent,
} from '@taskstream/domain';
import {
  DeadLetters,
  decodeEvent,
  decodeJson,
  encodeJson,
  ensureConsumer,
  ensureOrderedTakeover,
  EventLog,
  foldFlowHistory,
  HandBack,
  Kvm,
  newId,
  startConsumerLoop,
  type Decoded,
  type JsMsg,
} from '@taskstream/nats';
import { FlowCache, flowHistory } from './flow-cache.js';
import { PartitionOwner, type ServiceContext, type ServiceHandle } from '@taskstream/runtime';

export interface PlannerOptions {
  /** Prefix of the durable consumers, one per partition (`planner-p3`), shared by all instances. */
  consumer?: string;
  instanceId?: string;
  /** Lease length for partition ownership; a dead instance's flows move after at most this. */
  leaseMs?: number;
  maxDeliver?: number;
  /** Flows kept in memory at most; the least recently used are dropped and rebuilt from the log on demand. */
  maxCachedFlows?: number;
}

/** Terminal decisions the planner itself makes about a task. */
const PLANNER_TERMINALS = ['task.failed', 'task.skipped', 'task.upstream_failed', 'task.cancelled'] as const;

/**
 * Whether `draft` readies a task this process already decided to end: the decider is deterministic,
 * so this never happens, but a ready after a terminal event would run a finished task's step.
 */
function endedHere(emitted: ReadonlySet<string>, draft: EventDraft): boolean {
  return draft.type === 'task.ready' && PLANNER_TERMINALS.some((type) => emitted.has(`${draft.flow_id}:${draft.task_id}:${type}`));
}

/**
 * Folds every flow's events in stream order with the pure decider and appends its decisions.
 * Each event is acknowledged only after its decisions are stored.
 */
export async function startPlanner(ctx: ServiceContext, options: PlannerOptions = {}): Promise<ServiceHandle> {
  const consumer = options.consumer ?? 'planner';
  const maxDeliver = options.maxDeliver ?? 10;
  const maxCached = options.maxCachedFlows ?? 50_000;
  const log = new EventLog(ctx.js, ctx.topo);
  const history = await flowHistory(ctx);
  const cache = new FlowCache(history, maxCached);

  async function handle(event: FlowEvent, msg: JsMsg): Promise<void> {
    try {
      await plan(event, msg);
    } catch (error) {
      // The fold may have moved ahead of what was stored: forget the flow, so the redelivery
      // rebuilds it from the log and re-decides everything not yet recorded.
      cache.forget(event.flow_id);
      throw error;
    }
  }

  async function plan(event: FlowEvent, msg: JsMsg): Promise<void> {
    const loaded = await cache.load(event, msg.seq, msg.info.deliveryCount);
    if (!loaded) {
      ctx.log.warn({ flow_id: event.flow_id, type: event.type, seq: msg.seq }, 'event for a flow that was never submitted; ignored');
      return;
    }
    const { flow, rebuilt } = loaded;
    let drafts;
    if (rebuilt) {
      drafts = decideAll(flow.state);
    } else if (msg.seq > flow.state.last_seq || event.type === 'flow.submitted') {
      evolve(flow.state, event, msg.seq);
      drafts = decide(flow.state, event);
    } else if (msg.info.deliveryCount === 1) {
      return;
    } else {
      // Redelivered behind newer events of its flow (its ack was lost, e.g. while a consumer
      // leader moved): memory may lack it. Refold from the log and re-decide everything.
      const refolded = await history.fold(event.flow_id, flow.state.last_seq);
      if (refolded === null) return;
      flow.state = refolded;
      drafts = decideAll(refolded);
    }
    const timeoutSecs = flow.state.definition.timeout_secs;
    if (event.type === 'flow.started' && timeoutSecs !== undefined && !isTerminalFlow(flow.state)) {
      const deadline = flowDeadline(event.flow_id, timeoutSecs, event.time);
      await ctx.js.publish(timerSubject(ctx.topo.layout, event.flow_id), encodeJson(deadline), { msgID: `${event.flow_id}:deadline` });
    }
    let fresh = drafts.filter((d) => !flow.emitted.has(d.key) && !endedHere(flow.emitted, d));
    const start = fresh.find((d) => d.type === 'flow.started');
    if (start !== undefined) {
      // Nothing else of a flow is decided before its start is stored exactly once: a submission
      // delivered again after its flow started (a replayed partition, a consumer reset) must fold
      // the flow's history instead of starting it, and finished flows then decide nothing.
      if (!(await log.appendFirst(start, Date.parse(event.time)))) {
        ctx.log.warn({ flow_id: event.flow_id, seq: msg.seq }, 'submission of a flow that already started delivered again; folding its history instead');
        const refolded = await history.fold(event.flow_id);
        if (refolded === null) return;
        flow.state = refolded;
        fresh = decideAll(refolded).filter((d) => !flow.emitted.has(d.key));
      }
      flow.emitted.add(start.key);
      fresh = fresh.filter((d) => d.key !== start.key);
    }
    if (fresh.length > 0) {
      await log.appendDecisions(fresh, Date.parse(event.time));
      for (const d of fresh) flow.emitted.add(d.key);
    }
    if (isTerminalFlow(flow.state)) cache.forget(event.flow_id);
  }

  const deadLetters = new DeadLetters(ctx.js, ctx.topo);
  // Each partition's events are folded in stream order by exactly one instance at a time.
  const owner = new PartitionOwner({
    kv: await new Kvm(ctx.js).open(ctx.topo.leasesBucket),
    role: consumer,
    instanceId: options.instanceId ?? `${hostname()}:${process.pid}:${newId().slice(-6)}`,
    partitions: ctx.topo.layout.partitions,
    ...(options.leaseMs !== undefined && { leaseMs: options.leaseMs }),
    log: ctx.log,
    start: async (partition) => {
      const name = `${consumer}-p${partition}`;
      const config = { durable_name: name, filter_subject: partitionFilter(ctx.topo.layout, partition), max_deliver: maxDeliver, ack_wait: 30_000_000_000, max_ack_pending: 20_000 };
      await ensureOrderedTakeover(ctx.jsm, ctx.topo.eventsStream, config);
      // After a failure (a server restart), messages whose acks were lost would come back behind
      // newer ones: restart from the ack floor to keep stream order.
      const loop = await startConsumerLoop({ js: ctx.js, stream: ctx.topo.eventsStream, consumer: name, source: 'planner', decode: decodeEvent, handle, deadLetters, log: ctx.log, maxDeliver, beforeRestart: () => ensureOrderedTakeover(ctx.jsm, ctx.topo.eventsStream, config) });
      return async () => {
        await loop.stop();
        cache.forgetPartition(partition, ctx.topo.layout.partitions);
      };
    },
  });
  await owner.start();

  // Flow deadlines: any instance may fire one. A deadline not yet due goes back to JetStream for
  // the time that remains; a due one records flow.deadline_passed, which the partition's owner
  // folds like a cancel request.
  const timersConsumer = `${consumer}-timers`;
  await ensureConsumer(ctx.jsm, ctx.topo.timersStream, {
    durable_name: timersConsumer,
    max_deliver: -1,
    ack_wait: 30_000_000_000,
    // Deadlines waiting for their time count as pending: the limit must exceed the flows in flight.
    max_ack_pending: 1_000_000,
  });
  const timers = await startConsumerLoop({
    js: ctx.js,
    stream: ctx.topo.timersStream,
    consumer: timersConsumer,
    source: 'planner-timers',
    decode: decodeDeadline,
    handle: async (deadline) => {
      const remaining = Date.parse(deadline.due_at) - Date.now();
      if (remaining > 0) throw new HandBack('deadline not due', remaining);
      const state = await foldFlowHistory(ctx.js, ctx.topo, deadline.flow_id);
      if (state === null || TERMINAL_FLOW_STATUSES.has(state.status) || state.deadline_passed_at !== undefined) return;
      await log.appendNew({ type: 'flow.deadline_passed', flow_id: deadline.flow_id, data: { timeout_secs: deadline.timeout_secs } }, `${deadline.flow_id}:flow.deadline_passed`);
      ctx.log.info({ flow_id: deadline.flow_id, timeout_secs: deadline.timeout_secs }, 'flow deadline passed');
    },
    deadLetters,
    log: ctx.log,
    maxDeliver: Number.MAX_SAFE_INTEGER,
    concurrency: 16,
  });
  ctx.log.info({ consumer, partitions: owner.partitions }, 'planner started');
  return {
    name: 'planner',
    async stop() {
      await timers.stop();
      await owner.stop();
    },
  };
}

function decodeDeadline(data: Uint8Array): Decoded<FlowDeadline> {
  const json = decodeJson(data);
  if (!json.ok) return json;
  const parsed = FlowDeadline.safeParse(json.value);
  return parsed.success ? { ok: true, value: parsed.data } : { ok: false, reason: `invalid flow deadline: ${parsed.error.issues[0]?.message ?? 'unknown'}` };
}
