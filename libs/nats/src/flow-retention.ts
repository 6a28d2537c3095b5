import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { eventSubject, flowIdOfSubject, isExpired, partitionTypeFilter, TERMINAL_FLOW_EVENTS } from '@taskstream/domain';
import type { ArtifactStore } from './artifacts.js';
import type { Definitions } from './definitions.js';
import type { FlowSummaryStore } from './flow-summaries.js';
import type { FlowViewStore } from './flow-views.js';
import { purgeFlowEvents, readEventsDirect } from './history.js';
import type { Topology } from './topology.js';

/** How long a removed summary's marker stays, so that every gateway's watch (and one reconnecting) sees the removal. */
export const SUMMARY_MARKER_MS = 30 * 60_000;
/** Markers waiting to be dropped, at most; past it the oldest is dropped at once. */
const MAX_MARKERS = 200_000;

export interface FlowRetentionStores {
  js: JetStreamClient;
  topo: Topology;
  views: FlowViewStore;
  summaries: FlowSummaryStore;
  definitions: Definitions;
  artifacts: ArtifactStore;
}

/**
 * Removes the flows that ended longer ago than the retention: their artifacts, stored definition,
 * view, summary and, last, their events. A flow that a rerun or fork still in the log derives from
 * is kept until that one is removed (the rerun's tasks read the artifacts it reuses where the
 * parent stored them). A flow is found by its terminal event (stored in the
 * order flows end), so a walk of a partition's terminal events stops at the first flow still
 * kept, and a removal cut short (a crash, a lost connection) is found and finished by the next
 * walk. Each owner module removes what it owns; this decides when.
 */
export class FlowRetention {
  /** Per partition and terminal type, the sequence the next walk starts from: everything before it is removed. */
  private readonly cursors = new Map<string, number>();
  /** Summaries removed, oldest first, with when: their markers are still to be dropped. */
  private readonly markers = new Map<string, number>();

  constructor(
    private readonly stores: FlowRetentionStores,
    private readonly retentionMs: number,
    /** Told of each flow removed, once it is gone. */
    private readonly removed: (flowId: string) => void = () => {},
  ) {}

  /**
   * Per partition, flows past their retention that a rerun or fork still in the log derives from:
   * its tasks may read their artifacts, so they stay until it is removed, and are looked at again
   * by each sweep. Forgotten with the process: the next walk from the start finds them again.
   */
  private readonly held = new Map<number, Set<string>>();

  /** Removes the partition's flows that ended `retentionMs` or longer before `now`; returns how many. */
  async sweep(partition: number, now = Date.now()): Promise<number> {
    const { js, topo } = this.stores;
    const jsm = await js.jetstreamManager();
    const held = this.held.get(partition) ?? new Set<string>();
    this.held.set(partition, held);
    let count = 0;
    for (const flowId of held) {
      if (await this.removeUnlessDerived(jsm, flowId, now)) {
        held.delete(flowId);
        count++;
      }
    }
    for (const type of TERMINAL_FLOW_EVENTS) {
      const filter = partitionTypeFilter(topo.layout, partition, type);
      for (let seq = this.cursors.get(filter) ?? 1; ; ) {
        const ended = await jsm.direct.getMessage(topo.eventsStream, { next_by_subj: filter, seq });
        if (ended === null || !isExpired(ended.time.getTime(), now, this.retentionMs)) break;
        const flowId = flowIdOfSubject(topo.layout, ended.subject);
        if (flowId !== undefined) {
          if (await this.removeUnlessDerived(jsm, flowId, now)) count++;
          else held.add(flowId);
        }
        seq = ended.seq + 1;
        this.cursors.set(filter, seq);
      }
    }
    await this.dropMarkers(now);
    return count;
  }

  /** Removes the flow unless a rerun or fork of it is still in the log; whether it did. */
  private async removeUnlessDerived(jsm: JetStreamManager, flowId: string, now: number): Promise<boolean> {
    const { js, topo } = this.stores;
    const derived = await readEventsDirect(js, topo.eventsStream, eventSubject(topo.layout, flowId, 'flow.derived'), 0);
    for (const stored of derived) {
      if (!('event' in stored) || stored.event.type !== 'flow.derived') continue;
      // Asked of the stream's leader: a replica that has not caught up would answer "none" for a new child.
      if ((await jsm.streams.getMessage(topo.eventsStream, { last_by_subj: eventSubject(topo.layout, stored.event.data.child_flow_id, 'flow.submitted') })) !== null) return false;
    }
    await this.remove(flowId, now);
    return true;
  }

  private async remove(flowId: string, now: number): Promise<void> {
    const { js, topo, views, summaries, definitions, artifacts } = this.stores;
    // The artifacts are found through the flow's events, and the flow through its terminal event: events go last.
    await artifacts.removeFlow(flowId);
    await definitions.remove(flowId);
    await views.remove(flowId);
    await summaries.remove(flowId);
    this.markers.delete(flowId);
    this.markers.set(flowId, now);
    await purgeFlowEvents(js, topo, flowId);
    this.removed(flowId);
  }

  private async dropMarkers(now: number): Promise<void> {
    const jsm = await this.stores.js.jetstreamManager();
    for (const [flowId, at] of this.markers) {
      if (this.markers.size <= MAX_MARKERS && at > now - SUMMARY_MARKER_MS) break;
      await this.stores.summaries.dropMarker(jsm, flowId);
      this.markers.delete(flowId);
    }
  }
}
