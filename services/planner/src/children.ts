import { awaitsAck, instantiateTemplate, isTerminalFlow, jsonBytes, type EventDraft, type FlowDefinition, type FlowEvent, type FlowState, type TaskError } from '@taskstream/domain';
import { childFlowId, submitFlow, type EventLog, type TemplateStore } from '@taskstream/nats';
import type { ServiceContext } from '@taskstream/runtime';
import type { FlowHistory } from './flow-cache.js';
import { decisionsStored } from './metrics.js';

/** The child's task outputs in a waiting parent's output, while they fit; beyond, they are left out (the child's view has them). */
export const MAX_CHILD_OUTPUTS_BYTES = 256 * 1024;

type WaitingDraft = Extract<EventDraft, { type: 'task.waiting' }>;

/**
 * Trigger tasks' child flows. The child is submitted before the parent's `task.waiting` is stored,
 * under an id derived from the parent and the task, by a conditional append: a planner that dies
 * between the two submits nothing new when the decision is made again. The child's end is
 * reported to the parent when the child's terminal event is delivered.
 */
export class ChildFlows {
  constructor(
    private readonly ctx: ServiceContext,
    private readonly log: EventLog,
    private readonly history: FlowHistory,
    private readonly templates: Pick<TemplateStore, 'resolve'> | undefined,
  ) {}

  /**
   * The decision to store for `draft`: a trigger task's wait with its child submitted and named,
   * or the task's failure when its template cannot make a flow. Other drafts pass unchanged.
   */
  async launch(draft: EventDraft, parent: FlowState): Promise<EventDraft> {
    if (draft.type !== 'task.waiting' || draft.data.child === undefined || draft.data.child.flow_id !== '') return draft;
    const { child } = draft.data;
    const made = child.definition !== undefined ? { ok: true as const, definition: child.definition } : await this.fromTemplate(child.template, child.params);
    if (!made.ok) return failure(draft, made.error);
    const flowId = childFlowId(parent.flow_id, draft.task_id);
    const { created } = await submitFlow(this.ctx.js, this.ctx.topo, {
      definition: made.definition,
      flowId,
      submittedBy: `flow:${parent.flow_id}`,
      origin: { parent: { flow_id: parent.flow_id, task_id: draft.task_id, depth: child.depth }, ...(child.template !== undefined && made.version !== undefined && { template: { name: child.template.name, version: made.version } }) },
    });
    if (created) this.ctx.log.info({ flow_id: parent.flow_id, task_id: draft.task_id, child_flow_id: flowId }, 'child flow submitted');
    const { definition: _definition, ...stored } = child;
    const waiting: WaitingDraft = { ...draft, data: { ...draft.data, child: { ...stored, flow_id: flowId, queue: made.definition.queue } } };
    return waiting;
  }

  private async fromTemplate(template: { name: string; version?: number } | undefined, params: Record<string, unknown> | undefined): Promise<{ ok: true; definition: FlowDefinition; version?: number } | { ok: false; error: TaskError }> {
    const invalid = (message: string) => ({ ok: false as const, error: { message, code: 'CHILD_FLOW_INVALID', retryable: false } });
    if (template === undefined || this.templates === undefined) return invalid('the trigger task names a template, but templates are not available here');
    const named = template.version === undefined ? `template "${template.name}"` : `version ${template.version} of template "${template.name}"`;
    let stored;
    try {
      stored = await this.templates.resolve(template.name, template.version);
    } catch (error) {
      return invalid(`${named} cannot be read: ${(error as Error).message}`);
    }
    if (stored === undefined) return invalid(`${named} does not exist; create it with PUT /api/v1/templates/${template.name} or name another`);
    const made = instantiateTemplate(stored, params ?? {});
    if (!made.ok) return invalid(`the params do not fit ${named}: ${made.problems.slice(0, 5).map((p) => `${p.path}: ${p.message}`).join('; ')}${made.problems.length > 5 ? `; and ${made.problems.length - 5} more` : ''}`);
    return { ok: true, definition: made.definition, version: stored.version };
  }

  /**
   * On the delivery of an event folded into `state`: a child's terminal event ends its parent's
   * task; a parent's wait for a child that had already ended (its submission survived a crash of
   * the planner, the parent's wait did not, and the child ran meanwhile) ends at once.
   */
  async onEvent(event: FlowEvent, state: FlowState): Promise<void> {
    if (event.type === 'flow.succeeded' || event.type === 'flow.failed' || event.type === 'flow.cancelled') {
      const link = state.origin?.parent;
      if (link === undefined) return;
      const parent = await this.history.fold(link.flow_id);
      if (parent !== null) await this.report(parent, link.task_id, state);
    } else if (event.type === 'task.waiting' && event.data.child !== undefined && event.data.child.wait && event.data.child.flow_id !== '') {
      const child = await this.history.fold(event.data.child.flow_id);
      if (child !== null && isTerminalFlow(child)) await this.report(state, event.task_id, child);
    }
  }

  /**
   * Ends the parent's task with its ended child: Tasked's summary and the child's outputs, or
   * CHILD_FLOW_FAILED. Only while the task still waits for that child (read from the parent's log),
   * and under the task's terminal key, so it ends once whichever path reports it.
   */
  private async report(parent: FlowState, taskId: string, child: FlowState): Promise<void> {
    const task = parent.tasks[taskId];
    if (task?.child?.flow_id !== child.flow_id || !awaitsAck(parent, taskId)) return;
    const status = child.status === 'succeeded' ? 'succeeded' : child.status === 'failed' ? 'failed' : 'cancelled';
    const summary = childSummary(child, status);
    const endedAt = child.finished_at ?? new Date().toISOString();
    const waitedMs = task.ready_at === undefined ? 0 : Math.max(0, Date.parse(endedAt) - Date.parse(task.ready_at));
    const end = { flow_id: child.flow_id, status } as const;
    const key = `${parent.flow_id}:${taskId}`;
    if (status === 'succeeded') {
      await this.log.appendNew({ type: 'task.succeeded', flow_id: parent.flow_id, task_id: taskId, attempt: 1, data: { output: summary, duration_ms: waitedMs, child: end } }, `${key}:task.succeeded`);
      decisionsStored([{ type: 'task.succeeded' }]);
    } else {
      const message = `child flow ${status}: ${summary.tasks_succeeded} succeeded, ${summary.tasks_failed} failed (flow ${child.flow_id})`;
      await this.log.appendNew({ type: 'task.failed', flow_id: parent.flow_id, task_id: taskId, attempt: 1, data: { error: { message, code: 'CHILD_FLOW_FAILED', retryable: false }, duration_ms: waitedMs, child: end } }, `${key}:task.failed`);
      decisionsStored([{ type: 'task.failed' }]);
    }
  }
}

/** Tasked's summary of a child flow, with its tasks' outputs by id while they fit. */
export function childSummary(child: FlowState, status: 'succeeded' | 'failed' | 'cancelled') {
  const ids = child.order;
  const succeeded = ids.filter((id) => child.tasks[id]!.status === 'succeeded').length;
  const failed = ids.filter((id) => ['failed', 'timed_out', 'upstream_failed', 'cancelled'].includes(child.tasks[id]!.status)).length;
  const outputs: Record<string, unknown> = {};
  let bytes = 0;
  let omitted = false;
  for (const id of ids) {
    const output = child.tasks[id]!.output;
    if (output === undefined) continue;
    const size = jsonBytes(output) + id.length + 8;
    if (bytes + size > MAX_CHILD_OUTPUTS_BYTES) {
      omitted = true;
      continue;
    }
    bytes += size;
    outputs[id] = output;
  }
  return {
    flow_id: child.flow_id,
    queue_id: child.definition.queue,
    state: status,
    task_count: ids.length,
    tasks_succeeded: succeeded,
    tasks_failed: failed,
    outputs,
    ...(omitted && { outputs_omitted: true }),
  };
}

function failure(draft: WaitingDraft, error: TaskError): EventDraft {
  return { key: `${draft.flow_id}:${draft.task_id}:task.failed`, type: 'task.failed', flow_id: draft.flow_id, task_id: draft.task_id, attempt: 1, data: { error, duration_ms: 0 } };
}
