import { FlowTally, partitionOf, RecentMap, type FlowState } from '@taskstream/domain';
import type { ProjectedFlow } from './view-store.js';

/** Forgotten flows whose last state's sequence is kept: a late delivery comes within the ack wait. */
const HANDED_OVER_KEPT = 10_000;

/**
 * What the projector remembers between events: the flows it holds (least recently added are
 * dropped past a bound), and for flows not held whose stored view was found at or beyond an event
 * read (a consumer replaying from an earlier position), that view's sequence, so their further old
 * events are skipped without reading the store again. A stored view only moves forward, so an
 * entry never goes wrong, only stale.
 */
export class FlowMemory {
  private readonly flows = new Map<string, ProjectedFlow>();
  private readonly storedAhead: RecentMap<string, number>;
  /** Flows let go, with the sequence of the state they were let go with (see handedOverAt). */
  private readonly handedOver = new RecentMap<string, number>(HANDED_OVER_KEPT);

  constructor(
    private readonly max: number,
    private readonly partitions: number,
    /** Told of every flow no longer held, so what was kept to fold it again (its definition) may go. */
    private readonly released: (flowId: string) => void = () => {},
  ) {
    this.storedAhead = new RecentMap(max);
  }

  get(flowId: string): ProjectedFlow | undefined {
    return this.flows.get(flowId);
  }

  hold(flowId: string, state: FlowState, paged: boolean, keyPerTask = false): ProjectedFlow {
    const flow = { state, paged, completeThrough: state.last_seq, tally: new FlowTally(), ...(keyPerTask && { keyPerTask }) };
    this.storedAhead.delete(flowId);
    this.flows.set(flowId, flow);
    if (this.flows.size > this.max) this.forget(this.flows.keys().next().value!);
    return flow;
  }

  forget(flowId: string): void {
    const flow = this.flows.get(flowId);
    if (flow === undefined) return;
    this.flows.delete(flowId);
    this.handedOver.set(flowId, flow.state.last_seq);
    this.released(flowId);
  }

  /**
   * The sequence of the state a recently forgotten flow was let go with. That state may still be on
   * its way to the store (a flow is let go as soon as its end is folded, before the batch holding it
   * is written), so a state older than it, folded for a late delivery, must not be written after it.
   */
  handedOverAt(flowId: string): number | undefined {
    return this.handedOver.get(flowId);
  }

  /** Whether the stored view of a flow not held is known to reflect `seq` already. */
  storedAt(flowId: string, seq: number): boolean {
    const ahead = this.storedAhead.get(flowId);
    return ahead !== undefined && ahead >= seq;
  }

  rememberStored(flowId: string, seq: number): void {
    this.storedAhead.set(flowId, seq);
  }

  /** Another instance owns `partition` now: what was remembered of its flows may go stale. */
  forgetPartition(partition: number): void {
    for (const flowId of [...this.flows.keys()]) if (partitionOf(flowId, this.partitions) === partition) this.forget(flowId);
    for (const flowId of [...this.storedAhead.keys()]) if (partitionOf(flowId, this.partitions) === partition) this.storedAhead.delete(flowId);
  }
}
