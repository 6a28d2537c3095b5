import { evolve, partitionOf, type FlowEvent, type FlowState } from '@taskstream/domain';
import { definitionsOf, foldFlowHistory } from '@taskstream/nats';
import type { ServiceContext } from '@taskstream/runtime';

/** A flow the planner holds in memory while it runs. */
export interface CachedFlow {
  state: FlowState;
  /** Keys of decisions already appended, so a decision is published once per process. */
  emitted: Set<string>;
  /**
   * Every event of the flow up to this sequence is in `state`: it was folded from the log. Events
   * after it arrived one by one, and one may have been lost in transit and come again later.
   */
  completeThrough: number;
}

/** A flow as the log holds it: what the cache falls back on for anything not in memory. */
export interface FlowHistory {
  /** The state a submission starts, its definition hydrated from the definitions store. */
  submitted(event: FlowEvent, seq: number): Promise<FlowState | null>;
  /** The flow folded from its whole log, or up to and including `untilSeq`; null when it was never submitted. */
  fold(flowId: string, untilSeq?: number): Promise<FlowState | null>;
  /** The cache no longer holds the flow: what was kept to fold it again may go. */
  release(flowId: string): void;
}

/** The event log and the definitions store as a `FlowHistory`. */
export async function flowHistory(ctx: Pick<ServiceContext, 'js' | 'topo'>): Promise<FlowHistory> {
  const definitions = await definitionsOf(ctx.js, ctx.topo);
  return {
    submitted: async (event, seq) => evolve(null, await definitions.hydrate(event), seq),
    fold: (flowId, untilSeq) => foldFlowHistory(ctx.js, ctx.topo, flowId, untilSeq),
    release: (flowId) => definitions.release(flowId),
  };
}

export interface LoadedFlow {
  flow: CachedFlow;
  /** Rebuilt from the log rather than started by this event: its decisions are all re-decided. */
  rebuilt: boolean;
}

/**
 * Flows in memory, least recently used dropped beyond `maxFlows`; a flow not in memory is started
 * by its first submission or rebuilt from the log.
 */
export class FlowCache {
  // Map order is recency order: the first key is the least recently used.
  private readonly flows = new Map<string, CachedFlow>();

  constructor(
    private readonly history: FlowHistory,
    private readonly maxFlows: number,
  ) {}

  get size(): number {
    return this.flows.size;
  }

  has(flowId: string): boolean {
    return this.flows.has(flowId);
  }

  /** The flow `event` belongs to; undefined when the flow was never submitted. */
  async load(event: FlowEvent, seq: number, deliveryCount: number): Promise<LoadedFlow | undefined> {
    const cached = this.flows.get(event.flow_id);
    if (cached) {
      this.flows.delete(event.flow_id);
      this.flows.set(event.flow_id, cached);
      return { flow: cached, rebuilt: false };
    }
    // A first delivery of a submission starts a flow; anything else not in memory (a restart, an
    // eviction, another instance's flow, a replay, a redelivery after the flow finished) is rebuilt
    // from the whole log. A fold that stopped at this event would re-decide what later events
    // already record (a task readied again, after the de-duplication window: its step run twice).
    const starts = event.type === 'flow.submitted' && deliveryCount === 1;
    const state = starts ? await this.history.submitted(event, seq) : await this.history.fold(event.flow_id);
    if (state === null) return undefined;
    const flow = { state, emitted: new Set<string>(), completeThrough: state.last_seq };
    this.flows.set(event.flow_id, flow);
    if (this.flows.size > this.maxFlows) this.forget(this.flows.keys().next().value!);
    return { flow, rebuilt: !starts };
  }

  forget(flowId: string): void {
    this.flows.delete(flowId);
    this.history.release(flowId);
  }

  /** Forgets the flows of a partition this instance no longer owns. */
  forgetPartition(partition: number, partitions: number): void {
    for (const flowId of [...this.flows.keys()]) if (partitionOf(flowId, partitions) === partition) this.forget(flowId);
  }
}
