import { flowDeadline, FlowDeadline, isTerminalFlow, timerSubject, TERMINAL_FLOW_STATUSES, type FlowEvent, type FlowState } from '@taskstream/domain';
import { decodeJson, encodeJson, ensureConsumer, HandBack, startConsumerLoop, type ConsumerLoop, type Decoded, type DeadLetters, type EventLog } from '@taskstream/nats';
import type { ServiceContext } from '@taskstream/runtime';
import type { FlowHistory } from './flow-cache.js';
import { decisionsStored } from './metrics.js';

/** The deadline `event` sets: a `flow.started` of a flow with a timeout that has not ended. */
export function deadlineOnStart(event: FlowEvent, state: FlowState): FlowDeadline | undefined {
  const timeoutSecs = state.definition.timeout_secs;
  if (event.type !== 'flow.started' || timeoutSecs === undefined || isTerminalFlow(state)) return undefined;
  return flowDeadline(event.flow_id, timeoutSecs, event.time);
}

/** Stores a flow's deadline on its timer subject, once per flow. */
export async function publishDeadline(ctx: Pick<ServiceContext, 'js' | 'topo'>, deadline: FlowDeadline): Promise<void> {
  await ctx.js.publish(timerSubject(ctx.topo.layout, deadline.flow_id), encodeJson(deadline), { msgID: `${deadline.flow_id}:deadline` });
}

/** Milliseconds until `deadline` is due; zero or less once it is. */
export function untilDue(deadline: FlowDeadline, nowMs: number): number {
  return Date.parse(deadline.due_at) - nowMs;
}

/** Whether a due deadline is still to be recorded: its flow exists, has not ended, and has none recorded. */
export function deadlineApplies(state: FlowState | null): boolean {
  return state !== null && !TERMINAL_FLOW_STATUSES.has(state.status) && state.deadline_passed_at === undefined;
}

export interface DeadlineTimersOptions {
  /** The durable consumer of the timers stream, shared by all instances. */
  consumer: string;
  log: EventLog;
  history: FlowHistory;
  deadLetters: DeadLetters;
}

/**
 * Flow deadlines: any instance may fire one. A deadline not yet due goes back to JetStream for
 * the time that remains; a due one records flow.deadline_passed, which the partition's owner
 * folds like a cancel request.
 */
export async function startDeadlineTimers(ctx: ServiceContext, options: DeadlineTimersOptions): Promise<ConsumerLoop> {
  const { consumer, log, history } = options;
  await ensureConsumer(ctx.jsm, ctx.topo.timersStream, {
    durable_name: consumer,
    max_deliver: -1,
    ack_wait: 30_000_000_000,
    // Deadlines waiting for their time count as pending: the limit must exceed the flows in flight.
    max_ack_pending: 1_000_000,
  });
  const fire = async (deadline: FlowDeadline): Promise<void> => {
    const remaining = untilDue(deadline, Date.now());
    if (remaining > 0) throw new HandBack('deadline not due', remaining);
    if (!deadlineApplies(await history.fold(deadline.flow_id))) return;
    await log.appendNew({ type: 'flow.deadline_passed', flow_id: deadline.flow_id, data: { timeout_secs: deadline.timeout_secs } }, `${deadline.flow_id}:flow.deadline_passed`);
    decisionsStored([{ type: 'flow.deadline_passed' }]);
    ctx.log.info({ flow_id: deadline.flow_id, timeout_secs: deadline.timeout_secs }, 'flow deadline passed');
  };
  return startConsumerLoop({
    js: ctx.js,
    stream: ctx.topo.timersStream,
    consumer,
    source: 'planner-timers',
    decode: decodeDeadline,
    handle: fire,
    deadLetters: options.deadLetters,
    log: ctx.log,
    maxDeliver: Number.MAX_SAFE_INTEGER,
    concurrency: 16,
  });
}

function decodeDeadline(data: Uint8Array): Decoded<FlowDeadline> {
  const json = decodeJson(data);
  if (!json.ok) return json;
  const parsed = FlowDeadline.safeParse(json.value);
  return parsed.success ? { ok: true, value: parsed.data } : { ok: false, reason: `invalid flow deadline: ${parsed.error.issues[0]?.message ?? 'unknown'}` };
}
