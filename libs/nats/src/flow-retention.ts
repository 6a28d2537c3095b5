import type { JetStreamClient } from '@nats-io/jetstream';
import { flowIdOfSubject, isExpired, partitionTypeFilter, TERMINAL_FLOW_EVENTS } from '@taskstream/domain';
import type { ArtifactStore } from './artifacts.js';
import type { Definitions } from './definitions.js';
import type { FlowSummaryStore } from './flow-summaries.js';
import type { FlowViewStore } from './flow-views.js';
import { purgeFlowEvents } from './history.js';
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
 * view, summary and, last, their events. A flow is found by its terminal event (stored in the
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

  /** Removes the partition's flows that ended `retentionMs` or longer before `now`; returns how many. */
  async sweep(partition: number, now = Date.now()): Promise<number> {
    const { js, topo } = this.stores;
    const jsm = await js.jetstreamManager();
    let count = 0;
    for (const type of TERMINAL_FLOW_EVENTS) {
      const filter = partitionTypeFilter(topo.layout, partition, type);
      for (let seq = this.cursors.get(filter) ?? 1; ; ) {
        const ended = await jsm.direct.getMessage(topo.eventsStream, { next_by_subj: filter, seq });
        if (ended === null || !isExpired(ended.time.getTime(), now, this.retentionMs)) break;
        const flowId = flowIdOfSubject(topo.layout, ended.subject);
        if (flowId !== undefined) {
          await this.remove(flowId, now);
          count++;
        }
        seq = ended.seq + 1;
        this.cursors.set(filter, seq);
      }
    }
    await this.dropMarkers(now);
    return count;
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
