import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { ErrorCode, McpError, SubscribeRequestSchema, UnsubscribeRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { TaskstreamError, type TaskstreamClient } from '@taskstream/client';
import { jsonSchemas } from '@taskstream/domain';
import { Follower } from './follow.js';
import { eventsUri, FLOW_SCHEMA_URI, flowUri } from './format.js';
import { registerTaskedFlowTools, registerTaskedScheduleTools } from './tasked.js';
import { registerFlowTools, registerOtherTools } from './tools.js';

export interface McpServerOptions {
  /** The gateway client every tool and resource uses (with the session's API key). */
  client: TaskstreamClient;
  /** Where to say what went wrong outside a request (never stdout with stdio). Default: nowhere. */
  log?: (message: string) => void;
}

/** Events a flow's events resource holds at most: the last ones. */
export const MAX_RESOURCE_EVENTS = 1_000;

const INSTRUCTIONS = `Taskstream runs DAG workflows ("flows") of tasks.
Validate a flow with taskstream_validate_flow, then start it with taskstream_submit_flow: it answers at once with a flow_id and the resource ${flowUri('{id}')}.
Follow a run by subscribing to that resource (you are notified at each change), or with taskstream_flow_status and wait_secs. Read outputs with taskstream_task_output.
Approval tasks wait for taskstream_decide_approval (or the user is asked directly); wait tasks wait for taskstream_send_signal.
The flow language's JSON Schema is the resource ${FLOW_SCHEMA_URI}. Tasked's tool names (tasked_*) work too.`;

export interface TaskstreamMcp {
  server: McpServer;
  /** Stops following flows and closes the server. */
  close(): Promise<void>;
}

function registerResources(server: McpServer, client: TaskstreamClient): void {
  const json = (uri: string, value: unknown) => ({ contents: [{ uri, mimeType: 'application/json', text: JSON.stringify(value, null, 2) }] });
  const idOf = (value: string | string[] | undefined) => String([value].flat()[0] ?? '');
  server.registerResource(
    'flow-events',
    new ResourceTemplate(eventsUri('{id}'), { list: undefined }),
    { title: "A flow's events", description: `Its history, in order: {flow_id, events: [{seq, stored_at, event}]} (the last ${MAX_RESOURCE_EVENTS}). Subscribe to be notified of each new event.`, mimeType: 'application/json' },
    async (uri, { id }) => {
      const events = await client.history(idOf(id));
      return json(uri.href, { flow_id: idOf(id), ...(events.length > MAX_RESOURCE_EVENTS && { events_not_shown: events.length - MAX_RESOURCE_EVENTS }), events: events.slice(-MAX_RESOURCE_EVENTS) });
    },
  );
  server.registerResource(
    'flow',
    new ResourceTemplate(flowUri('{id}'), { list: undefined }),
    { title: 'A flow', description: "The flow's view: status, counts, timings and every task with its attempts, output and error. Subscribe to be notified as it changes.", mimeType: 'application/json' },
    async (uri, { id }) => json(uri.href, await client.get(idOf(id))),
  );
  server.registerResource(
    'flow-schema',
    FLOW_SCHEMA_URI,
    { title: 'The flow language', description: 'The JSON Schema of a flow as submitted (tasks, executors and their configs, dependencies, retries, conditions, …).', mimeType: 'application/schema+json' },
    async (uri) => json(uri.href, jsonSchemas()['flow.schema.json']),
  );
}

function mcpErrorOf(error: unknown): McpError {
  if (error instanceof TaskstreamError) return new McpError(error.code === 'INVALID_PARAMETER' ? ErrorCode.InvalidParams : ErrorCode.InvalidRequest, `${error.code}: ${error.message}`);
  return new McpError(ErrorCode.InternalError, (error as Error).message);
}

/** An MCP server over a Taskstream gateway: tools, resources, subscriptions and approval questions. Connect it to a transport. */
export function createMcpServer(options: McpServerOptions): TaskstreamMcp {
  const { client } = options;
  const log = options.log ?? (() => undefined);
  const server = new McpServer({ name: 'taskstream', version: '0.1.0' }, { capabilities: { resources: { subscribe: true } }, instructions: INSTRUCTIONS });
  const follower = new Follower(client, server.server, log);
  const followApprovals = (flowId: string) => {
    try {
      follower.followApprovals(flowId);
    } catch (error) {
      log((error as Error).message);
    }
  };
  registerFlowTools(server, { client, followApprovals });
  registerOtherTools(server, { client, followApprovals });
  registerTaskedFlowTools(server, client, followApprovals);
  registerTaskedScheduleTools(server, client);
  registerResources(server, client);
  server.server.setRequestHandler(SubscribeRequestSchema, async (request) => {
    try {
      follower.subscribe(request.params.uri);
    } catch (error) {
      throw mcpErrorOf(error);
    }
    return {};
  });
  server.server.setRequestHandler(UnsubscribeRequestSchema, async (request) => {
    follower.unsubscribe(request.params.uri);
    return {};
  });
  return {
    server,
    close: async () => {
      follower.close();
      await server.close();
    },
  };
}
