import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { ElicitRequestSchema, McpError, ResourceUpdatedNotificationSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { generateApiKey } from '@taskstream/nats';
import { freePort, NatsServer } from '@taskstream/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_SERVICES, Deployment, FAST_FAILOVER } from '../support/deployment.js';
import { ROOT } from '../support/stack.js';

/*
 * The MCP server through the SDK's own client, over stdio (`taskstream mcp`, a process) and over
 * Streamable HTTP (the gateway's /mcp), against every service as its own process with API keys on.
 */

const ADMIN = generateApiKey().key;
const CLI = join(ROOT, 'cli', 'bin', 'taskstream.js');
const CLEAN_ENV = { TASKSTREAM_URL: '', TASKSTREAM_API_KEY: '', TASKSTREAM_NATS_URL: '' };

const TASKSTREAM_TOOLS = [
  'taskstream_validate_flow', 'taskstream_submit_flow', 'taskstream_flow_status', 'taskstream_list_flows', 'taskstream_task_output', 'taskstream_cancel_flow',
  'taskstream_rerun_flow', 'taskstream_fork_flow', 'taskstream_decide_approval', 'taskstream_send_signal', 'taskstream_list_templates', 'taskstream_run_template',
];
const TASKED_TOOLS = ['tasked_submit_flow', 'tasked_flow_status', 'tasked_task_output', 'tasked_cancel_flow', 'tasked_list_flows', 'tasked_create_schedule', 'tasked_list_schedules', 'tasked_delete_schedule'];

const gated = (message: string) => ({
  tasks: [
    { id: 'build', executor: 'noop' },
    { id: 'release/gate', executor: 'approval', depends_on: ['build'], config: { message } },
    { id: 'deploy', executor: 'noop', depends_on: ['release/gate'] },
  ],
});

type Call = CallToolResult & { structuredContent?: any };

/** An MCP client that approves every approval it is asked about, recording the questions. */
async function connect(transport: Transport) {
  const client = new Client({ name: 'taskstream-test', version: '1.0.0' }, { capabilities: { elicitation: { form: {} } } });
  const asked: string[] = [];
  client.setRequestHandler(ElicitRequestSchema, async (request) => {
    asked.push(String(request.params.message));
    return { action: 'accept', content: { decision: 'approve' } };
  });
  await client.connect(transport);
  const call = async (name: string, args: Record<string, unknown>) => (await client.callTool({ name, arguments: args })) as Call;
  /** Waits on the status tool (each call waits for a change) until the flow finishes or `until` holds. */
  const until = async (flowId: string, done: (status: any) => boolean = (s) => s.finished) => {
    for (let i = 0; i < 30; i++) {
      const status = (await call('taskstream_flow_status', { flow_id: flowId, wait_secs: 5 })).structuredContent;
      if (done(status)) return status;
    }
    throw new Error(`flow ${flowId} did not get there`);
  };
  return { client, asked, call, until };
}

/** The whole tour of tools and resources; `queue` and the names made from it keep the two transports' runs apart. */
async function exercise(open: () => Transport, queue: string, base: string) {
  const { client, asked, call, until } = await connect(open());
  try {
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual([...TASKSTREAM_TOOLS, ...TASKED_TOOLS].sort());
    const submitTool = tools.find((t) => t.name === 'taskstream_submit_flow')!;
    expect(submitTool.description).toMatch(/answers at once/);
    expect(Object.keys(submitTool.inputSchema.properties!)).toEqual(expect.arrayContaining(['flow', 'idempotency_key']));

    // Bad input: every problem of a flow with its path, without submitting; a malformed id; an unknown tool.
    const invalid = await call('taskstream_validate_flow', { flow: { tasks: [{ id: 'a', executor: 'noop', depends_on: ['x'] }, { id: 'a', executor: 'nope' }] } });
    expect(invalid.structuredContent.valid).toBe(false);
    expect(invalid.structuredContent.problems.map((p: any) => p.path)).toEqual(expect.arrayContaining(['tasks[0].depends_on[0]']));
    expect((await call('taskstream_validate_flow', { flow: { tasks: [{ id: 'a', executor: 'noop' }] } })).structuredContent).toEqual({ valid: true, tasks: 1 });
    const refused = await call('taskstream_submit_flow', { flow: { tasks: [{ id: 'a', executor: 'nope' }] } });
    expect(refused.isError).toBe(true);
    expect((refused.content[0] as { text: string }).text).toMatch(/^INVALID_FLOW: .*\n- tasks\[0\]\.executor: /s);
    const badId = await call('taskstream_flow_status', { flow_id: 'nope' });
    expect(badId.isError).toBe(true);
    expect((badId.content[0] as { text: string }).text).toContain('flow_id');
    const unknown = await client.callTool({ name: 'no_such_tool', arguments: {} }).then((r) => r as Call, (e: unknown) => e);
    expect(unknown instanceof McpError ? unknown.message : (unknown as Call).isError && (unknown as any).content[0].text).toMatch(/no_such_tool/);

    // Submit, then follow the run by subscription alone: each change is notified, the resource read at each.
    const submitted = await call('taskstream_submit_flow', { flow: { name: 'mcp-chain', tasks: [0, 1, 2, 3].map((i) => ({ id: `s${i}`, executor: 'delay', config: { ms: 300 }, ...(i > 0 && { depends_on: [`s${i - 1}`] }) })) }, idempotency_key: `mcp-${Math.random()}` });
    const flowId = submitted.structuredContent.flow_id as string;
    const link = submitted.content.find((c) => c.type === 'resource_link') as { uri: string };
    expect(link.uri).toBe(`taskstream://flows/${flowId}`);
    let notified = 0;
    let settle: (view: any) => void = () => undefined;
    const finished = new Promise<any>((resolve) => (settle = resolve));
    /** Reads the resource; settles once the view shows the run ended. */
    const read = async () => {
      const view = JSON.parse(((await client.readResource({ uri: link.uri })).contents[0] as { text: string }).text);
      if (['succeeded', 'failed', 'cancelled'].includes(view.status)) settle(view);
      return view;
    };
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, async (notification) => {
      if (notification.params.uri !== link.uri) return;
      notified++;
      await read();
    });
    await client.subscribeResource({ uri: link.uri });
    // Read once after subscribing, as an agent does: what changed before the subscription is in this read.
    const first = await read();
    const view = await finished;
    expect(view.status).toBe('succeeded');
    // Each task's start and end came as a change, unless the run was already over when it was read first.
    if (first.status === 'running' || first.status === 'submitted') expect(notified).toBeGreaterThan(0);
    const events = JSON.parse(((await client.readResource({ uri: `${link.uri}/events` })).contents[0] as { text: string }).text);
    expect(events.events.at(-1).event.type).toBe('flow.succeeded');
    const schema = JSON.parse(((await client.readResource({ uri: 'taskstream://schemas/flow' })).contents[0] as { text: string }).text);
    expect(schema.properties.tasks).toBeDefined();
    await expect(client.subscribeResource({ uri: 'taskstream://nothing' })).rejects.toThrow(/only flow resources/);

    // Approve through the tool (the user is not asked: ask_approvals false).
    const byTool = (await call('taskstream_submit_flow', { flow: gated('by the tool?'), ask_approvals: false })).structuredContent.flow_id;
    const waiting = await until(byTool, (s) => s.tasks.some((t: any) => t.id === 'release/gate' && t.status === 'waiting'));
    expect(waiting.tasks.find((t: any) => t.id === 'release/gate').waiting_for).toMatchObject({ awaiting_approval: true, message: 'by the tool?' });
    expect((await call('taskstream_decide_approval', { flow_id: byTool, task_id: 'release/gate', decision: 'approve', decided_by: 'agent' })).structuredContent).toMatchObject({ recorded: true });
    expect((await until(byTool)).status).toBe('succeeded');
    const twice = await call('taskstream_decide_approval', { flow_id: byTool, task_id: 'release/gate', decision: 'reject' });
    expect((twice.content[0] as { text: string }).text).toMatch(/^TASK_NOT_WAITING/);

    // The user is asked (elicitation) and the answer is written back as the ack.
    const asking = (await call('taskstream_submit_flow', { flow: gated('ship 1.2?') })).structuredContent.flow_id;
    expect((await until(asking)).status).toBe('succeeded');
    expect(asked.some((m) => m.includes('release/gate') && m.includes('ship 1.2?'))).toBe(true);
    // A run the session subscribes to is followed too: its approval is asked about.
    const subscribed = (await call('taskstream_submit_flow', { flow: gated('followed by subscription?'), ask_approvals: false })).structuredContent.flow_id;
    await client.subscribeResource({ uri: `taskstream://flows/${subscribed}` });
    expect((await until(subscribed)).status).toBe('succeeded');
    expect(asked.some((m) => m.includes(subscribed) && m.includes('followed by subscription?'))).toBe(true);

    // A shell step's long output, its tail bounded.
    const shell = (await call('taskstream_submit_flow', { flow: { tasks: [{ id: 'count', executor: 'shell', config: { command: 'seq 1 3000' } }] } })).structuredContent.flow_id;
    expect((await until(shell)).status).toBe('succeeded');
    const output = (await call('taskstream_task_output', { flow_id: shell, task_id: 'count', max_chars: 100 })).structuredContent;
    expect(output.output.stdout.endsWith('2999\n3000\n')).toBe(true);
    expect(output.output.stdout.length).toBe(100);
    expect(output.cut).toMatch(/tail/);
    const listed = (await call('taskstream_list_flows', { name: 'mcp-chain', limit: 5 })).structuredContent;
    expect(listed.flows.map((f: any) => f.flow_id)).toContain(flowId);
    const rerun = (await call('taskstream_rerun_flow', { flow_id: flowId })).structuredContent;
    expect(rerun.rerun_of).toBe(flowId);

    // Signals, cancel, fork and templates.
    const waiting2 = (await call('taskstream_submit_flow', { flow: { tasks: [{ id: 'paid', executor: 'wait', config: { signal: `mcp-${queue}` } }, { id: 'after', executor: 'noop', depends_on: ['paid'] }] } })).structuredContent.flow_id;
    await until(waiting2, (s) => s.tasks.some((t: any) => t.id === 'paid' && t.status === 'waiting'));
    expect((await call('taskstream_send_signal', { name: `mcp-${queue}`, payload: { ok: true } })).structuredContent).toMatchObject({ name: `mcp-${queue}`, replayed: false });
    expect((await until(waiting2)).status).toBe('succeeded');
    const toCancel = (await call('taskstream_submit_flow', { flow: { tasks: [{ id: 'long', executor: 'delay', config: { ms: 60_000 } }] } })).structuredContent.flow_id;
    expect((await call('taskstream_cancel_flow', { flow_id: toCancel, reason: 'not needed' })).structuredContent).toMatchObject({ status: 'cancelling' });
    expect((await until(toCancel)).status).toBe('cancelled');
    const fork = (await call('taskstream_fork_flow', { flow_id: flowId, at_seq: events.events[1].seq })).structuredContent;
    expect(fork).toMatchObject({ forked_from: flowId, resource: `taskstream://flows/${fork.flow_id}` });
    const templates = await fetch(`${base}/api/v1/templates/mcp-${queue}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN}` },
      body: JSON.stringify({ flow: { tasks: [{ id: 'hi', executor: 'noop' }] }, params_schema: { type: 'object', properties: { who: { type: 'string' } }, required: ['who'] } }),
    });
    expect(templates.status).toBe(201);
    expect((await call('taskstream_list_templates', {})).structuredContent.templates.map((t: any) => t.name)).toContain(`mcp-${queue}`);
    const badRun = await call('taskstream_run_template', { name: `mcp-${queue}`, params: { who: 3 } });
    expect((badRun.content[0] as { text: string }).text).toMatch(/^INVALID_PARAMS: .*\n- params\.who/s);
    const templateRun = (await call('taskstream_run_template', { name: `mcp-${queue}`, params: { who: 'agent' } })).structuredContent;
    expect(templateRun.template).toEqual({ name: `mcp-${queue}`, version: 1 });
    expect((await until(templateRun.flow_id)).status).toBe('succeeded');

    // Tasked's tools, with Tasked's shapes.
    const tasked = (await call('tasked_submit_flow', { queue, tasks: [{ id: 'one', executor: 'noop' }] })).structuredContent;
    expect(tasked).toMatchObject({ queue, state: 'running', task_count: 1 });
    let status: any;
    for (let i = 0; i < 10 && status?.state !== 'succeeded'; i++) {
      await call('taskstream_flow_status', { flow_id: tasked.flow_id, wait_secs: 2 });
      status = (await call('tasked_flow_status', { flow_id: tasked.flow_id })).structuredContent;
    }
    expect(status).toMatchObject({ flow_id: tasked.flow_id, queue, state: 'succeeded', task_count: 1, tasks_succeeded: 1, tasks_failed: 0, tasks: [{ id: 'one', state: 'succeeded', executor: 'noop' }] });
    expect((await call('tasked_task_output', { flow_id: tasked.flow_id, task_id: 'one' })).structuredContent).toMatchObject({ task_id: 'one', state: 'succeeded', error: null });
    expect((await call('tasked_list_flows', { queue, state: 'succeeded' })).structuredContent).toMatchObject({ queue, count: 1, flows: [{ flow_id: tasked.flow_id, state: 'succeeded', task_count: 1, tasks_succeeded: 1 }] });
    expect((await call('tasked_cancel_flow', { flow_id: tasked.flow_id })).content[0]).toEqual({ type: 'text', text: `Flow '${tasked.flow_id}' cancelled successfully` });
    const schedule = (await call('tasked_create_schedule', { queue, cron: '0 0 1 1 *', flow: { tasks: [{ id: 'x', executor: 'noop' }] }, enabled: false })).structuredContent;
    expect(schedule).toMatchObject({ queue, cron: '0 0 1 1 *', enabled: false, next_run_at: null });
    expect((await call('tasked_list_schedules', { queue })).structuredContent).toMatchObject({ queue, count: 1, schedules: [{ schedule_id: schedule.schedule_id }] });
    expect((await call('tasked_delete_schedule', { schedule_id: schedule.schedule_id })).isError).toBeFalsy();
    expect((await call('tasked_list_schedules', { queue })).structuredContent.count).toBe(0);
  } finally {
    await client.close();
  }
}

describe('the MCP server', () => {
  let nats: NatsServer;
  let deployment: Deployment;
  let base: string;

  beforeAll(async () => {
    nats = await NatsServer.start();
    const port = await freePort();
    // The executor serves every queue (Tasked's tools name theirs); the gateway requires keys.
    const services = ALL_SERVICES.filter(([name]) => name !== 'gateway').map(([name, service]): [string, string, Record<string, string>] => [name, service, service === 'executor' ? { TASKSTREAM_QUEUE: '*' } : {}]);
    deployment = await Deployment.start(nats.url, [...services, ['gateway', 'gateway', { TASKSTREAM_AUTH: 'keys', TASKSTREAM_BOOTSTRAP_ADMIN_KEY: ADMIN, TASKSTREAM_PORT: String(port) }]], FAST_FAILOVER);
    base = `http://127.0.0.1:${port}`;
    await deployment.ready(base);
  });
  afterAll(async () => {
    await deployment?.stop();
    await nats?.stop();
  });

  it('over stdio (taskstream mcp): tools, submit, a run followed by subscription, approvals by tool and by asking the user, bad input, Tasked\'s tools', async () => {
    await exercise(() => new StdioClientTransport({ command: process.execPath, args: [CLI, 'mcp', '--server', base], env: { ...process.env, ...CLEAN_ENV, TASKSTREAM_API_KEY: ADMIN } as Record<string, string>, stderr: 'pipe' }), 'tasked-stdio', base);
  }, 120_000);

  it('over Streamable HTTP at /mcp on the gateway, the same', async () => {
    await exercise(() => new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { requestInit: { headers: { authorization: `Bearer ${ADMIN}` } } }), 'tasked-http', base);
  }, 120_000);

  it('refuses /mcp without a key, and a read key the tools that change flows; a session is its key\'s alone', async () => {
    const initialize = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } };
    const anonymous = await fetch(`${base}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify(initialize) });
    expect(anonymous.status).toBe(401);
    expect(((await anonymous.json()) as any).error.code).toBe('UNAUTHORIZED');
    await expect(connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp`)))).rejects.toThrow();

    const created = await fetch(`${base}/api/v1/keys`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN}` }, body: JSON.stringify({ name: 'mcp-reader', scope: 'read' }) });
    const reader = ((await created.json()) as any).key as string;
    const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { requestInit: { headers: { authorization: `Bearer ${reader}` } } });
    const { client, call } = await connect(transport);
    try {
      expect((await client.listTools()).tools.length).toBe(TASKSTREAM_TOOLS.length + TASKED_TOOLS.length);
      const forbidden = await call('taskstream_submit_flow', { flow: { tasks: [{ id: 'a', executor: 'noop' }] } });
      expect(forbidden.isError).toBe(true);
      expect((forbidden.content[0] as { text: string }).text).toMatch(/^FORBIDDEN: .*"submit" scope/);
      expect((await call('taskstream_list_flows', { limit: 1 })).isError).toBeFalsy();
      // The reader's session, presented with the admin key, does not exist.
      const stolen = await fetch(`${base}/mcp`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${ADMIN}`, 'mcp-session-id': transport.sessionId!, 'mcp-protocol-version': '2025-06-18' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list' }),
      });
      expect(stolen.status).toBe(404);
    } finally {
      await client.close();
    }
  });
});

describe('taskstream mcp --embedded', () => {
  it('starts the embedded stack itself and serves it: nothing else runs', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'ts-mcp-'));
    const { client, call, until } = await connect(
      new StdioClientTransport({ command: process.execPath, args: [CLI, 'mcp', '--embedded', '--data-dir', dataDir], env: { ...process.env, ...CLEAN_ENV } as Record<string, string>, stderr: 'pipe' }),
    );
    try {
      const flowId = (await call('taskstream_submit_flow', { flow: { tasks: [{ id: 'hello', executor: 'shell', config: { command: 'echo hello from mcp' } }] } })).structuredContent.flow_id;
      expect((await until(flowId)).status).toBe('succeeded');
      expect((await call('tasked_task_output', { flow_id: flowId, task_id: 'hello' })).structuredContent.output.stdout).toBe('hello from mcp\n');
    } finally {
      await client.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 90_000);
});
