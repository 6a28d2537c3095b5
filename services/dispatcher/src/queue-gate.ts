import { admit, type QueuePolicy, type ThrottleReason } from '@taskstream/domain';
import { HandBack, type JsMsg, type Logger, type QueueLimitsStore } from '@taskstream/nats';
import { WaitingRoom } from './waiting-room.js';
import { throttled } from './metrics.js';

export interface Waiter {
  /** `<flow id>:<task id>`. */
  key: string;
  flowId: string;
  concurrencyKey?: string;
  priority: number;
  /** Stream sequence of the ready event: the order within a flow. */
  seq: number;
  msg: JsMsg;
  /** true: admitted; false: the task ended while waiting. */
  admitted: (go: boolean) => void;
  handBack: (error: Error) => void;
  /** Reasons already recorded for this task: `task.throttled` is appended once per reason. */
  reported?: Set<ThrottleReason>;
}

/** Candidates considered per admission round: one KV compare-and-set admits up to this many. */
const BATCH = 500;
/** Fallback re-check while only a release can admit more (releases also wake the gate directly). */
const IDLE_RECHECK_MS = 2_000;

/**
 * The waiting room of one limited queue in this dispatcher. Ready tasks wait here (their ready
 * events unacknowledged, so a crash hands them to another dispatcher) in fair order: by priority,
 * then taking turns between flows, so one flow's backlog does not hold back the others. Each round
 * admits a batch with one compare-and-set on the queue's limits record, and sleeps until a token is
 * due or a slot is released: no busy polling.
 */
export class QueueGate {
  private readonly waiting = new WaitingRoom<Waiter>();
  /** Tasks that ended while an admission round that may admit them was being written. */
  private readonly endedInRound = new Set<string>();
  private pumping = false;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  throttleCounts: Record<ThrottleReason, number> = { rate: 0, concurrency: 0, key_concurrency: 0 };
  tokens: number | undefined;
  running = 0;

  constructor(
    readonly queue: string,
    private readonly store: QueueLimitsStore,
    private readonly policy: () => QueuePolicy,
    private readonly onThrottled: (waiter: Waiter, reason: ThrottleReason) => Promise<void>,
    private readonly log: Logger,
  ) {}

  get size(): number {
    return this.waiting.size;
  }

  /**
   * Resolves true when the task may be dispatched (its slot and token are recorded), false when it
   * ended while waiting.
   */
  wait(waiter: Omit<Waiter, 'admitted' | 'handBack'>): Promise<boolean> {
    return new Promise((admitted, handBack) => {
      const { key, flowId, concurrencyKey, priority, seq, msg } = waiter;
      // Named fields, not a spread: a spread here gave every waiting entry a hidden class of its own.
      this.waiting.add({ key, flowId, concurrencyKey, priority, seq, msg, admitted, handBack });
      this.wake();
    });
  }

  /** Whether a task of this flow waits here: only then is its end worth reading. */
  knows(flowId: string): boolean {
    return this.waiting.waitsFor(flowId);
  }

  /**
   * The task ended while it may still wait here (its flow was cancelled): admitted later, it would
   * hold its slot for good, as no second end would come to release it.
   */
  ended(key: string): void {
    for (const waiter of this.waiting.take(key)) {
      if (this.pumping) this.endedInRound.add(key);
      waiter.admitted(false);
    }
  }

  /** Something changed (a release, a new policy): look again soon. */
  wake(): void {
    if (this.closed) return;
    if (this.pumping) {
      this.again = true;
      return;
    }
    void this.pump();
  }

  /** Keeps the held ready events from being redelivered while they wait. */
  heartbeat(): void {
    for (const waiter of this.waiting.values()) waiter.msg.working();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    for (const waiter of this.waiting.drain()) waiter.handBack(new HandBack('dispatcher stopping'));
  }

  /**
   * Records why waiters are held. A waiter's reason may alternate between rounds (rate, then
   * concurrency, then rate): each is recorded once, not at every change.
   */
  private async reportHeld(batch: readonly Waiter[], held: ReadonlyMap<string, ThrottleReason>): Promise<void> {
    const reports: Array<Promise<void>> = [];
    for (const waiter of batch) {
      const reason = held.get(waiter.key);
      if (reason === undefined || waiter.reported?.has(reason)) continue;
      (waiter.reported ??= new Set()).add(reason);
      this.throttleCounts[reason]++;
      throttled(this.queue, reason);
      reports.push(
        this.onThrottled(waiter, reason).catch((error: unknown) => {
          waiter.reported!.delete(reason);
          throw error;
        }),
      );
    }
    await Promise.all(reports);
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    if (this.timer) clearTimeout(this.timer);
    try {
      do {
        this.again = false;
        this.endedInRound.clear();
        if (this.waiting.size === 0) break;
        const policy = this.policy();
        const batch = this.waiting.ordered(BATCH);
        const round = await this.store.update(this.queue, (record) => {
          const result = admit(policy, record, batch.map((w) => ({ key: w.key, ...(w.concurrencyKey !== undefined && { concurrencyKey: w.concurrencyKey }) })), Date.now());
          // Writing a round that admitted nothing would wake every dispatcher watching the record
          // (this one too) into another round: a busy loop while tasks wait for tokens or slots.
          return { ...(result.changed && { record: result.record }), result };
        });
        if (!round) break;
        this.tokens = round.record.bucket?.tokens;
        this.running = Object.keys(round.record.holders).length;
        const admittedKeys = new Set(round.admitted.map((c) => c.key));
        for (const waiter of batch) {
          if (admittedKeys.has(waiter.key) && this.waiting.admit(waiter)) waiter.admitted(true);
        }
        // Admitted in the record after its end was seen: nothing else would give that slot back.
        const orphans = [...this.endedInRound].filter((key) => admittedKeys.has(key));
        await Promise.all(orphans.map((key) => this.store.release([this.queue], key)));
        await this.reportHeld(batch, round.held);
        const wait = round.retryInMs ?? (this.waiting.size > 0 ? IDLE_RECHECK_MS : undefined);
        if (wait !== undefined && !this.again && !this.closed) this.timer = setTimeout(() => this.wake(), wait);
        // Admitted a full batch while more wait: go straight on.
        if (round.admitted.length === BATCH) this.again = true;
      } while (this.again && !this.closed);
    } catch (error) {
      this.log.error({ err: error, queue: this.queue }, 'admission round failed; retrying');
      if (!this.closed) this.timer = setTimeout(() => this.wake(), 500);
    } finally {
      this.pumping = false;
    }
  }
}
