import { randomUUID } from 'node:crypto';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { TaskstreamClient, type WebSocketLike } from '@taskstream/client';
import { createMcpServer, type TaskstreamMcp } from '@taskstream/mcp';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import WebSocket from 'ws';
import { described } from './openapi/registry.js';
import { NO_QUERY } from './routes/input.js';

/**
 * MCP over Streamable HTTP at /mcp, behind API keys like every route (scope `read` to connect;
 * each tool's calls then need their own route's scope, checked by the routes themselves). A session
 * is an MCP server whose client calls this gateway with the key that opened it; only that key may
 * use the session afterwards.
 */

/** Sessions a gateway keeps at once; an idle one is closed after IDLE_MS. */
export const MAX_MCP_SESSIONS = 100;
const IDLE_MS = 30 * 60 * 1000;

interface Session {
  transport: StreamableHTTPServerTransport;
  mcp: TaskstreamMcp;
  keyId: string | undefined;
  usedAt: number;
}

const rpcError = (reply: FastifyReply, status: number, message: string) => reply.status(status).send({ jsonrpc: '2.0', error: { code: -32000, message }, id: null });

/** This gateway's own URL, for the sessions' clients: loopback when it listens on every address. */
function selfUrl(app: FastifyInstance): string {
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('the gateway is not listening on a TCP port');
  const host = address.address === '0.0.0.0' ? '127.0.0.1' : address.address === '::' ? '::1' : address.address;
  return `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`;
}

/** The bearer token the request presented (already checked by authentication when keys are on). */
function bearer(request: FastifyRequest): string | undefined {
  const match = /^Bearer +(\S+) *$/i.exec(String(request.headers.authorization ?? ''));
  return match?.[1];
}

const headers = z.object({ 'mcp-session-id': described(z.string().optional(), 'The session, as the answer to `initialize` named it (all but the first request).') });
const common = { tags: ['mcp'], querystring: NO_QUERY, headers } as const;
const description = 'MCP (Model Context Protocol) over Streamable HTTP: an agent\'s tools and resources for flows; see docs/mcp.md. Each tool call needs the scope of the route it uses.';

export function registerMcpRoutes(app: FastifyInstance): void {
  const sessions = new Map<string, Session>();
  const sweep = setInterval(() => {
    for (const [id, session] of sessions) if (Date.now() - session.usedAt > IDLE_MS) void close(id);
  }, 60_000);
  sweep.unref();
  const close = async (id: string) => {
    const session = sessions.get(id);
    sessions.delete(id);
    await session?.mcp.close().catch(() => undefined);
  };
  app.addHook('onClose', async () => {
    clearInterval(sweep);
    await Promise.all([...sessions.keys()].map(close));
  });

  const open = async (request: FastifyRequest): Promise<Session> => {
    const key = bearer(request);
    const client = new TaskstreamClient({ baseUrl: selfUrl(app), ...(key !== undefined && { apiKey: key }), webSocket: (url, h) => new WebSocket(url, { headers: h }) as unknown as WebSocketLike });
    const mcp = createMcpServer({ client, log: (message) => request.log.warn({ mcp: true }, message) });
    const session: Session = { mcp, keyId: request.apiKey?.id, usedAt: Date.now(), transport: undefined as never };
    session.transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => void sessions.set(id, session),
      onsessionclosed: (id) => void close(id),
    });
    await mcp.server.connect(session.transport);
    return session;
  };

  const handle = async (request: FastifyRequest, reply: FastifyReply) => {
    const id = request.headers['mcp-session-id'];
    let body: unknown;
    if (typeof request.body === 'string' && request.body !== '') {
      try {
        body = JSON.parse(request.body);
      } catch {
        return rpcError(reply, 400, 'Parse error: the body is not JSON');
      }
    }
    let session = typeof id === 'string' ? sessions.get(id) : undefined;
    // A session belongs to the key that opened it: to any other it does not exist.
    if (session && session.keyId !== request.apiKey?.id) session = undefined;
    if (id !== undefined && !session) return rpcError(reply, 404, 'Session not found: initialize a new one');
    if (!session) {
      if (request.method !== 'POST' || !isInitializeRequest(body)) return rpcError(reply, 400, 'Bad Request: send initialize first, then the mcp-session-id it answers');
      if (sessions.size >= MAX_MCP_SESSIONS) return rpcError(reply, 503, `this gateway already holds ${MAX_MCP_SESSIONS} MCP sessions; close one (DELETE /mcp) or retry later`);
      session = await open(request);
    }
    session.usedAt = Date.now();
    reply.hijack();
    await session.transport.handleRequest(request.raw, reply.raw, body);
  };

  const any = described(z.unknown(), 'JSON-RPC: an answer as JSON, or a stream of messages as text/event-stream.');
  app.post('/mcp', { config: { scope: 'read' }, schema: { ...common, operationId: 'mcpPost', summary: 'MCP: send a message', description, requestBody: described(z.unknown(), 'A JSON-RPC message (or a batch).'), response: { 200: any, 202: any } } }, handle);
  app.get('/mcp', { config: { scope: 'read' }, schema: { ...common, operationId: 'mcpStream', summary: 'MCP: the stream of server messages (notifications, elicitations)', description, response: { 200: any } } }, handle);
  app.delete('/mcp', { config: { scope: 'read' }, schema: { ...common, operationId: 'mcpClose', summary: 'MCP: close the session', description, response: { 200: any } } }, handle);
}
