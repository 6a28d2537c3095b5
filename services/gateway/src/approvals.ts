import { timingSafeEqual } from 'node:crypto';
import { awaitsAck, ULID_PATTERN, type Ack, type EventBody, type FlowState, type TaskState } from '@taskstream/domain';
import { EventLog, foldFlowHistory } from '@taskstream/nats';
import type { ServiceContext } from '@taskstream/runtime';
import { apiError } from './errors.js';

/** An ack as Tasked's route takes it (`POST /api/v1/flows/{id}/tasks/{task}/ack`), after validation. */
export interface AckRequest {
  status: 'success' | 'failed';
  code?: string;
  approved_by?: string;
  output?: unknown;
  error?: string;
}

/** How the acked task ended. */
export type AckOutcome = 'succeeded' | 'failed';

/**
 * Ends waiting approval tasks. The flow is folded from the log (the truth, not a view that may
 * lag), and the outcome is appended with the task's terminal key: of two racing acks, or an ack
 * and the timeout, JetStream stores the first and reports the second as a duplicate.
 */
export class Approvals {
  private readonly log: EventLog;

  constructor(private readonly ctx: ServiceContext) {
    this.log = new EventLog(ctx.js, ctx.topo);
  }

  async ack(flowId: string, taskId: string, ack: AckRequest, requestedBy?: string, now = Date.now()): Promise<AckOutcome> {
    const { state, task } = await this.waitingTask(flowId, taskId);
    if (!sameCode(task, ack.code)) throw apiError('INVALID_APPROVAL_CODE', taskId);
    const by: Ack = { ...(ack.approved_by !== undefined && { approved_by: ack.approved_by }), ...(requestedBy !== undefined && { requested_by: requestedBy }) };
    const durationMs = Math.max(0, now - Date.parse(task.ready_at ?? state.submitted_at));
    const event: EventBody<'id' | 'version' | 'time'> =
      ack.status === 'success'
        ? { type: 'task.succeeded', flow_id: flowId, task_id: taskId, attempt: 1, data: { output: approvedOutput(ack, new Date(now).toISOString()), duration_ms: durationMs, ack: by } }
        : { type: 'task.failed', flow_id: flowId, task_id: taskId, attempt: 1, data: { error: rejection(ack), duration_ms: durationMs, ack: by } };
    const stored = await this.log.appendNew(event, `${flowId}:${taskId}:ack`, now);
    if (stored.duplicate) {
      // Another ack (or the timeout) was stored first: say how the task ended.
      const ended = (await foldFlowHistory(this.ctx.js, this.ctx.topo, flowId))?.tasks[taskId];
      throw apiError('TASK_NOT_WAITING', taskId, ended !== undefined ? howItEnded(ended) : 'another ack was stored first');
    }
    return ack.status === 'success' ? 'succeeded' : 'failed';
  }

  /** The approval task an ack may end, or the error that says why it may not. */
  private async waitingTask(flowId: string, taskId: string): Promise<{ state: FlowState; task: TaskState }> {
    if (!ULID_PATTERN.test(flowId)) throw apiError('FLOW_NOT_FOUND', flowId);
    const state = await foldFlowHistory(this.ctx.js, this.ctx.topo, flowId);
    if (state === null) throw apiError('FLOW_NOT_FOUND', flowId);
    const task = Object.hasOwn(state.tasks, taskId) ? state.tasks[taskId] : undefined;
    if (task === undefined) throw apiError('TASK_NOT_FOUND', flowId, taskId);
    if (task.spec.executor !== 'approval') throw apiError('NOT_AN_APPROVAL', taskId, task.spec.executor);
    if (task.status !== 'waiting') throw apiError('TASK_NOT_WAITING', taskId, howItEnded(task));
    if (!awaitsAck(state, taskId)) throw apiError('TASK_NOT_WAITING', taskId, `its flow is ${state.status}, so the planner is cancelling it`);
    return { state, task };
  }
}

/** Compares in constant time, so the answer's timing says nothing about how much of a code was right. */
function sameCode(task: TaskState, given: string | undefined): boolean {
  const expected = (task.output as { code?: unknown } | undefined)?.code;
  if (typeof expected !== 'string' || given === undefined) return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  // timingSafeEqual needs equal lengths; comparing `a` with itself keeps the time independent of `b`.
  return a.length === b.length ? timingSafeEqual(a, b) : !timingSafeEqual(a, a);
}

/**
 * Tasked's output for an approved task: the ack's output, with `approved_by` and `acked_at` added
 * when an approver is named (a non-object output kept as `original_output`). Without an output,
 * where Tasked stores null, the output still says it was approved, by whom and when.
 */
export function approvedOutput(ack: AckRequest, ackedAt: string): unknown {
  const stamp = { ...(ack.approved_by !== undefined && { approved_by: ack.approved_by }), acked_at: ackedAt };
  if (ack.output === undefined || ack.output === null) return { approved: true, ...stamp };
  if (ack.approved_by === undefined) return ack.output;
  if (typeof ack.output === 'object' && !Array.isArray(ack.output)) return { ...(ack.output as Record<string, unknown>), ...stamp };
  return { original_output: ack.output, ...stamp };
}

function rejection(ack: AckRequest) {
  const message = ack.error ?? (ack.approved_by !== undefined ? `rejected by ${ack.approved_by}` : 'rejected');
  return { message, code: 'REJECTED', retryable: false };
}

/** Why a task is not waiting, in words: what it is still doing, or how it ended and when. */
export function howItEnded(task: TaskState): string {
  const at = task.finished_at !== undefined ? ` at ${task.finished_at}` : '';
  const by = task.ack?.approved_by !== undefined ? ` by ${task.ack.approved_by}` : '';
  switch (task.status) {
    case 'pending':
      return 'it is pending: its dependencies have not let it run yet';
    case 'succeeded':
      return `it was already approved${by}${at}`;
    case 'failed':
      return task.ack !== undefined ? `it was already rejected${by}${at}` : `it already failed${at}: ${task.error?.message ?? 'no reason given'}`;
    case 'timed_out':
      return `it already timed out${at}: ${task.error?.message ?? 'no ack came in time'}`;
    case 'cancelled':
      return `it was cancelled${at}: ${task.reason ?? 'the flow was cancelled'}`;
    case 'skipped':
    case 'upstream_failed':
      return `it never waited: it ended ${task.status}${at} (${task.reason ?? 'its dependencies decided so'})`;
    default:
      return `it is ${task.status}`;
  }
}
