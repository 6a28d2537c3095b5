import type { EventBody, WorkItem } from '@taskstream/domain';
import { EventLog } from '@taskstream/nats';
import type { ServiceContext } from '@taskstream/runtime';
import { InfrastructureError } from './errors.js';
import { ENVELOPE_BYTES, fitError } from './output.js';
import { redact } from './run-time.js';

/** An event of a task, before the recorder stamps it with the work item's flow and task. */
export type TaskEvent = EventBody<'id' | 'version' | 'time' | 'flow_id' | 'task_id'>;

/** What nats-server allows when it does not say (its default max_payload). */
const DEFAULT_MAX_PAYLOAD = 1024 * 1024;

/**
 * Bytes an output or error may take in one event. An event larger than the server's max_payload
 * (or the stream's max_msg_size, when it has one) is refused on every try, so what the executor
 * records is cut to fit before it is published.
 */
export function eventBudget(maxPayload: number | undefined, streamMaxBytes: number): number {
  return Math.min(maxPayload ?? DEFAULT_MAX_PAYLOAD, streamMaxBytes > 0 ? streamMaxBytes : Number.POSITIVE_INFINITY) - ENVELOPE_BYTES;
}

/** The event as it may be recorded: `hidden` secret values redacted from its data, its error cut to `budget`. */
export function fitEvent(event: TaskEvent, hidden: readonly string[] | undefined, budget: number): TaskEvent {
  if (hidden !== undefined && 'data' in event) event = { ...event, data: redact(event.data, hidden) } as TaskEvent;
  if ('data' in event && 'error' in event.data) event = { ...event, data: { ...event.data, error: fitError(event.data.error, budget) } } as TaskEvent;
  return event;
}

/**
 * Appends the events of the work items this process runs. Each event's msgID is the item's
 * idempotency key and a name for the event within the task, so a repeat after a redelivery is
 * stored once.
 */
export class Recorder {
  /** Secret values each running item uses (by idempotency key): whatever it records is redacted of them. */
  private readonly secretsInUse = new Map<string, string[]>();

  constructor(
    private readonly log: EventLog,
    /** Bytes an output or error may take now (the server's limit may change on a reconnect). */
    readonly budget: () => number,
  ) {}

  static async open(ctx: ServiceContext): Promise<Recorder> {
    const log = new EventLog(ctx.js, ctx.topo);
    const streamMaxBytes = (await ctx.jsm.streams.info(ctx.topo.eventsStream)).config.max_msg_size;
    return new Recorder(log, () => eventBudget(ctx.nc.info?.max_payload, streamMaxBytes));
  }

  /** Redacts `values` from the item's events until `release`. */
  hide(item: WorkItem, values: string[]): void {
    this.secretsInUse.set(item.idempotency_key, values);
  }

  release(item: WorkItem): void {
    this.secretsInUse.delete(item.idempotency_key);
  }

  /**
   * Records an event; a failure to store it is the infrastructure's, never the step's. Says
   * whether the log already held it (the same msgID within the de-duplication window).
   */
  async append(item: WorkItem, event: TaskEvent, msgID: string): Promise<{ duplicate: boolean }> {
    event = fitEvent(event, this.secretsInUse.get(item.idempotency_key), this.budget());
    try {
      const ack = await this.log.appendNew({ ...event, flow_id: item.flow_id, task_id: item.task_id } as EventBody<'id' | 'version' | 'time'>, `${item.idempotency_key}:${msgID}`);
      return { duplicate: ack.duplicate };
    } catch (error) {
      throw new InfrastructureError(`could not record ${event.type}: ${(error as Error).message}`);
    }
  }
}
