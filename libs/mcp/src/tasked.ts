import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { TaskstreamError, type FlowView, type ScheduleView, type TaskstreamClient } from '@taskstream/client';
import { taskedCounts, taskedFlowState, taskedTaskState } from '@taskstream/domain';
import { z } from 'zod';
import { answer, guarded } from './format.js';

/**
 * Tasked's MCP tools, with its names, inputs and answers (see docs/mcp.md), so an agent configured
 * for Tasked keeps working. States are Tasked's: Taskstream's richer statuses are mapped onto them.
 */

/** A task's state as Tasked names it: the mapping the gateway's Tasked API uses (see docs/api.md). */
const taskState = (task: FlowView['tasks'][number]) => taskedTaskState(task.status, task.attempts.at(-1)?.outcome);

function counts(view: FlowView) {
  return { task_count: view.total, ...taskedCounts(view.counts) };
}

const MAX_LISTED = 100;
const queue = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'a queue name: letters, digits, "-" and "_", at most 64').describe('The queue name.');
const flowId = z.string().min(1).max(64).describe('The flow id.');
const taskDef = z.looseObject({ id: z.string(), executor: z.string(), config: z.unknown().optional(), input: z.unknown().optional(), depends_on: z.array(z.string()).optional() });
const writes = { readOnlyHint: false, openWorldHint: true } as const;

function scheduleOut(s: ScheduleView) {
  return { schedule_id: s.id, queue: s.queue ?? s.queue_id, name: s.name ?? null, cron: s.cron, enabled: s.enabled, next_run_at: s.next_run_at, last_triggered_at: s.last_triggered_at, created_at: s.created_at };
}

/** Tasked's flow tools. */
export function registerTaskedFlowTools(server: McpServer, client: TaskstreamClient, followApprovals: (flowId: string) => void): void {
  server.registerTool(
    'tasked_submit_flow',
    {
      description: "Tasked-compatible: submit a flow of tasks to a queue (created if missing; queue_config replaces its policy). Returns {flow_id, queue, state, task_count}.",
      inputSchema: { queue, tasks: z.array(taskDef).min(1), queue_config: z.record(z.string(), z.unknown()).optional(), fail_fast: z.boolean().optional() },
      annotations: writes,
    },
    async ({ queue: q, tasks, queue_config, fail_fast }) =>
      guarded(async () => {
        const submitted = await client.submit({ queue: q, tasks: tasks as never, ...(queue_config && { queue_config }), ...(fail_fast !== undefined && { fail_fast }) });
        followApprovals(submitted.flow_id);
        return answer({ flow_id: submitted.flow_id, queue: q, state: 'running', task_count: submitted.tasks });
      }),
  );

  server.registerTool(
    'tasked_flow_status',
    { description: 'Tasked-compatible: a flow\'s state and counts, and each task\'s state, executor, output and error.', inputSchema: { flow_id: flowId }, annotations: { readOnlyHint: true } },
    async ({ flow_id }) =>
      guarded(async () => {
        const view = await client.get(flow_id);
        const tasks = view.tasks.map((t) => ({ id: t.id, state: taskState(t), executor: t.executor, ...(t.output !== undefined && { output: t.output }), ...(t.error && { error: t.error.message }) }));
        return answer({ flow_id, queue: view.queue, state: taskedFlowState(view.status), ...counts(view), tasks });
      }),
  );

  server.registerTool(
    'tasked_task_output',
    { description: "Tasked-compatible: one task's state, output and error.", inputSchema: { flow_id: flowId, task_id: z.string().min(1).max(1000) }, annotations: { readOnlyHint: true } },
    async ({ flow_id, task_id }) =>
      guarded(async () => {
        const task = (await client.get(flow_id)).tasks.find((t) => t.id === task_id);
        if (!task) throw new TaskstreamError('TASK_NOT_FOUND', `Task '${task_id}' not found in flow '${flow_id}'`);
        return answer({ task_id, flow_id, state: taskState(task), output: task.output ?? null, error: task.error?.message ?? null });
      }),
  );

  server.registerTool(
    'tasked_cancel_flow',
    { description: 'Tasked-compatible: cancel a flow (a no-op on a flow that already ended).', inputSchema: { flow_id: flowId }, annotations: { ...writes, destructiveHint: true, idempotentHint: true } },
    async ({ flow_id }) =>
      guarded(async () => {
        try {
          await client.cancel(flow_id);
        } catch (error) {
          // Tasked answers success for a flow that already ended, and keeps its state.
          if (!(error instanceof TaskstreamError && error.code === 'FLOW_ALREADY_FINISHED')) throw error;
        }
        return answer(`Flow '${flow_id}' cancelled successfully`);
      }),
  );

  server.registerTool(
    'tasked_list_flows',
    {
      description: `Tasked-compatible: a queue's flows (newest first, at most ${MAX_LISTED}), optionally in one state (running, succeeded, failed, cancelled).`,
      inputSchema: { queue, state: z.enum(['running', 'succeeded', 'failed', 'cancelled']).optional() },
      annotations: { readOnlyHint: true },
    },
    async ({ queue: q, state }) =>
      guarded(async () => {
        const status = state === undefined ? undefined : state === 'running' ? (['submitted', 'running', 'cancelling'] as const) : ([state] as const);
        const page = await client.listPage({ queue: q, limit: MAX_LISTED, ...(status && { status }) });
        const flows = [];
        for (const summary of page.flows) {
          const view = await client.get(summary.flow_id);
          flows.push({ flow_id: summary.flow_id, state: taskedFlowState(summary.status), ...counts(view), created_at: summary.submitted_at });
        }
        return answer({ queue: q, count: flows.length, flows });
      }),
  );
}

/** Tasked's schedule tools. */
export function registerTaskedScheduleTools(server: McpServer, client: TaskstreamClient): void {
  server.registerTool(
    'tasked_create_schedule',
    {
      description: "Tasked-compatible: run a flow on a queue at each time of a cron expression (5 fields, or 6/7 with seconds first; UTC). Runs may overlap, as Tasked's do.",
      inputSchema: { queue, cron: z.string().min(1).max(200), flow: z.looseObject({ tasks: z.array(taskDef).min(1) }), name: z.string().max(200).optional(), enabled: z.boolean().optional() },
      annotations: writes,
    },
    async ({ queue: q, cron, flow, name, enabled }) =>
      guarded(async () => {
        const created = await client.schedules.create({ queue: q, cron, flow: flow as never, overlap: 'allow', ...(name !== undefined && { name }), ...(enabled !== undefined && { enabled }) });
        return answer({ schedule_id: created.id, queue: q, cron: created.cron, enabled: created.enabled, next_run_at: created.next_run_at });
      }),
  );

  server.registerTool(
    'tasked_list_schedules',
    { description: "Tasked-compatible: a queue's schedules.", inputSchema: { queue }, annotations: { readOnlyHint: true } },
    async ({ queue: q }) =>
      guarded(async () => {
        const schedules = (await client.schedules.list()).filter((s) => (s.queue ?? s.queue_id) === q).map(scheduleOut);
        return answer({ queue: q, count: schedules.length, schedules });
      }),
  );

  server.registerTool(
    'tasked_delete_schedule',
    { description: 'Tasked-compatible: delete a schedule; runs already started go on.', inputSchema: { schedule_id: z.string().min(1).max(128) }, annotations: { ...writes, destructiveHint: true } },
    async ({ schedule_id }) =>
      guarded(async () => {
        await client.schedules.delete(schedule_id);
        return answer(`Schedule '${schedule_id}' deleted successfully`);
      }),
  );
}
