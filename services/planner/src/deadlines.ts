import {
  approvalDeadline,
  awaitsAck,
  flowDeadline,
  isTerminalFlow,
  Timer,
  timerSubject,
  TERMINAL_FLOW_STATUSES,
  type ApprovalDeadline,
  type FlowDeadline,
  type FlowEvent,
  type FlowState,
  type TaskError,
  type TaskState,
} from '@taskstream/domain';
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

/** The timeout `event` starts: a `task.waiting` with `timeout_secs` of a task still waiting. */
export function approvalDeadlineOn(event: FlowEvent, state: FlowState): ApprovalDeadline | undefined {
  if (event.type !== 'task.waiting' || event.data.timeout_secs === undefined || state.tasks[event.task_id]?.status !== 'waiting') return undefined;
  return approvalDeadline(event.flow_id, event.task_id, event.data.timeout_secs, event.time);
}

/** Stores an approval's timeout on its flow's timer subject, once per task. */
export async function publishApprovalDeadline(ctx: Pick<ServiceContext, 'js' | 'topo'>, deadline: ApprovalDeadline): Promise<void> {
  await ctx.js.publish(timerSubject(ctx.topo.layout, deadline.flow_id), encodeJson(deadline), { msgID: `${deadline.flow_id}:${deadline.task_id}:approval-deadline` });
}

/** Whether a due approval timeout is still to be recorded: its task still waits in a flow that runs. */
export function approvalTimeoutApplies(state: FlowState | null, taskId: string): boolean {
  return state !== null && awaitsAck(state, taskId);
}

/** Milliseconds until `deadline` is due; zero or less once it is. */
export function untilDue(deadline: Timer, nowMs: number): number {
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
 * Flow deadlines and approval timeouts: any instance may fire one. A deadline not yet due goes back to JetStream for
 * the time that remains; a due one records flow.deadline_passed, which the partition's owner
 * folds like a cancel request.
 */
export async function startDeadlineTimers(ctx: ServiceContext, options: DeadlineTimersOptions): Promise<ConsumerLoop> {
  const { consumer } = options;
  await ensureConsumer(ctx.jsm, ctx.topo.timersStream, {
    durable_name: consumer,
    max_deliver: -1,
    ack_wait: 30_000_000_000,
    // Deadlines waiting for their time count as pending: the limit must exceed the flows in flight.
    max_ack_pending: 1_000_000,
  });
  const fire = async (timer: Timer): Promise<void> => {
    const remaining = untilDue(timer, Date.now());
    if (remaining > 0) throw new HandBack('deadline not due', remaining);
    if ('kind' in timer) await timeOutApproval(ctx, options, timer);
    else await passDeadline(ctx, options, timer);
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

async function passDeadline(ctx: ServiceContext, { log, history }: DeadlineTimersOptions, deadline: FlowDeadline): Promise<void> {
  if (!deadlineApplies(await history.fold(deadline.flow_id))) return;
  await log.appendNew({ type: 'flow.deadline_passed', flow_id: deadline.flow_id, data: { timeout_secs: deadline.timeout_secs } }, `${deadline.flow_id}:flow.deadline_passed`);
  decisionsStored([{ type: 'flow.deadline_passed' }]);
  ctx.log.info({ flow_id: deadline.flow_id, timeout_secs: deadline.timeout_secs }, 'flow deadline passed');
}

/**
 * Records that no ack came in time. The event is the task's terminal one, keyed like an ack's, so
 * an ack racing the timeout and the timeout store one outcome between them.
 */
async function timeOutApproval(ctx: ServiceContext, { log, history }: DeadlineTimersOptions, deadline: ApprovalDeadline): Promise<void> {
  const { flow_id: flowId, task_id: taskId, timeout_secs: secs } = deadline;
  const state = await history.fold(flowId);
  if (state === null || !approvalTimeoutApplies(state, taskId)) return;
  const task = state.tasks[taskId]!;
  const error = waitTimeoutError(task, secs);
  await log.appendNew({ type: 'task.timed_out', flow_id: flowId, task_id: taskId, attempt: 1, data: { timeout_ms: secs * 1000, error } }, `${flowId}:${taskId}:task.timed_out`);
  decisionsStored([{ type: 'task.timed_out' }]);
  // A child the parent no longer waits for is not left running.
  if (task.child !== undefined && task.child.flow_id !== '') {
    const reason = `its parent flow ${flowId} stopped waiting: task "${taskId}" timed out after ${secs}s`;
    await log.appendNew({ type: 'flow.cancel_requested', flow_id: task.child.flow_id, data: { reason, requested_by: `flow:${flowId}` } }, `${task.child.flow_id}:flow.cancel_requested:parent`);
  }
  ctx.log.info({ flow_id: flowId, task_id: taskId, timeout_secs: secs, code: error.code }, 'waiting task timed out');
}

/** Why a waiting task timed out, by what it waited for. */
export function waitTimeoutError(task: TaskState, secs: number): TaskError {
  if (task.signal !== undefined) return { message: `no signal "${task.signal.name}"${task.signal.match !== undefined ? ' that its match accepts' : ''} came within ${secs}s (the task's timeout_secs)`, code: 'SIGNAL_TIMEOUT', retryable: false };
  if (task.child !== undefined) return { message: `child flow ${task.child.flow_id} did not finish within ${secs}s (the task's timeout_secs); it is cancelled`, code: 'CHILD_FLOW_TIMEOUT', retryable: false };
  return { message: `no approval within ${secs}s (the task's timeout_secs)`, code: 'APPROVAL_TIMEOUT', retryable: false };
}

function decodeDeadline(data: Uint8Array): Decoded<Timer> {
  const json = decodeJson(data);
  if (!json.ok) return json;
  const parsed = Timer.safeParse(json.value);
  return parsed.success ? { ok: true, value: parsed.data } : { ok: false, reason: `invalid timer: ${parsed.error.issues[0]?.message ?? 'unknown'}` };
}
