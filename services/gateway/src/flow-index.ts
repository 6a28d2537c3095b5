import { sumQueueLoads, type FlowStatus, type FlowSummary, type QueueLoad, type QueueStatsView } from '@taskstream/domain';
import type { FlowSummaryStore, SummaryChange } from '@taskstream/nats';

export interface FlowQuery {
  status?: FlowStatus[];
  queue?: string;
  since?: string;
  until?: string;
  name?: string;
  /** Label key and value pairs a flow must all carry. */
  labels?: ReadonlyArray<readonly [string, string]>;
  /** The template a flow was run from (origin.template.name). */
  template?: string;
  /** The schedule that started a flow (origin.schedule.id). */
  schedule?: string;
  limit: number;
  /** The last flow id of the previous page. */
  after?: string;
}

/** What the index lists: every summary, the queues' loads, and the ids sorted once asked. */
interface Listing {
  byId: Map<string, FlowSummary>;
  loads: Map<string, Map<string, QueueLoad>>;
  sorted?: string[];
}

/** How long a first read of every summary may take before the index serves what it has read. */
const FIRST_READ_MS = 5_000;

/**
 * The flows list, kept in memory from the projector's summaries by a KV watch. Pages are ordered
 * newest first by flow id (a ULID, so by submission time) and continue strictly after the cursor's
 * id, so flows submitted while a client pages through never shift or repeat what it sees.
 *
 * Queue statistics are the sum of the summaries' loads (each a function of its flow's fold), kept
 * by queue so a read adds up only that queue's flows.
 *
 * A watch learns that retention removed a flow from the removal marker its summary leaves, and
 * markers are dropped after a while (SUMMARY_MARKER_MS). A watch cut off for longer may never see
 * some: `readAgain` replaces the listing with one read afresh.
 */
export class FlowIndex {
  private listing: Listing = { byId: new Map(), loads: new Map() };
  private stopWatch: (() => void) | undefined;
  /** Counts reads begun: only the latest may install its listing. */
  private reads = 0;
  private stopped = false;

  private constructor(
    private readonly store: FlowSummaryStore,
    private readonly corrupt: (error: Error) => void,
  ) {}

  static async open(store: FlowSummaryStore, corrupt: (error: Error) => void): Promise<FlowIndex> {
    const index = new FlowIndex(store, corrupt);
    await index.read(FIRST_READ_MS);
    return index;
  }

  /**
   * Reads every summary again and lists what it finds once all are read, serving the previous
   * listing meanwhile. A later read supersedes one still under way. A read that fails (JetStream
   * may not answer yet just after a reconnect) is told to `failed` and tried again, a second later
   * and doubling up to a minute, until one succeeds or the index stops.
   */
  async readAgain(failed: (error: unknown, retryInMs: number) => void): Promise<void> {
    for (let attempt = 1; !this.stopped; attempt++) {
      try {
        await this.read();
        return;
      } catch (error) {
        if (this.stopped) return;
        const retryInMs = Math.min(60_000, 1_000 * 2 ** (attempt - 1));
        failed(error, retryInMs);
        await new Promise((resolve) => setTimeout(resolve, retryInMs).unref());
      }
    }
  }

  /** Reads every summary into a new listing; at start, serves what was read after `patienceMs`. */
  private async read(patienceMs?: number): Promise<void> {
    const read = ++this.reads;
    const listing: Listing = { byId: new Map(), loads: new Map() };
    let ready!: () => void;
    const initialized = new Promise<void>((r) => (ready = r));
    const stopWatch = await this.store.watch((change) => apply(listing, change), ready, this.corrupt);
    await (patienceMs === undefined ? initialized : Promise.race([initialized, new Promise((r) => setTimeout(r, patienceMs).unref())]));
    if (this.stopped || read !== this.reads) {
      stopWatch();
      return;
    }
    this.stopWatch?.();
    this.listing = listing;
    this.stopWatch = stopWatch;
  }

  /** A queue's statistics now: the loads of its flows added up. */
  queueStats(queue: string, now = new Date()): QueueStatsView {
    const stats = sumQueueLoads(queue, this.listing.loads.get(queue)?.values() ?? [], now);
    stats.minutes = Object.fromEntries(Object.entries(stats.minutes).sort(([a], [b]) => a.localeCompare(b)));
    return stats;
  }

  get(flowId: string): FlowSummary | undefined {
    return this.listing.byId.get(flowId);
  }

  query(q: FlowQuery): { flows: FlowSummary[]; next?: string } {
    const listing = this.listing;
    const sorted = (listing.sorted ??= [...listing.byId.keys()].sort().reverse());
    const flows: FlowSummary[] = [];
    let start = 0;
    if (q.after !== undefined) {
      // Binary search for the first id strictly older than the cursor.
      let lo = 0;
      let hi = sorted.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (sorted[mid]! >= q.after) lo = mid + 1;
        else hi = mid;
      }
      start = lo;
    }
    let i = start;
    for (; i < sorted.length && flows.length < q.limit; i++) {
      const summary = listing.byId.get(sorted[i]!);
      if (summary && matches(summary, q)) flows.push(summary);
    }
    const more = i < sorted.length && flows.length === q.limit;
    return { flows, ...(more && { next: flows.at(-1)!.flow_id }) };
  }

  stop(): void {
    this.stopped = true;
    this.stopWatch?.();
  }
}

function apply(listing: Listing, { flowId, summary }: SummaryChange): void {
  if (summary !== undefined) {
    if (!listing.byId.has(flowId)) listing.sorted = undefined;
    const { load, ...listed } = summary;
    listing.byId.set(flowId, listed);
    setLoad(listing, flowId, load ?? {});
  } else if (listing.byId.delete(flowId)) {
    listing.sorted = undefined;
    setLoad(listing, flowId, {});
  }
}

function setLoad(listing: Listing, flowId: string, load: Record<string, QueueLoad>): void {
  for (const [queue, flows] of listing.loads) {
    if (!Object.hasOwn(load, queue) && flows.delete(flowId) && flows.size === 0) listing.loads.delete(queue);
  }
  for (const [queue, share] of Object.entries(load)) {
    let flows = listing.loads.get(queue);
    if (flows === undefined) listing.loads.set(queue, (flows = new Map()));
    flows.set(flowId, share);
  }
}

function matches(s: FlowSummary, q: FlowQuery): boolean {
  if (q.status && !q.status.includes(s.status)) return false;
  if (q.queue !== undefined && s.queue !== q.queue) return false;
  if (q.since !== undefined && s.submitted_at < q.since) return false;
  if (q.until !== undefined && s.submitted_at >= q.until) return false;
  if (q.name !== undefined && !(s.name ?? '').toLowerCase().includes(q.name.toLowerCase())) return false;
  // Keys are user input: only a flow's own labels count, never what every object inherits.
  if (q.labels) for (const [k, v] of q.labels) if (!s.labels || !Object.hasOwn(s.labels, k) || s.labels[k] !== v) return false;
  if (q.template !== undefined && s.origin?.template?.name !== q.template) return false;
  if (q.schedule !== undefined && s.origin?.schedule?.id !== q.schedule) return false;
  return true;
}
