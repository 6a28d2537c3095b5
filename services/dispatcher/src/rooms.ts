import { isLimited, type QueuePolicy, type ThrottleReason } from '@taskstream/domain';
import type { Logger, QueueLimitsStore } from '@taskstream/nats';
import { DISPATCHING } from './dispatch.js';
import { DispatchWindow } from './dispatch-window.js';
import { QueueGate } from './queue-gate.js';
import type { ReportThrottled } from './throttled.js';

export interface QueueStats {
  waiting: number;
  running: number;
  tokens?: number;
  throttled: Record<ThrottleReason, number>;
}

export interface RoomsOptions {
  /** Tasks of one unlimited queue dispatched and not yet seen to end (0: no window). */
  windowSize: number;
  /** How long a window slot is held when its task's end is never seen. */
  leaseMs: number;
  limits: QueueLimitsStore;
  policyOf: (queue: string) => QueuePolicy;
  onThrottled: ReportThrottled;
  log: Logger;
}

/**
 * Where this dispatcher's ready tasks wait, per queue: a window for an unlimited queue, a gate for a
 * limited one. A queue that becomes limited hands its window's waiting tasks to its gate; one that
 * stops being limited lets its gate admit everyone waiting there. Each is made on first use.
 */
export class Rooms {
  private readonly gates = new Map<string, QueueGate>();
  private readonly windows = new Map<string, DispatchWindow>();

  constructor(private readonly options: RoomsOptions) {}

  window(queue: string): DispatchWindow {
    let window = this.windows.get(queue);
    if (!window) this.windows.set(queue, (window = new DispatchWindow(queue, { size: this.options.windowSize, sending: DISPATCHING, leaseMs: this.options.leaseMs })));
    return window;
  }

  gate(queue: string): QueueGate {
    let gate = this.gates.get(queue);
    if (!gate) {
      const { limits, policyOf, onThrottled, log } = this.options;
      gate = new QueueGate(queue, limits, () => policyOf(queue), (waiter, reason) => onThrottled(waiter, reason, queue), log);
      this.gates.set(queue, gate);
    }
    return gate;
  }

  /**
   * The queue's policy or limits changed: its gate (if any) looks again, and if the queue is now
   * limited, the tasks waiting at its window leave for the gate.
   */
  wake(queue: string): void {
    this.gates.get(queue)?.wake();
    const window = this.windows.get(queue);
    if (window !== undefined && window.size > 0 && isLimited(this.options.policyOf(queue))) window.handOver();
  }

  /** Whether a task of this flow waits or holds a window slot here: only then is its end worth reading. */
  knows(flowId: string): boolean {
    return [...this.windows.values(), ...this.gates.values()].some((room) => room.knows(flowId));
  }

  /** The task `<flow id>:<task id>` ended: its window slot frees, and it no longer waits anywhere. */
  ended(key: string): void {
    for (const window of this.windows.values()) window.ended(key);
    for (const gate of this.gates.values()) gate.ended(key);
  }

  /** Keeps waiting ready events from redelivery, and gives back window slots whose lease ran out. */
  heartbeat(): void {
    for (const gate of this.gates.values()) gate.heartbeat();
    for (const window of this.windows.values()) window.heartbeat();
  }

  /** Hands every waiting ready event back. */
  close(): void {
    for (const gate of this.gates.values()) gate.close();
    for (const window of this.windows.values()) window.close();
  }

  /** Per-queue counters: a queue at both a gate and a window adds them up. */
  stats(): Record<string, QueueStats> {
    const out: Record<string, QueueStats> = {};
    for (const [queue, gate] of this.gates) {
      out[queue] = { waiting: gate.size, running: gate.running, ...(gate.tokens !== undefined && { tokens: gate.tokens }), throttled: { ...gate.throttleCounts } };
    }
    for (const [queue, window] of this.windows) {
      const stats = (out[queue] ??= { waiting: 0, running: 0, throttled: { rate: 0, concurrency: 0, key_concurrency: 0 } });
      stats.waiting += window.size;
      stats.running += window.inFlight;
    }
    return out;
  }
}
