import { evolve, isTerminalFlow, TASK_PAGE_SIZE, type FlowEvent, type FlowState } from '@taskstream/domain';
import { foldFlowHistory, markSettled, type Definitions, type FlowViewStore, type JsMsg } from '@taskstream/nats';
import type { ServiceContext } from '@taskstream/runtime';
import type { FlowMemory } from './flow-memory.js';
import { eventProjected } from './metrics.js';
import type { PendingFlow } from './view-batch.js';
import type { TouchedTasks } from './view-store.js';
import type { WriteBatch } from './write-batch.js';

/** Where an event goes: folded into a flow held in memory, skipped, or the flow refolded from the log. */
interface Folded {
  flow: PendingFlow['flow'];
  tasks: TouchedTasks;
}

/**
 * Folds each event into its flow's state and hands the flow to the write batch; the event's
 * message is acknowledged once the batch has stored the views. Views and summaries are functions
 * of the fold, so whatever is folded again (a redelivery, a replay) stores the same values.
 */
export class Projection {
  constructor(
    private readonly ctx: ServiceContext,
    private readonly memory: FlowMemory,
    private readonly views: FlowViewStore,
    private readonly definitions: Definitions,
    private readonly batch: WriteBatch<PendingFlow>,
  ) {}

  async handle(event: FlowEvent, msg: JsMsg): Promise<void> {
    try {
      const hydrated = event.type === 'flow.submitted' ? await this.definitions.hydrate(event) : event;
      const folded = await this.fold(hydrated, msg);
      if (folded === undefined) return;
      markSettled(msg);
      this.batch.hold(msg, event.flow_id, folded);
      eventProjected(event.type);
      if (isTerminalFlow(folded.flow.state)) this.memory.forget(event.flow_id);
      if (this.batch.due(msg)) await this.batch.flush();
    } catch (error) {
      // Nothing of this event was folded (every read comes before the fold); forget the flow so the
      // redelivery starts again from the store and the log.
      this.memory.forget(event.flow_id);
      throw error;
    }
  }

  private async fold(event: FlowEvent, msg: JsMsg): Promise<Folded | undefined> {
    const flow = this.memory.get(event.flow_id);
    // Tasks added while the flow runs get their own keys in a paged view.
    const touched: TouchedTasks = new Set('task_id' in event ? [event.task_id] : event.type === 'flow.tasks_added' ? event.data.tasks.map((t) => t.id) : []);
    if (flow === undefined) return this.take(event, msg, touched);
    if (msg.seq > flow.state.last_seq) {
      evolve(flow.state, event, msg.seq);
      return { flow, tasks: touched };
    }
    if (msg.seq <= flow.completeThrough) return undefined;
    // Delivered behind newer events of its flow: its first delivery may have been lost (a server
    // restart, a consumer leader moving), whatever the delivery count says, and the newer events
    // folded without it. Refold once; older deliveries after that are known to be in the state.
    const refolded = await foldFlowHistory(this.ctx.js, this.ctx.topo, event.flow_id, flow.state.last_seq);
    if (refolded === null) return undefined;
    flow.state = refolded;
    flow.completeThrough = refolded.last_seq;
    return { flow, tasks: 'all' };
  }

  /**
   * A flow not in memory: new, finished and evicted, or read again (a redelivery, or a consumer
   * replaying from an earlier position). An event the stored view already reflects, its
   * flow.submitted too, must not overwrite that view with an older state.
   */
  private async take(event: FlowEvent, msg: JsMsg, touched: TouchedTasks): Promise<Folded | undefined> {
    if (this.memory.storedAt(event.flow_id, msg.seq)) return undefined;
    const stored = await this.views.header(event.flow_id);
    if (stored && stored.last_seq >= msg.seq) {
      this.memory.rememberStored(event.flow_id, stored.last_seq);
      return undefined;
    }
    let state: FlowState;
    let tasks = touched;
    const handedOver = this.memory.handedOverAt(event.flow_id);
    if (handedOver !== undefined && handedOver >= msg.seq) {
      // This process let the flow go at a later state that may not be stored yet: the state of this
      // event, written now, would land after it and take the view back. Fold up to that state instead.
      const refolded = await foldFlowHistory(this.ctx.js, this.ctx.topo, event.flow_id, handedOver);
      if (refolded === null) return undefined;
      state = refolded;
      tasks = 'all';
    } else if (event.type === 'flow.submitted') {
      state = evolve(null, event, msg.seq)!;
      tasks = 'all';
    } else {
      const prior = await foldFlowHistory(this.ctx.js, this.ctx.topo, event.flow_id, msg.seq - 1);
      if (prior === null) return undefined;
      // A stored view of the same sequence is this very fold: only what the event touches changes.
      if (stored?.last_seq !== prior.last_seq) tasks = 'all';
      state = evolve(prior, event, msg.seq)!;
    }
    // A view paged before pages existed is written again whole, in pages, and its task keys deleted.
    const keyPerTask = stored?.tasks_paged === true && stored.task_page_size === undefined;
    return { flow: this.memory.hold(event.flow_id, state, stored?.task_page_size === TASK_PAGE_SIZE, keyPerTask), tasks };
  }
}
