import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { TaskstreamClient } from '@taskstream/client';
import { EXECUTOR_NAMES, FLOW_STATUSES_FOR_QUERY, validateFlow } from '@taskstream/domain';
import { z } from 'zod';
import { MAX_STATUS_TASKS, MAX_WAIT_SECS, OUTPUT_CHARS, statusOf, taskOutput, viewAfterChange } from './flows.js';
import { answer, FLOW_SCHEMA_URI, flowUri, guarded } from './format.js';

/** What the tools share with the rest of the session: which flows to ask approvals for. */
export interface ToolContext {
  client: TaskstreamClient;
  /** Follow a flow for the session: ask the user about its approvals where the client can be asked. */
  followApprovals(flowId: string): void;
}

const flowId = z.string().regex(/^[0-9A-HJKMNP-TV-Z]{26}$/, 'a flow id: the 26-character ULID submit answered').describe('The flow id (a 26-character ULID), as submit answered.');
const idempotencyKey = z
  .string()
  .regex(/^[\x20-\x7e]{1,255}$/, '1 to 255 printable ASCII characters')
  .optional()
  .describe('Makes a retry safe: the same key and the same input answer the first result instead of starting again. Use a new key for a new run.');

const task = z
  .looseObject({
    id: z.string().describe('Unique in the flow; any characters ("build.linux", "a/b").'),
    executor: z.string().describe(`What runs the task: ${EXECUTOR_NAMES.join(', ')}.`),
    config: z.unknown().optional().describe('The executor\'s settings, e.g. shell {"command": "make test"}, http {"url": "https://…", "method": "POST"}, delay {"ms": 500}, approval {"message": "Ship it?"}, wait {"signal": "paid"}.'),
    depends_on: z.array(z.string()).optional().describe('Ids of tasks that must succeed first.'),
  })
  .describe('A task; retries, timeout_secs, backoff, condition, input and the other fields of the flow language are accepted too.');

/** A flow as tools take it; the whole language is the JSON Schema of the resource taskstream://schemas/flow. */
export const flowInput = z
  .looseObject({
    name: z.string().optional().describe('Shown in lists.'),
    queue: z.string().optional().describe('The queue of tasks that name none (default "default").'),
    tasks: z.array(task).describe('The DAG: each task with its dependencies.'),
  })
  .describe(`A flow (Tasked's format: {tasks: [{id, executor, config, depends_on}]}, plus name, queue, labels, params, fail_fast, webhooks …). Its full JSON Schema is the resource ${FLOW_SCHEMA_URI}. Check it with taskstream_validate_flow before submitting.`);

const readOnly = { readOnlyHint: true, openWorldHint: false } as const;

/** The flow tools: validate, submit, status, list, output, cancel, rerun, fork. */
export function registerFlowTools(server: McpServer, ctx: ToolContext): void {
  const { client } = ctx;
  server.registerTool(
    'taskstream_validate_flow',
    {
      title: 'Validate a flow',
      description: 'Checks a flow without submitting it and lists every problem with its path (e.g. tasks[1].depends_on[0]). Answers {valid: true, tasks} or {valid: false, problems: [{path, message}]}.',
      inputSchema: { flow: flowInput },
      annotations: readOnly,
    },
    async ({ flow }) =>
      guarded(async () => {
        const result = validateFlow(flow);
        return answer(result.ok ? { valid: true, tasks: result.flow.tasks.length, ...(result.warnings.length > 0 && { warnings: result.warnings }) } : { valid: false, problems: result.problems });
      }),
  );

  server.registerTool(
    'taskstream_submit_flow',
    {
      title: 'Submit a flow',
      description:
        'Starts a flow and answers at once with its flow_id and a resource link (taskstream://flows/{id}); it does not wait for the run. Follow it with taskstream_flow_status (wait_secs waits for a change), or subscribe to the resource to be notified as it changes. An invalid flow is refused with every problem and its path.',
      inputSchema: {
        flow: flowInput,
        idempotency_key: idempotencyKey,
        ask_approvals: z.boolean().optional().describe('When the run reaches an approval task, ask the user here (if this client supports elicitation) and send the answer. Default true.'),
      },
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: true },
    },
    async ({ flow, idempotency_key, ask_approvals }) =>
      guarded(async () => {
        const submitted = await client.submit(flow as never, idempotency_key === undefined ? {} : { idempotencyKey: idempotency_key });
        if (ask_approvals !== false) ctx.followApprovals(submitted.flow_id);
        return answer(
          { flow_id: submitted.flow_id, status: submitted.status, tasks: submitted.tasks, replayed: submitted.replayed, resource: flowUri(submitted.flow_id), ...(submitted.warnings && { warnings: submitted.warnings }) },
          [{ type: 'resource_link', uri: flowUri(submitted.flow_id), name: `flow ${submitted.flow_id}`, mimeType: 'application/json', description: 'The run: status, counts and every task. Subscribe to be notified as it changes.' }],
        );
      }),
  );

  server.registerTool(
    'taskstream_flow_status',
    {
      title: 'Status of a flow',
      description: `A flow's status, counts and tasks (the first ${MAX_STATUS_TASKS}), each task's status and error. With wait_secs, waits up to that long (at most ${MAX_WAIT_SECS}) for the flow to change before answering; changed says whether it did. finished is true once it succeeded, failed or was cancelled.`,
      inputSchema: { flow_id: flowId, wait_secs: z.number().int().min(0).max(MAX_WAIT_SECS).optional().describe(`Wait up to this many seconds for a change (0 to ${MAX_WAIT_SECS}; default 0: answer now).`) },
      annotations: readOnly,
    },
    async ({ flow_id, wait_secs }) =>
      guarded(async () => {
        const { view, changed } = await viewAfterChange(client, flow_id, wait_secs ?? 0);
        return answer({ ...statusOf(view), ...(wait_secs ? { changed } : {}) });
      }),
  );

  server.registerTool(
    'taskstream_list_flows',
    {
      title: 'List runs',
      description: 'Flows, newest first, filtered. Pass next_cursor back as cursor for the next page.',
      inputSchema: {
        status: z.array(z.enum(FLOW_STATUSES_FOR_QUERY as [string, ...string[]])).max(6).optional().describe('Only these statuses.'),
        queue: z.string().max(64).optional(),
        name: z.string().max(200).optional().describe('Names containing this (case-insensitive).'),
        template: z.string().max(64).optional().describe('Runs of this template.'),
        labels: z.record(z.string(), z.string()).optional().describe('Flows carrying every one of these labels, e.g. {"env": "prod"}.'),
        since: z.string().optional().describe('Submitted at or after this RFC 3339 time.'),
        limit: z.number().int().min(1).max(100).optional().describe('At most this many (default 20).'),
        cursor: z.string().max(100).optional(),
      },
      annotations: readOnly,
    },
    async ({ status, labels, limit, ...rest }) =>
      guarded(async () => {
        const page = await client.listPage({ ...rest, ...(status && { status: status as never }), ...(labels && { labels }), limit: limit ?? 20 });
        return answer({ flows: page.flows.map(({ load: _load, ...f }) => f), ...(page.next_cursor && { next_cursor: page.next_cursor }) });
      }),
  );

  server.registerTool(
    'taskstream_task_output',
    {
      title: "A task's output",
      description: `A task's output and error. Shell output's stdout and stderr are cut to max_chars each (their last characters unless tail is false); other outputs as JSON the same way. Default ${OUTPUT_CHARS.default} characters, at most ${OUTPUT_CHARS.max}.`,
      inputSchema: {
        flow_id: flowId,
        task_id: z.string().min(1).max(1000),
        max_chars: z.number().int().min(100).max(OUTPUT_CHARS.max).optional(),
        tail: z.boolean().optional().describe('Keep the end of long output (default true); false keeps the beginning.'),
      },
      annotations: readOnly,
    },
    async ({ flow_id, task_id, max_chars, tail }) =>
      guarded(async () => {
        const found = await taskOutput(client, flow_id, task_id, max_chars ?? OUTPUT_CHARS.default, tail ?? true);
        if (!found.found) return { isError: true, content: [{ type: 'text', text: `TASK_NOT_FOUND: flow ${flow_id} has no task "${task_id}"; its tasks include: ${found.tasks.join(', ')}` }] };
        return answer(found.result);
      }),
  );

  registerChangeTools(server, client);
}

/** Tools that change a flow: cancel, rerun, fork. */
function registerChangeTools(server: McpServer, client: TaskstreamClient): void {
  server.registerTool(
    'taskstream_cancel_flow',
    {
      title: 'Cancel a flow',
      description: 'Stops a flow: pending tasks never run, running ones are stopped. It ends cancelled once every task has settled. A flow that already ended is refused with FLOW_ALREADY_FINISHED.',
      inputSchema: { flow_id: flowId, reason: z.string().max(1000).optional().describe('Recorded in the history.') },
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
    },
    async ({ flow_id, reason }) => guarded(async () => answer(await client.cancel(flow_id, reason))),
  );

  server.registerTool(
    'taskstream_rerun_flow',
    {
      title: 'Rerun a finished flow',
      description: 'Starts a new flow with the same definition that reuses the outputs of the tasks that succeeded and runs the others; with from, that task and everything downstream of it run again too. Only for finished flows (FLOW_NOT_FINISHED otherwise).',
      inputSchema: { flow_id: flowId, from: z.string().max(1000).optional().describe('A task id to run again with everything after it.') },
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: true },
    },
    async ({ flow_id, from }) =>
      guarded(async () => {
        const rerun = await client.rerun(flow_id, from === undefined ? {} : { from });
        return answer({ ...rerun, resource: flowUri(rerun.flow_id) }, [{ type: 'resource_link', uri: flowUri(rerun.flow_id), name: `flow ${rerun.flow_id}`, mimeType: 'application/json' }]);
      }),
  );

  server.registerTool(
    'taskstream_fork_flow',
    {
      title: 'Fork a flow at a point of its history',
      description: "Starts a new flow from the flow's state at event sequence at_seq (see the resource taskstream://flows/{id}/events): tasks that had succeeded by then are reused, the rest run. patch replaces top-level fields and merges tasks by id; patched tasks and what depends on them run again.",
      inputSchema: {
        flow_id: flowId,
        at_seq: z.number().int().min(1).describe('The stream sequence (seq) of an event of the flow.'),
        patch: z.record(z.string(), z.unknown()).optional().describe('E.g. {"tasks": [{"id": "deploy", "config": {"command": "make deploy-fixed"}}]}.'),
      },
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: true },
    },
    async ({ flow_id, at_seq, patch }) =>
      guarded(async () => {
        const fork = await client.fork(flow_id, at_seq, patch);
        return answer({ ...fork, resource: flowUri(fork.flow_id) }, [{ type: 'resource_link', uri: flowUri(fork.flow_id), name: `flow ${fork.flow_id}`, mimeType: 'application/json' }]);
      }),
  );
}

/** Approvals, signals and templates. */
export function registerOtherTools(server: McpServer, ctx: ToolContext): void {
  const { client } = ctx;
  server.registerTool(
    'taskstream_decide_approval',
    {
      title: 'Approve or reject a waiting approval',
      description: 'Approves (the task succeeds, its dependents run) or rejects (it fails, its dependents do not run) an approval task whose status is waiting. The approval code is read from the task unless given. Only decide what the user asked for.',
      inputSchema: {
        flow_id: flowId,
        task_id: z.string().min(1).max(1000),
        decision: z.enum(['approve', 'reject']),
        reason: z.string().max(4000).optional().describe('With reject: recorded as the task\'s error.'),
        decided_by: z.string().max(200).optional().describe('Who decided, recorded in the history.'),
        output: z.unknown().optional().describe('With approve: the task\'s output (JSON).'),
      },
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false },
    },
    async ({ flow_id, task_id, decision, reason, decided_by, output }) =>
      guarded(async () => {
        const by = decided_by === undefined ? {} : { approvedBy: decided_by };
        if (decision === 'approve') await client.approve(flow_id, task_id, { ...by, ...(output !== undefined && { output }) });
        else await client.reject(flow_id, task_id, { ...by, ...(reason !== undefined && { reason }) });
        return answer({ flow_id, task_id, decision, recorded: true });
      }),
  );

  server.registerTool(
    'taskstream_send_signal',
    {
      title: 'Send a signal',
      description: 'Sends a named signal: every wait task waiting for that name whose match accepts the payload succeeds with the payload as its output. Waits that begin later look back over recent signals.',
      inputSchema: {
        name: z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, '1 to 128 letters, digits, "_" or "-"').describe('The signal name, as the wait task names it.'),
        payload: z.unknown().optional().describe('Any JSON value (at most 64 KiB); default null.'),
        idempotency_key: idempotencyKey,
      },
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    },
    async ({ name, payload, idempotency_key }) => guarded(async () => answer(await client.signal(name, payload ?? null, idempotency_key === undefined ? {} : { idempotencyKey: idempotency_key }))),
  );

  server.registerTool(
    'taskstream_list_templates',
    {
      title: 'List templates',
      description: 'Templates (versioned flows run with params), each with its latest version. With name, that template whole: its flow and the JSON Schema of its params.',
      inputSchema: { name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/).optional() },
      annotations: readOnly,
    },
    async ({ name }) => guarded(async () => answer(name === undefined ? { templates: await client.templates.list() } : await client.templates.get(name))),
  );

  server.registerTool(
    'taskstream_run_template',
    {
      title: 'Run a template',
      description: "Runs a template with params (checked against its params schema; every problem is answered with its path) and answers at once with the flow_id and a resource link, like submit.",
      inputSchema: {
        name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/),
        params: z.record(z.string(), z.unknown()).optional().describe('The params, as its params schema describes them.'),
        version: z.number().int().min(1).optional().describe('Default: the latest.'),
        idempotency_key: idempotencyKey,
        ask_approvals: z.boolean().optional().describe('Ask the user here about the run\'s approvals (default true).'),
      },
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: true },
    },
    async ({ name, params, version, idempotency_key, ask_approvals }) =>
      guarded(async () => {
        const run = await client.templates.run(name, params ?? {}, { ...(version !== undefined && { version }), ...(idempotency_key !== undefined && { idempotencyKey: idempotency_key }) });
        if (ask_approvals !== false) ctx.followApprovals(run.flow_id);
        return answer({ flow_id: run.flow_id, template: run.template, tasks: run.tasks, replayed: run.replayed, resource: flowUri(run.flow_id) }, [
          { type: 'resource_link', uri: flowUri(run.flow_id), name: `flow ${run.flow_id}`, mimeType: 'application/json' },
        ]);
      }),
  );
}
