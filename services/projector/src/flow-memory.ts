import { FlowTally, partitionOf, type FlowState } from '@taskstream/domain';
import type { ProjectedFlow } from './view-store.js';

/**
 * What the projector remembers between events: the flows it holds (least recently added are
 * dropped past a bound), and for flows not held whose stored view was found at or beyond an event
 * read (a consumer replaying from an earlier position), that view's sequence, so their further old
 * events are skipped without reading the store again. A stored view only moves forward, so an
 * entry never goes wrong, only stale.
 */
export class FlowMemory {
  private readonly flows = new Map<string, ProjectedFlow>();
  private readonly storedAhead = new Map<string, number>();

  constructor(
    private readonly max: number,
    private readonly partitions: number,
    /** Told of every flow no longer held, so what was kept to fold it again (its definition) may go. */
    private readonly released: (flowId: string) => void = () => {},
  ) {}

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
    if (this.flows.delete(flowId)) this.released(flowId);
  }

  /** Whether the stored view of a flow not held is known to reflect `seq` already. */
  storedAt(flowId: string, seq: number): boolean {
    const ahead = this.storedAhead.get(flowId);
    return ahead !== undefined && ahead >= seq;
  }

  rememberStored(flowId: string, seq: number): void {
    this.storedAhead.set(flowId, seq);
    if (this.storedAhead.size > this.max) this.storedAhead.delete(this.storedAhead.keys().next().value!);
  }

  /** Another instance owns `partition` now: what was remembered of its flows may go stale. */
  forgetPartition(partition: number): void {
    for (const flowId of [...this.flows.keys()]) if (partitionOf(flowId, this.partitions) === partition) this.forget(flowId);
    for (const flowId of [...this.storedAhead.keys()]) if (partitionOf(flowId, this.partitions) === partition) this.storedAhead.delete(flowId);
  }
}
