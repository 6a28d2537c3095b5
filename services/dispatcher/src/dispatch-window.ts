import { HandBack } from '@taskstream/nats';
import { WaitingRoom } from './waiting-room.js';

export interface Held {
  /** `<flow id>:<task id>`. */
  key: string;
  flowId: string;
  priority: number;
  /** Stream sequence of the ready event: the order within a flow. */
  seq: number;
  /** The unacknowledged ready event, kept from redelivery while the task waits. */
  msg: { working(): void };
}

/**
 * How a task left the window: dispatched (sent), ended while it waited (not sent), or handed over
 * because its queue became limited while it waited (not sent: it is to wait at the queue's gate).
 */
export type WindowExit = 'dispatched' | 'ended' | 'limited';

interface Entry extends Held {
  release: (exit: WindowExit) => void;
  handBack: (error: Error) => void;
}

export interface DispatchWindowOptions {
  /** Tasks this dispatcher may have dispatched and not yet seen end. */
  size: number;
  /** Dispatches in progress at once. */
  sending: number;
  /** A slot whose end was never seen is given back after this long. */
  leaseMs: number;
  now?: () => number;
}

/**
 * Paces an unlimited queue in this dispatcher. Sending every ready task to the work stream at once
 * would queue a big flow's whole backlog ahead of any flow that comes later (executors take work
 * in stream order). Instead ready tasks wait here (their ready events unacknowledged, as at a gate)
 * and leave in fair order while the tasks dispatched and not yet ended stay under the window. The
 * window is not a limit: it only bounds how far a newcomer can be queued behind others. A slot is
 * given back when the task's end is seen, or when its lease runs out, so a missed end slows the
 * queue down but never stops it. Dispatching itself is bounded here too: tasks let through faster
 * than they can be recorded would queue, first come first served, behind one another.
 */
export class DispatchWindow {
  private readonly waiting = new WaitingRoom<Entry>();
  /** Task key -> slot; oldest first, as a Map keeps insertion order. */
  private readonly slots = new Map<string, { flowId: string; at: number }>();
  private readonly slotsByFlow = new Map<string, number>();
  private readonly now: () => number;
  private sending = 0;
  private closed = false;

  constructor(
    readonly queue: string,
    private readonly options: DispatchWindowOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  /** Tasks waiting for a slot. */
  get size(): number {
    return this.waiting.size;
  }

  /** Slots held: tasks dispatched and not yet seen to end. */
  get inFlight(): number {
    return this.slots.size;
  }

  /**
   * Waits for the task's turn and a slot, then runs `send`; a send that fails gives the slot back.
   * A task that ends while it waits, or is handed over (`handOver`), is not sent.
   */
  dispatch(held: Held, send: () => Promise<unknown>): Promise<WindowExit> {
    // A continuation, not an async frame suspended while the task waits: thousands wait at once.
    return new Promise<WindowExit>((release, handBack) => {
      if (this.closed) return handBack(new HandBack('dispatcher stopping'));
      // Named fields, not a spread: a spread here gave every waiting entry a hidden class of its own.
      this.waiting.add({ key: held.key, flowId: held.flowId, priority: held.priority, seq: held.seq, msg: held.msg, release, handBack });
      this.fill();
    }).then((exit) => (exit === 'dispatched' ? this.send(held.key, send).then(() => exit) : exit));
  }

  /**
   * The queue became limited: every task still waiting leaves for the queue's gate, where the
   * limits apply to it. Tasks already dispatched hold no slot of the limits and keep running.
   */
  handOver(): void {
    for (const entry of this.waiting.drain()) entry.release('limited');
  }

  /** Whether a task of this flow waits or holds a slot here: only then is its end worth reading. */
  knows(flowId: string): boolean {
    return this.slotsByFlow.has(flowId) || this.waiting.waitsFor(flowId);
  }

  /**
   * The task ended: its slot goes to the next waiting task. If it was still waiting (its flow was
   * cancelled), it leaves undispatched: sent now, it would hold a slot until its lease ran out, as
   * no second end would ever come.
   */
  ended(key: string): void {
    for (const entry of this.waiting.take(key)) entry.release('ended');
    if (this.free(key)) this.fill();
  }

  /** Keeps waiting ready events from redelivery, and gives back slots whose lease ran out. */
  heartbeat(): void {
    for (const entry of this.waiting.values()) entry.msg.working();
    this.fill();
  }

  private async send(key: string, send: () => Promise<unknown>): Promise<void> {
    try {
      await send();
    } catch (error) {
      // The redelivery waits for a slot again.
      this.free(key);
      throw error;
    } finally {
      this.sending--;
      this.fill();
    }
  }

  close(): void {
    this.closed = true;
    for (const entry of this.waiting.drain()) entry.handBack(new HandBack('dispatcher stopping'));
  }

  private fill(): void {
    const expired = this.now() - this.options.leaseMs;
    for (const [key, slot] of this.slots) {
      if (slot.at > expired) break;
      this.free(key);
    }
    while (this.slots.size < this.options.size && this.sending < this.options.sending) {
      const next = this.waiting.first();
      if (!next) break;
      this.waiting.admit(next);
      this.sending++;
      // A redelivered task that still holds its slot takes it again, renewed.
      this.free(next.key);
      this.slots.set(next.key, { flowId: next.flowId, at: this.now() });
      this.slotsByFlow.set(next.flowId, (this.slotsByFlow.get(next.flowId) ?? 0) + 1);
      next.release('dispatched');
    }
  }

  private free(key: string): boolean {
    const slot = this.slots.get(key);
    if (!slot) return false;
    this.slots.delete(key);
    const left = this.slotsByFlow.get(slot.flowId)! - 1;
    if (left === 0) this.slotsByFlow.delete(slot.flowId);
    else this.slotsByFlow.set(slot.flowId, left);
    return true;
  }
}
