import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { eventSubject, flowIdOfSubject, foldedAfterEnd, isExpired, partitionTypeFilter, TERMINAL_FLOW_EVENTS } from '@taskstream/domain';
import { Kvm } from '@nats-io/kv';
import { ArtifactStore } from './artifacts.js';
import { Definitions } from './definitions.js';
import { FlowSummaryStore } from './flow-summaries.js';
import { FlowViewStore } from './flow-views.js';
import { purgeFlowEvents, readEventsDirect } from './history.js';
import { silentLogger, type Logger } from './logger.js';
import type { Topology } from './topology.js';

/** How long a removed summary's marker stays, so that every gateway's watch (and one reconnecting) sees the removal. */
export const SUMMARY_MARKER_MS = 30 * 60_000;
/** After a failed read of the markers earlier processes left, the next try waits this long. */
const MARKERS_READ_RETRY_MS = 60_000;
/** Markers waiting to be dropped, at most; past it the oldest is dropped at once. */
const MAX_MARKERS = 200_000;

export interface FlowRetentionStores {
  js: JetStreamClient;
  topo: Topology;
  views: FlowViewStore;
  summaries: FlowSummaryStore;
  definitions: Definitions;
  artifacts: ArtifactStore;
  /**
   * A time before which every event of the partition stored has been folded into the views (see
   * foldedAfterEnd): a flow whose events may not all be folded yet could be written back by a
   * write still to come, so it waits. Absent: no such wait.
   */
  foldedBefore?: (partition: number) => Promise<number>;
}

/** Flows one sweep of a partition removes at most; a sweep that reached it says there is more. */
export const REMOVALS_PER_SWEEP = 200;

/** What one sweep of a partition did. */
export interface SweepResult {
  removed: number;
  /** It stopped at REMOVALS_PER_SWEEP with flows past their retention left: sweep again soon. */
  more: boolean;
}

/**
 * Removes the flows that ended longer ago than the retention: their artifacts, stored definition,
 * view, summary and, last, their events. A flow is found by its terminal event (stored in the
 * order flows end), so a walk of a partition's terminal events stops at the first flow still
 * kept, and a removal cut short (a crash, a lost connection) is found and finished by the next
 * walk. Two kinds of flow past their retention are held and looked at again by each sweep: one
 * that a rerun or fork still in the log derives from (its tasks read the artifacts it reuses where
 * the parent stored them), and one whose events may not all be folded into its view yet (a write
 * still to come would bring the view back). Each owner module removes what it owns; this decides when.
 */
export class FlowRetention {
  /** Per partition and terminal type, the sequence the next walk starts from: everything before it is removed or held. */
  private readonly cursors = new Map<string, number>();
  /** Per partition, the flows held (see above), with when each ended. Forgotten with the process: the next walk from the start finds them again. */
  private readonly held = new Map<number, Map<string, number>>();
  /** Summaries removed, oldest first, with when: their markers are still to be dropped. */
  private readonly markers = new Map<string, number>();
  /** Whether the markers left by earlier processes are read into `markers`, and when a failed read may be tried again. */
  private earlierMarkers: { read: true } | { retryAt: number } = { retryAt: 0 };

  constructor(
    private readonly stores: FlowRetentionStores,
    private readonly retentionMs: number,
    /** Told of each flow removed, once it is gone. */
    private readonly removed: (flowId: string) => void = () => {},
    private readonly log: Logger = silentLogger,
  ) {}

  /** A FlowRetention over the installation's stores, opening those `given` does not bring. */
  static async open(js: JetStreamClient, topo: Topology, retentionMs: number, given: Partial<FlowRetentionStores> = {}, removed?: (flowId: string) => void, log?: Logger): Promise<FlowRetention> {
    const kvm = new Kvm(js);
    const stores: FlowRetentionStores = {
      js,
      topo,
      views: given.views ?? new FlowViewStore(js, await kvm.open(topo.flowsBucket), topo.flowsBucket),
      summaries: given.summaries ?? new FlowSummaryStore(await kvm.open(topo.summariesBucket), topo.summariesBucket),
      definitions: given.definitions ?? (await Definitions.open(js, topo)),
      artifacts: given.artifacts ?? (await ArtifactStore.open(js, topo)),
      ...(given.foldedBefore && { foldedBefore: given.foldedBefore }),
    };
    return new FlowRetention(stores, retentionMs, removed, log);
  }

  /** Removes the partition's flows that ended `retentionMs` or longer before `now`, at most REMOVALS_PER_SWEEP. */
  async sweep(partition: number, now = Date.now()): Promise<SweepResult> {
    const { js, topo } = this.stores;
    const jsm = await js.jetstreamManager();
    // Asked only once a flow past its retention is found, and once a sweep.
    let asked: Promise<number> | undefined;
    const folded = () => (asked ??= this.stores.foldedBefore?.(partition) ?? Promise.resolve(Number.MAX_SAFE_INTEGER));
    const held = this.held.get(partition) ?? new Map<string, number>();
    this.held.set(partition, held);
    let removed = 0;
    for (const [flowId, endedAt] of held) {
      if (removed === REMOVALS_PER_SWEEP) return { removed, more: true };
      if (await this.removeUnlessHeld(jsm, flowId, endedAt, folded, now)) {
        held.delete(flowId);
        removed++;
      }
    }
    for (const type of TERMINAL_FLOW_EVENTS) {
      const filter = partitionTypeFilter(topo.layout, partition, type);
      for (let seq = this.cursors.get(filter) ?? 1; ; ) {
        const ended = await jsm.direct.getMessage(topo.eventsStream, { next_by_subj: filter, seq });
        if (ended === null || !isExpired(ended.time.getTime(), now, this.retentionMs)) break;
        if (removed === REMOVALS_PER_SWEEP) return { removed, more: true };
        const flowId = flowIdOfSubject(topo.layout, ended.subject);
        if (flowId !== undefined) {
          if (await this.removeUnlessHeld(jsm, flowId, ended.time.getTime(), folded, now)) removed++;
          else held.set(flowId, ended.time.getTime());
        }
        seq = ended.seq + 1;
        this.cursors.set(filter, seq);
      }
    }
    await this.dropMarkers(now);
    return { removed, more: false };
  }

  /** Removes the flow unless it is to be held (see FlowRetention); whether it did. */
  private async removeUnlessHeld(jsm: JetStreamManager, flowId: string, endedAt: number, foldedBefore: () => Promise<number>, now: number): Promise<boolean> {
    const { js, topo } = this.stores;
    if (!foldedAfterEnd(endedAt, await foldedBefore(), this.retentionMs)) return false;
    const derived = await readEventsDirect(js, topo.eventsStream, eventSubject(topo.layout, flowId, 'flow.derived'), 0);
    for (const stored of derived) {
      if (!('event' in stored) || stored.event.type !== 'flow.derived') continue;
      // Asked of the stream's leader: a replica behind would answer "none" for a rerun just made.
      if ((await jsm.streams.getMessage(topo.eventsStream, { last_by_subj: eventSubject(topo.layout, stored.event.data.child_flow_id, 'flow.submitted') })) !== null) return false;
    }
    await this.remove(flowId, now);
    return true;
  }

  private async remove(flowId: string, now: number): Promise<void> {
    const { js, topo, views, summaries, definitions, artifacts } = this.stores;
    // The artifacts are found through the flow's events, and the flow through its terminal event: events go last.
    await Promise.all([artifacts.removeFlow(flowId), definitions.remove(flowId), views.remove(flowId), summaries.remove(flowId)]);
    this.markers.delete(flowId);
    this.markers.set(flowId, now);
    await purgeFlowEvents(js, topo, flowId);
    this.removed(flowId);
  }

  /**
   * Reads the markers earlier processes left into `markers`, once, after this process's first
   * removals: a read that fails stops nothing, and is logged and tried again a minute later.
   */
  private async readEarlierMarkers(now: number): Promise<void> {
    if ('read' in this.earlierMarkers || now < this.earlierMarkers.retryAt) return;
    let earlier: Array<{ flowId: string; at: number }>;
    try {
      earlier = await this.stores.summaries.markers(this.stores.js);
    } catch (error) {
      this.earlierMarkers = { retryAt: now + MARKERS_READ_RETRY_MS };
      this.log.warn({ err: (error as Error).message }, 'could not read the removal markers earlier processes left (they stay until read); trying again in a minute');
      return;
    }
    this.earlierMarkers = { read: true };
    // Oldest first, as dropMarkers walks them: the earlier ones may be older than this process's own.
    const all = [...earlier.filter(({ flowId }) => !this.markers.has(flowId)).map(({ flowId, at }) => [flowId, at] as const), ...this.markers];
    this.markers.clear();
    for (const [flowId, at] of all.sort((a, b) => a[1] - b[1])) this.markers.set(flowId, at);
  }

  private async dropMarkers(now: number): Promise<void> {
    await this.readEarlierMarkers(now);
    const jsm = await this.stores.js.jetstreamManager();
    for (const [flowId, at] of this.markers) {
      if (this.markers.size <= MAX_MARKERS && at > now - SUMMARY_MARKER_MS) break;
      await this.stores.summaries.dropMarker(jsm, flowId);
      this.markers.delete(flowId);
    }
  }
}
