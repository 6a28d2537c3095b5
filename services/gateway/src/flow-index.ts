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

/**
 * The flows list, kept in memory from the projector's summaries by a KV watch. Pages are ordered
 * newest first by flow id (a ULID, so by submission time) and continue strictly after the cursor's
 * id, so flows submitted while a client pages through never shift or repeat what it sees.
 *
 * Queue statistics are the sum of the summaries' loads (each a function of its flow's fold), kept
 * by queue so a read adds up only that queue's flows.
 */
export class FlowIndex {
  private readonly byId = new Map<string, FlowSummary>();
  private readonly loads = new Map<string, Map<string, QueueLoad>>();
  private sorted: string[] | undefined;
  private stopWatch: (() => void) | undefined;

  static async open(store: FlowSummaryStore, corrupt: (error: Error) => void): Promise<FlowIndex> {
    const index = new FlowIndex();
    let ready!: () => void;
    const initialized = new Promise<void>((r) => (ready = r));
    index.stopWatch = await store.watch((change) => index.apply(change), ready, corrupt);
    await Promise.race([initialized, new Promise((r) => setTimeout(r, 5_000))]);
    return index;
  }

  private apply({ flowId, summary }: SummaryChange): void {
    if (summary !== undefined) {
      if (!this.byId.has(flowId)) this.sorted = undefined;
      const { load, ...listed } = summary;
      this.byId.set(flowId, listed);
      this.setLoad(flowId, load ?? {});
    } else if (this.byId.delete(flowId)) {
      this.sorted = undefined;
      this.setLoad(flowId, {});
    }
  }

  private setLoad(flowId: string, load: Record<string, QueueLoad>): void {
    for (const [queue, flows] of this.loads) {
      if (!Object.hasOwn(load, queue) && flows.delete(flowId) && flows.size === 0) this.loads.delete(queue);
    }
    for (const [queue, share] of Object.entries(load)) {
      let flows = this.loads.get(queue);
      if (flows === undefined) this.loads.set(queue, (flows = new Map()));
      flows.set(flowId, share);
    }
  }

  /** A queue's statistics now: the loads of its flows added up. */
  queueStats(queue: string, now = new Date()): QueueStatsView {
    const stats = sumQueueLoads(queue, this.loads.get(queue)?.values() ?? [], now);
    stats.minutes = Object.fromEntries(Object.entries(stats.minutes).sort(([a], [b]) => a.localeCompare(b)));
    return stats;
  }

  get(flowId: string): FlowSummary | undefined {
    return this.byId.get(flowId);
  }

  query(q: FlowQuery): { flows: FlowSummary[]; next?: string } {
    this.sorted ??= [...this.byId.keys()].sort().reverse();
    const flows: FlowSummary[] = [];
    let start = 0;
    if (q.after !== undefined) {
      // Binary search for the first id strictly older than the cursor.
      let lo = 0;
      let hi = this.sorted.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (this.sorted[mid]! >= q.after) lo = mid + 1;
        else hi = mid;
      }
      start = lo;
    }
    let i = start;
    for (; i < this.sorted.length && flows.length < q.limit; i++) {
      const summary = this.byId.get(this.sorted[i]!);
      if (summary && matches(summary, q)) flows.push(summary);
    }
    const more = i < this.sorted.length && flows.length === q.limit;
    return { flows, ...(more && { next: flows.at(-1)!.flow_id }) };
  }

  stop(): void {
    this.stopWatch?.();
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
