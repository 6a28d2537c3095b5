import type { Logger } from '@taskstream/nats';

/** What the batch needs of a JetStream message: acknowledging it, and whether more are pending. */
export interface HeldMessage {
  ack(): void;
  readonly info: { readonly pending: number };
}

export interface PendingWrites<F> {
  /** Flows whose view changed, with the newest state folded for each. */
  flows: Map<string, F>;
}

export interface WriteBatchOptions<F> {
  /** Stores what `pending` names. Throwing keeps everything held and retries later. */
  write: (pending: PendingWrites<F>) => Promise<void>;
  /**
   * One pending version of a flow from two, the older first: when a flow is held again, and when a
   * failed write is merged back under what was held meanwhile. The batch owns both; `a` may be reused.
   */
  merge: (a: F, b: F) => F;
  log: Logger;
  /** Messages held at most before a write is forced. */
  maxHeld?: number;
  /** How long a message waits at most for its write when more messages keep coming. */
  maxDelayMs?: number;
  /**
   * Writes start at least this far apart, so a large flow whose events trickle in one at a time is
   * not re-serialised per event; it is also the most a view lags its log when the consumer is idle.
   */
  minIntervalMs?: number;
}

/**
 * Coalesces the projector's writes: events are folded in memory as they arrive, and the views and
 * summaries they touched are written once per batch; their messages are acknowledged only after
 * that write, so a crash loses nothing (the messages come back and are folded again). A batch is
 * written when the consumer has nothing more pending, when `maxHeld` messages wait, or after
 * `maxDelayMs`: at low load every event is written at once, under load a flow's view is written
 * once per batch instead of once per event.
 */
export class WriteBatch<F> {
  private held: HeldMessage[] = [];
  private pending: PendingWrites<F> = { flows: new Map() };
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  private readonly maxHeld: number;
  private readonly maxDelayMs: number;
  private readonly minIntervalMs: number;
  private lastWriteAt = 0;

  constructor(private readonly options: WriteBatchOptions<F>) {
    this.maxHeld = options.maxHeld ?? 500;
    this.maxDelayMs = options.maxDelayMs ?? 100;
    this.minIntervalMs = options.minIntervalMs ?? 20;
  }

  /** Records what `msg` changed; the caller must already have marked `msg` as settled by us. */
  hold(msg: HeldMessage, flowId: string, flow: F): void {
    this.held.push(msg);
    const prior = this.pending.flows.get(flowId);
    this.pending.flows.set(flowId, prior === undefined ? flow : this.options.merge(prior, flow));
    this.timer ??= setTimeout(() => void this.flush(), this.maxDelayMs);
  }

  /** Whether the message just held should be written now rather than batched further. */
  due(msg: HeldMessage): boolean {
    if (this.held.length >= this.maxHeld) return true;
    if (msg.info.pending > 0) return false;
    const wait = this.lastWriteAt + this.minIntervalMs - Date.now();
    if (wait <= 0) return true;
    // Nothing more is coming soon: write as soon as the interval allows instead of after maxDelayMs.
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.flush(), wait);
    return false;
  }

  /** Writes everything held so far (after any write already under way) and acknowledges it. */
  flush(): Promise<void> {
    this.chain = this.chain.then(() => this.writeHeld());
    return this.chain;
  }

  private async writeHeld(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.held.length === 0) return;
    this.lastWriteAt = Date.now();
    const messages = this.held;
    const pending = this.pending;
    this.held = [];
    this.pending = { flows: new Map() };
    try {
      await this.options.write(pending);
    } catch (error) {
      // Memory is ahead of the store: keep the messages unacknowledged and try again shortly. If
      // this process dies first, they are redelivered and folded again from the log.
      this.options.log.warn({ err: error, messages: messages.length }, 'writing views failed; will retry');
      this.held = [...messages, ...this.held];
      for (const [flowId, flow] of pending.flows) {
        const later = this.pending.flows.get(flowId);
        this.pending.flows.set(flowId, later === undefined ? flow : this.options.merge(flow, later));
      }
      this.timer ??= setTimeout(() => void this.flush(), 500);
      return;
    }
    for (const msg of messages) msg.ack();
  }

  /** Writes what is held and stops the timer. */
  async close(): Promise<void> {
    await this.flush();
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
