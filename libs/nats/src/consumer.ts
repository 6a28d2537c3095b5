import type { ConsumerConfig, ConsumerMessages, JetStreamClient, JetStreamManager, JsMsg } from '@nats-io/jetstream';
import { eventTypeFilter, type EventType, type FlowEvent } from '@taskstream/domain';
import { decodeEvent, type Decoded } from './codec.js';
import type { DeadLetters } from './dead-letters.js';
import type { Logger } from './logger.js';
import { ensureConsumer, patiently, type Topology } from './topology.js';
import { inChildSpan, SpanKind, traceContextOf } from './trace-context.js';
import type { Attributes } from '@opentelemetry/api';

/** A failure that retrying cannot fix: the message goes to the dead letters at once. */
export class PermanentError extends Error {
  override name = 'PermanentError';
}

/**
 * Thrown by a handler that gives a message back unprocessed: nakked, not counted as a failure.
 * With `delayMs`, JetStream holds the message back that long before delivering it again, which
 * makes the wait durable: it survives the process that asked for it.
 */
export class HandBack extends Error {
  override name = 'HandBack';
  constructor(
    message = 'handed back',
    readonly delayMs?: number,
  ) {
    super(message);
  }
}

export interface ConsumerLoopOptions<T> {
  js: JetStreamClient;
  stream: string;
  consumer: string;
  /** Names the loop in dead letters and logs, e.g. "planner". */
  source: string;
  decode: (data: Uint8Array, msg: JsMsg) => Decoded<T>;
  /**
   * Handles one valid message. Resolving acks it (unless the handler already acked or nakked);
   * throwing naks it with a delay, and after `maxDeliver` deliveries sets it aside.
   */
  handle: (value: T, msg: JsMsg) => Promise<void>;
  deadLetters: DeadLetters;
  log: Logger;
  /** Messages handled at once. 1 keeps stream order strictly. */
  concurrency?: number;
  /** Must match the consumer's max_deliver so the last delivery is known. */
  maxDeliver: number;
  retryDelayMs?: (deliveryCount: number) => number;
  /** Called before consuming again after the loop failed (e.g. the server restarted). */
  beforeRestart?: () => Promise<void>;
  /**
   * Names the span that handles a message carrying a trace context (a child of the message's
   * span); messages without one are handled untraced.
   */
  span?: (value: T) => { name: string; attributes?: Attributes };
}

export interface ConsumerLoop {
  /** Stops pulling, waits for messages in hand, and resolves when the loop has ended. */
  stop(): Promise<void>;
  readonly done: Promise<void>;
}

/** What the loops and dead letters tell whoever counts them (the runtime's metrics); nobody by default. */
export interface ConsumerObserver {
  /** A message came again (delivery count above 1): a retry, a hand-back, or an ack that was lost. */
  redelivered(source: string): void;
  /** A message was set aside in the dead letters (counted once per message and source). */
  deadLettered(source: string): void;
}

/** A loop running in this process, for a lag reading. */
export interface RunningConsumer {
  stream: string;
  consumer: string;
  source: string;
  /** Messages of the consumer's filter not yet delivered to any of its clients (num_pending), read from the server. */
  pending(): Promise<number>;
}

/** The wait before delivery n + 1 of a message whose handling failed: 250 ms doubling, at most 30 s. */
export function defaultRetryDelayMs(deliveryCount: number): number {
  return Math.min(30_000, 250 * 2 ** (deliveryCount - 1));
}

/** How long a message whose handling keeps failing is retried before the last of `maxDeliver` deliveries sets it aside. */
export function retryBudgetMs(maxDeliver: number, retryDelayMs: (deliveryCount: number) => number = defaultRetryDelayMs): number {
  let total = 0;
  for (let n = 1; n < maxDeliver; n++) total += retryDelayMs(n);
  return total;
}

/**
 * Deliveries of a partition's event to the planner or projector before it is set aside: a flow
 * whose event is set aside stops (or its view does) until an operator retries it, so the retries
 * outlast a NATS outage of several minutes (a node loss on nats-server 2.9 stalls JetStream's API
 * for a minute or two), about seven minutes (retryBudgetMs), where 10 gave a minute and a half.
 */
export const PARTITION_MAX_DELIVER = 20;

let observer: ConsumerObserver | undefined;
const running = new Set<RunningConsumer>();

/** Sets who is told of redeliveries and dead letters (one observer per process; undefined: nobody). */
export function observeConsumers(next: ConsumerObserver | undefined): void {
  observer = next;
}

/** The observer set by observeConsumers, if any. */
export function consumerObserver(): ConsumerObserver | undefined {
  return observer;
}

/** The consumer loops running in this process. */
export function runningConsumers(): RunningConsumer[] {
  return [...running];
}

/**
 * A typed pull-consumer loop. Invalid messages never crash the loop and are never redelivered
 * forever: they are set aside on the dead-letter subject with the reason, then terminated.
 */
export async function startConsumerLoop<T>(options: ConsumerLoopOptions<T>): Promise<ConsumerLoop> {
  const { js, stream, consumer, source, log } = options;
  const concurrency = options.concurrency ?? 1;
  const retryDelay = options.retryDelayMs ?? defaultRetryDelayMs;
  // Right after ensureConsumer, on a server slow to answer while many services start at once.
  let c = await patiently(() => js.consumers.get(stream, consumer));
  let messages: ConsumerMessages | undefined;
  let stopping = false;
  const inFlight = new Set<Promise<void>>();
  /** Wakes the loop waiting at capacity when a message in hand is done. */
  let slotFreed: (() => void) | undefined;
  const acks = new AckBatch();

  /**
   * Sets a message aside and terminates it. If even that fails (NATS unavailable), the message is
   * handed back for later instead of failing the loop: a loop that fails is recreated from its ack
   * floor and would replay everything after this message.
   */
  const setAside = async (msg: JsMsg, reason: string): Promise<void> => {
    try {
      await options.deadLetters.setAside(msg, source, reason);
      msg.term(reason);
    } catch (error) {
      log.error({ subject: msg.subject, seq: msg.seq, err: error }, 'could not set a message aside; it will come back');
      msg.nak(retryDelay(msg.info.deliveryCount));
    }
  };

  const handleTraced = (value: T, msg: JsMsg): Promise<void> => {
    const parent = options.span && traceContextOf(msg);
    if (parent === undefined) return options.handle(value, msg);
    const { name, attributes } = options.span!(value);
    return inChildSpan(name, parent, { kind: SpanKind.CONSUMER, attributes: { 'messaging.destination.name': msg.subject, ...attributes } }, () => options.handle(value, msg));
  };

  const process = async (msg: JsMsg): Promise<void> => {
    if (msg.info.deliveryCount > 1) observer?.redelivered(source);
    const decoded = options.decode(msg.data, msg);
    if (!decoded.ok) {
      log.warn({ subject: msg.subject, seq: msg.seq, reason: decoded.reason }, 'setting aside an invalid message');
      await setAside(msg, decoded.reason);
      return;
    }
    try {
      await handleTraced(decoded.value, msg);
      if (!isSettled(msg)) acks.add(msg);
    } catch (error) {
      if (error instanceof HandBack) {
        msg.nak(error.delayMs);
        return;
      }
      const reason = (error as Error)?.message ?? String(error);
      const last = msg.info.deliveryCount >= options.maxDeliver;
      if (error instanceof PermanentError || last) {
        log.error({ subject: msg.subject, seq: msg.seq, deliveries: msg.info.deliveryCount, reason }, 'setting aside a message that cannot be processed');
        await setAside(msg, last ? `failed ${msg.info.deliveryCount} deliveries; last error: ${reason}` : reason);
      } else {
        log.warn({ subject: msg.subject, seq: msg.seq, deliveries: msg.info.deliveryCount, reason }, 'processing failed; will retry');
        msg.nak(retryDelay(msg.info.deliveryCount));
      }
    }
  };

  const run = async (): Promise<void> => {
    while (!stopping) {
      try {
        // The prefetch buffer is bounded on its own: messages in hand count against `concurrency`,
        // buffered ones only cost memory (a dispatcher allowing 10,000 waiting tasks once buffered
        // 20,000 more).
        messages = await c.consume({ max_messages: Math.min(Math.max(concurrency * 2, 64), 1_000) });
        for await (const msg of messages) {
          if (stopping) {
            msg.nak();
            continue;
          }
          if (concurrency === 1) {
            await process(msg);
            continue;
          }
          const task = process(msg)
            // process handles every failure of a message; only a nak or term on a connection gone
            // can still throw, and that message comes back after its ack wait anyway.
            .catch((error: unknown) => log.error({ err: error, subject: msg.subject, seq: msg.seq }, 'could not settle a message; it will come back'))
            .finally(() => {
              inFlight.delete(task);
              slotFreed?.();
            });
          inFlight.add(task);
          // Not Promise.race(inFlight): that would add a reaction to every message in hand for each
          // message read at capacity, and keep it until that message settles (quadratic).
          if (inFlight.size >= concurrency) await new Promise<void>((resolve) => (slotFreed = resolve));
          slotFreed = undefined;
        }
      } catch (error) {
        if (stopping) break;
        log.error({ err: error, consumer }, 'consumer loop failed; restarting');
        await new Promise((resolve) => setTimeout(resolve, 500));
        try {
          await Promise.allSettled(inFlight);
          await options.beforeRestart?.();
          c = await js.consumers.get(stream, consumer);
        } catch (restartError) {
          log.error({ err: restartError, consumer }, 'could not prepare the consumer again; retrying');
        }
      }
    }
    await Promise.allSettled(inFlight);
    acks.flush();
  };

  const listed: RunningConsumer = { stream, consumer, source, pending: async () => (await c.info()).num_pending };
  running.add(listed);
  const done = run().finally(() => running.delete(listed));
  return {
    done,
    async stop() {
      stopping = true;
      await messages?.close();
      await done;
    },
  };
}

/**
 * Acknowledgements of handled messages, sent together once the event loop turns: messages handled
 * without I/O (most events, for most consumers) are then acknowledged in one socket write instead
 * of one write each. Delaying an ack this little changes nothing a crash could lose: an unsent ack
 * is a redelivery, as before.
 */
class AckBatch {
  private held: JsMsg[] = [];

  add(msg: JsMsg): void {
    if (this.held.push(msg) === 1) setImmediate(() => this.flush());
  }

  flush(): void {
    const held = this.held;
    this.held = [];
    for (const msg of held) msg.ack();
  }
}

const settled = new WeakSet<JsMsg>();

/** Marks a message as acked or nakked by its handler so the loop does not ack it again. */
export function markSettled(msg: JsMsg): void {
  settled.add(msg);
}

function isSettled(msg: JsMsg): boolean {
  return settled.has(msg);
}

export interface EventTypeLoopsOptions extends Omit<ConsumerLoopOptions<FlowEvent>, 'stream' | 'consumer' | 'decode'> {
  jsm: JetStreamManager;
  topo: Topology;
  types: readonly EventType[];
  /** The durable consumer's name for each type. */
  nameOf: (type: EventType) => string;
  /** The consumers' settings beyond name, filter and max_deliver. */
  config: Omit<Partial<ConsumerConfig>, 'durable_name' | 'filter_subject' | 'max_deliver'>;
}

/**
 * One durable consumer on the log per event type, each with its own loop: nats-server 2.9 allows
 * one filter subject per consumer. For consumers every instance of a service shares.
 */
export async function startEventTypeLoops(options: EventTypeLoopsOptions): Promise<ConsumerLoop[]> {
  const { jsm, topo, types, nameOf, config, ...loop } = options;
  const loops: ConsumerLoop[] = [];
  for (const type of types) {
    const name = nameOf(type);
    await ensureConsumer(jsm, topo.eventsStream, { ...config, durable_name: name, filter_subject: eventTypeFilter(topo.layout, type), max_deliver: loop.maxDeliver });
    loops.push(await startConsumerLoop({ ...loop, stream: topo.eventsStream, consumer: name, decode: decodeEvent }));
  }
  return loops;
}
