/** What fair ordering needs to know of a waiting task. */
export interface FairTask {
  flowId: string;
  /** Higher goes first. */
  priority: number;
  /** Stream sequence of the task's ready event: the order of tasks within one flow. */
  seq: number;
}

/** The waiting tasks of one flow at one priority, by stream sequence; the i-th has tag `head + i`. */
interface Lane<T extends FairTask> {
  key: string;
  priority: number;
  tasks: T[];
  head: number;
  /** When the flow began waiting (a counter): breaks ties between equal tags, earlier first. */
  since: number;
  /** Position in the heap of lanes. */
  at: number;
}

const laneKey = (priority: number, flowId: string) => `${priority}:${flowId}`;

/** Negative when (priority, tag, since) `a` goes before `b`. */
function before(pa: number, ta: number, sa: number, pb: number, tb: number, sb: number): number {
  return pb - pa || ta - tb || sa - sb;
}

/**
 * Waiting tasks in fair order: by priority (higher first), then by a virtual start tag per flow,
 * then by stream sequence within a flow. This is start-time fair queuing with one unit of work per
 * task: a task's tag is its flow's previous tag + 1, or the virtual time (the tag of the last task
 * admitted at its priority) if that is later. So continuously backlogged flows interleave one for
 * one, a flow that arrives behind a backlog starts at the virtual time and is served after at most
 * one task of every other waiting flow, and the tasks of one flow keep their order.
 *
 * Equal tags of different flows go in the order the flows began waiting, not by each task's own
 * sequence: a flow whose tasks trickle in would otherwise lose ties to a bulk-submitted one and
 * fall two turns behind it. A flow with nothing waiting is forgotten: its next task starts at the
 * virtual time, as a new flow's does (its last tag was admitted or never served: no credit is
 * lost). Pure and synchronous; the caller owns the tasks.
 */
export class FairQueue<T extends FairTask> {
  private readonly lanes = new Map<string, Lane<T>>();
  /** Lanes ordered by their first task: a binary min-heap. */
  private readonly heap: Array<Lane<T>> = [];
  /** Virtual time and number of lanes per priority; a priority with no lane starts afresh. */
  private readonly levels = new Map<number, { time: number; lanes: number }>();
  private count = 0;
  private began = 0;

  get size(): number {
    return this.count;
  }

  /** What the queue remembers: released as flows stop waiting. */
  footprint(): { flows: number; priorities: number } {
    return { flows: this.lanes.size, priorities: this.levels.size };
  }

  add(task: T): void {
    const key = laneKey(task.priority, task.flowId);
    let lane = this.lanes.get(key);
    if (!lane) {
      let level = this.levels.get(task.priority);
      if (!level) this.levels.set(task.priority, (level = { time: 0, lanes: 0 }));
      level.lanes++;
      lane = { key, priority: task.priority, tasks: [task], head: level.time, since: this.began++, at: this.heap.length };
      this.lanes.set(key, lane);
      this.heap.push(lane);
      this.up(lane.at);
    } else {
      const { tasks } = lane;
      // Redeliveries may come back behind later tasks of their flow: insert by sequence.
      let i = tasks.length;
      if (tasks[i - 1]!.seq > task.seq) {
        let lo = 0;
        while (lo < i) {
          const mid = (lo + i) >> 1;
          if (tasks[mid]!.seq > task.seq) i = mid;
          else lo = mid + 1;
        }
      }
      tasks.splice(i, 0, task);
    }
    this.count++;
  }

  first(): T | undefined {
    return this.heap[0]?.tasks[0];
  }

  /** Up to `limit` waiting tasks in fair order, without taking them. */
  ordered(limit = Number.POSITIVE_INFINITY): T[] {
    const out: T[] = [];
    if (this.heap.length === 0) return out;
    // Best-first walk: a lane's first task comes before its heap children's, and each lane's tasks
    // come in sequence, so the next task is always among the candidates.
    type Candidate = { lane: Lane<T>; index: number; node: number | undefined };
    const tagOf = (c: Candidate) => c.lane.head + c.index;
    const goesFirst = (a: Candidate, b: Candidate) => before(a.lane.priority, tagOf(a), a.lane.since, b.lane.priority, tagOf(b), b.lane.since) < 0;
    const candidates = new MinHeap<Candidate>(goesFirst);
    candidates.push({ lane: this.heap[0]!, index: 0, node: 0 });
    while (out.length < limit && candidates.size > 0) {
      const next = candidates.pop()!;
      out.push(next.lane.tasks[next.index]!);
      if (next.index + 1 < next.lane.tasks.length) candidates.push({ lane: next.lane, index: next.index + 1, node: undefined });
      if (next.node !== undefined) {
        for (const child of [2 * next.node + 1, 2 * next.node + 2]) {
          if (child < this.heap.length) candidates.push({ lane: this.heap[child]!, index: 0, node: child });
        }
      }
    }
    return out;
  }

  /** Every waiting task, in no particular order. */
  *values(): IterableIterator<T> {
    for (const lane of this.lanes.values()) yield* lane.tasks;
  }

  /** Takes `task` as admitted: its flow's tags move on by one and the virtual time reaches its tag. */
  admit(task: T): boolean {
    return this.take(task, true);
  }

  /** Takes `task` out unserved (handed back): its flow's later tasks move up into its place. */
  remove(task: T): boolean {
    return this.take(task, false);
  }

  /** Takes every waiting task out, forgetting every flow. */
  drain(): T[] {
    const all = [...this.values()];
    this.lanes.clear();
    this.heap.length = 0;
    this.levels.clear();
    this.count = 0;
    return all;
  }

  private take(task: T, admitted: boolean): boolean {
    const lane = this.lanes.get(laneKey(task.priority, task.flowId));
    if (!lane) return false;
    const index = lane.tasks.indexOf(task);
    if (index === -1) return false;
    const level = this.levels.get(lane.priority)!;
    if (admitted) {
      // Admissions out of fair order (a task held by its key's limit) never move time backwards.
      level.time = Math.max(level.time, lane.head + index);
      lane.head++;
    }
    lane.tasks.splice(index, 1);
    this.count--;
    if (lane.tasks.length === 0) {
      this.lanes.delete(lane.key);
      this.detach(lane.at);
      if (--level.lanes === 0) this.levels.delete(lane.priority);
    } else if (admitted) {
      this.down(lane.at);
    }
    return true;
  }

  private lessThan(a: Lane<T>, b: Lane<T>): boolean {
    return before(a.priority, a.head, a.since, b.priority, b.head, b.since) < 0;
  }

  private place(lane: Lane<T>, at: number): void {
    this.heap[at] = lane;
    lane.at = at;
  }

  private up(at: number): void {
    const lane = this.heap[at]!;
    while (at > 0) {
      const parent = (at - 1) >> 1;
      if (!this.lessThan(lane, this.heap[parent]!)) break;
      this.place(this.heap[parent]!, at);
      at = parent;
    }
    this.place(lane, at);
  }

  private down(at: number): void {
    const lane = this.heap[at]!;
    for (;;) {
      let child = 2 * at + 1;
      if (child >= this.heap.length) break;
      if (child + 1 < this.heap.length && this.lessThan(this.heap[child + 1]!, this.heap[child]!)) child++;
      if (!this.lessThan(this.heap[child]!, lane)) break;
      this.place(this.heap[child]!, at);
      at = child;
    }
    this.place(lane, at);
  }

  private detach(at: number): void {
    const last = this.heap.pop()!;
    if (at === this.heap.length) return;
    this.place(last, at);
    this.up(at);
    this.down(last.at);
  }
}

/** A small binary min-heap by `goesFirst`, for walking lanes in order. */
class MinHeap<T> {
  private readonly items: T[] = [];
  constructor(private readonly goesFirst: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.items.length;
  }

  push(item: T): void {
    const items = this.items;
    let at = items.push(item) - 1;
    while (at > 0) {
      const parent = (at - 1) >> 1;
      if (!this.goesFirst(item, items[parent]!)) break;
      items[at] = items[parent]!;
      at = parent;
    }
    items[at] = item;
  }

  pop(): T | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length === 0 || last === undefined) return top;
    let at = 0;
    for (;;) {
      let child = 2 * at + 1;
      if (child >= items.length) break;
      if (child + 1 < items.length && this.goesFirst(items[child + 1]!, items[child]!)) child++;
      if (!this.goesFirst(items[child]!, last)) break;
      items[at] = items[child]!;
      at = child;
    }
    items[at] = last;
    return top;
  }
}
