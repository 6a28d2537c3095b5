import { maxHeaderSize, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { OpenAPIV3_1 } from 'openapi-types';
import cors from '@fastify/cors';
import rateLimit from '@fastify/rate-limit';
import websocket, { type WebSocket } from '@fastify/websocket';
import { ApiKeyStore, FlowSummaryStore, FlowViewStore, IdempotencyStore, Kvm, onReturnFromOutage, SecretStore, SUMMARY_MARKER_MS, TemplateStore, TriggerStore } from '@taskstream/nats';
import type { PinoLogger, ServiceContext } from '@taskstream/runtime';
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { authenticate, PUBLIC_ROUTES, redactUrl, requireScopes, securityHeaders, type KeyAuth } from './auth.js';
import { ApiError, apiError } from './errors.js';
import { Flows } from './flows.js';
import { describeRoutes, serveApiDocs } from './openapi/document.js';
import { describingOnly, registerRoutes } from './routes/index.js';
import { Approvals } from './approvals.js';
import { readParameters } from './routes/input.js';
import { FlowIndex } from './flow-index.js';
import { DeadLetterQueue } from './dead-letters.js';
import { Queues } from './queues.js';
import { Schedules } from './schedules.js';
import { observeGateway } from './metrics.js';
import { DEFAULT_CLIENT_STALL_MS } from './stall.js';
import { traceRequests } from './tracing.js';
import { Templates } from './templates.js';
import { Triggers } from './triggers.js';
import { serveUi } from './ui.js';

/** Tasked's limit: a flow of 10,000 tasks with modest configs fits. */
export const DEFAULT_BODY_LIMIT = 10 * 1024 * 1024;

export interface GatewayOptions {
  /** Largest accepted request body in bytes (default 10 MiB). */
  bodyLimit?: number;
  /** A pino logger for requests, or false for none. */
  logger?: PinoLogger | false;
  /**
   * `keys`: every route but the health checks needs an API key with the route's scope. `none`
   * (the default here) serves anyone: the entry points choose (see settings.ts), and refuse to
   * listen beyond loopback without keys.
   */
  auth?: 'keys' | 'none';
  /** A whole key (`ts_…`) stored as an admin key at start unless its id is already there. */
  bootstrapAdminKey?: string;
  /** Requests a second per key (per remote address with auth off); 0 or absent: no limit. */
  rateLimit?: number;
  /** Origins allowed to call the API from a browser (CORS); none or empty: CORS off. */
  corsOrigins?: readonly string[];
  /**
   * An outage of NATS at least this long makes the gateway read the flows list again when it is
   * back (default: half of SUMMARY_MARKER_MS, the time retention keeps a removal marker).
   */
  listReadAgainAfterOutageMs?: number;
  /**
   * How long a streaming client (a WebSocket feed after its resync message, a Tasked event stream)
   * may read nothing of what waits for it before it is dropped (default DEFAULT_CLIENT_STALL_MS).
   */
  clientStallMs?: number;
}

const YAML_TYPES = ['application/yaml', 'application/x-yaml', 'text/yaml', 'text/x-yaml'];

/** Longest path segment routed; no flow id, queue name or sequence comes near it. */
/** The longest path segment: a secret name (128 characters) fits. */
const MAX_PARAM_LENGTH = 128;
/** Largest WebSocket message accepted from a client (feeds expect none). */
const MAX_PAYLOAD = 64 * 1024;

/** ws closes with these codes, without a reason, when a client breaks the protocol; the reason says which rule. */
const PROTOCOL_CLOSE_REASONS = new Map([
  [1002, 'protocol error: the client sent an invalid WebSocket frame'],
  [1007, 'a text message was not valid UTF-8'],
  [1009, `a message was larger than ${MAX_PAYLOAD / 1024} KiB`],
]);

/** User text in a message, cut short. */
const shorten = (text: string, max = 200) => (text.length > max ? `${text.slice(0, max)}…` : text);

/** A complete HTTP response with a documented error body, for sockets node's parser gave up on. */
function rawErrorResponse(error: ApiError): string {
  const body = JSON.stringify(error.toJSON());
  return `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}

type ParserError = Error & { code?: string; reason?: string; rawPacket?: Buffer; bytesParsed?: number };

/** Whether node's header overflow happened inside the request line, i.e. the URL is what is too long. */
function requestLineOverflowed(error: ParserError): boolean {
  const head = error.rawPacket?.subarray(0, error.bytesParsed).toString('latin1') ?? '';
  return /^[A-Z]+ /.test(head) && !head.includes('\n');
}

function clientErrorAnswer(error: ParserError): ApiError {
  if (error.code === 'HPE_HEADER_OVERFLOW') {
    return requestLineOverflowed(error) ? apiError('URI_TOO_LONG', `the request line is over ${maxHeaderSize / 1024} KiB`) : apiError('HEADERS_TOO_LARGE', maxHeaderSize);
  }
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') return apiError('REQUEST_TIMEOUT');
  return apiError('MALFORMED_REQUEST', error.reason ?? error.code ?? 'unreadable');
}

/** Routing errors fastify raises before any route runs. */
function frameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const answer =
    error.code === 'FST_ERR_BAD_URL'
      ? apiError('INVALID_URL', shorten(request.url))
      : error.code === 'FST_ERR_MAX_PARAM_LENGTH'
        ? apiError('URI_TOO_LONG', `a part of the path is longer than ${MAX_PARAM_LENGTH} characters`)
        : apiError('INTERNAL');
  if (answer.status >= 500) request.log.error({ err: error }, 'routing failed');
  void reply.status(answer.status).send(answer.toJSON());
}

/**
 * Errors on an open feed socket. A client breaking the protocol is its own problem: ws has already
 * answered with a close frame, so it is logged once, briefly, for debugging. Anything else failed
 * here.
 */
function feedSocketError(error: Error & { code?: unknown }, socket: WebSocket, request: FastifyRequest): void {
  if (typeof error.code === 'string' && error.code.startsWith('WS_ERR_')) {
    request.log.debug({ code: error.code, reason: error.message }, 'closed a WebSocket client that broke the protocol');
    return;
  }
  request.log.error({ err: error }, 'feed failed');
  socket.close(1011, 'the feed failed on the server; reconnect with after=<the last seq you processed>');
}

/** What a request log line says about the request: fastify's fields, with any `token` in the URL blanked out. */
function requestForLog(request: FastifyRequest) {
  return {
    method: request.method,
    url: redactUrl(request.url ?? ''),
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort,
  };
}

/** The Fastify instance, answering every error fastify or node would answer in their own shape from the table instead. */
function createFastify(options: GatewayOptions, bodyLimit: number): FastifyInstance {
  const shared = {
    bodyLimit,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    frameworkErrors: frameworkError,
    clientErrorHandler(this: FastifyInstance, connectionError: Error, socket: Socket) {
      const error = connectionError as ParserError;
      if (error.code === 'ECONNRESET' || socket.destroyed) return;
      const answer = clientErrorAnswer(error);
      this.log.debug({ code: error.code, status: answer.status }, 'refused an unreadable request');
      if (socket.writable) socket.end(rawErrorResponse(answer));
      socket.destroySoon();
    },
    // Requests arriving while the gateway closes get the documented 503 from the hook below.
    return503OnClosing: false,
  };
  // Request logs carry the method and URL, with a feed's `token` parameter (an API key) blanked out.
  const logger = options.logger ? options.logger.child({}, { serializers: { req: requestForLog } }) : undefined;
  return logger
    ? (Fastify({ loggerInstance: logger as FastifyBaseLogger, ...shared }) as unknown as FastifyInstance)
    : (Fastify({ logger: false, ...shared }) as unknown as FastifyInstance);
}

/** The API key table (live from its bucket when keys are required), with the bootstrap admin key stored. */
async function openKeys(app: FastifyInstance, ctx: ServiceContext, options: GatewayOptions): Promise<{ keys: ApiKeyStore; auth: KeyAuth | undefined }> {
  const keys = await ApiKeyStore.open(ctx.js, ctx.topo);
  if (options.bootstrapAdminKey !== undefined) {
    const outcome = await keys.register(options.bootstrapAdminKey, { name: 'bootstrap admin', scope: 'admin' });
    app.log.info({ key_id: options.bootstrapAdminKey.slice(3, 15), outcome }, outcome === 'created' ? 'stored the bootstrap admin key' : 'the bootstrap admin key is already stored');
  }
  if (options.auth !== 'keys') return { keys, auth: undefined };
  const table = await keys.watch((error) => app.log.error({ bucket: error.bucket, key_id: error.key }, error.message));
  app.addHook('onClose', async () => table.stop());
  return { keys, auth: { table, store: keys } };
}

/** The read models and stores the routes serve from. */
async function openStores(app: FastifyInstance, ctx: ServiceContext, readAgainAfterOutageMs: number) {
  const kvm = new Kvm(ctx.js);
  const index = await FlowIndex.open(new FlowSummaryStore(await kvm.open(ctx.topo.summariesBucket), ctx.topo.summariesBucket), (error) => app.log.error({ err: error }, 'a flow summary is corrupt; skipped'));
  // The watch learns of a flow retention removed from a marker that is dropped after a while: a
  // gateway cut off for long may have missed some, and lists them until it reads the list again.
  const unfollow = onReturnFromOutage(ctx.nc, readAgainAfterOutageMs, (outageMs) => {
    app.log.warn({ outage_ms: outageMs }, 'NATS is back after a long outage: reading the flows list again, so flows removed meanwhile leave it');
    void index.readAgain((error, retryInMs) =>
      app.log.error({ err: error, retry_in_ms: retryInMs }, 'could not read the flows list again; flows removed during the outage stay listed until it is read'),
    );
  });
  app.addHook('onClose', async () => {
    unfollow();
    index.stop();
  });
  const queues = await Queues.open(ctx.js, ctx.topo, index);
  const flows = new Flows(
    ctx,
    new FlowViewStore(ctx.js, await kvm.open(ctx.topo.flowsBucket), ctx.topo.flowsBucket),
    new IdempotencyStore(await kvm.open(ctx.topo.idempotencyBucket), ctx.topo.idempotencyBucket),
    queues,
  );
  return { index, queues, flows };
}

/** Refuses new requests with the documented 503 once the gateway is closing. */
function closingRefusal(app: FastifyInstance): void {
  let closing = false;
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  app.addHook('onRequest', async (_request, reply) => {
    if (!closing) return;
    reply.header('connection', 'close');
    throw apiError('UNAVAILABLE', 'this gateway is shutting down');
  });
}

/** CORS (only for configured origins), authentication, the per-key rate limit and parameter checks, in that order. */
async function guard(app: FastifyInstance, options: GatewayOptions, auth: KeyAuth | undefined): Promise<void> {
  securityHeaders(app);
  // Before authentication: browsers send preflights without credentials, and a refusal needs the CORS headers to be readable.
  if (options.corsOrigins && options.corsOrigins.length > 0) {
    await app.register(cors, {
      origin: [...options.corsOrigins],
      methods: ['GET', 'HEAD', 'POST', 'PUT', 'DELETE'],
      allowedHeaders: ['authorization', 'content-type', 'idempotency-key'],
      exposedHeaders: ['location', 'retry-after', 'idempotent-replayed', 'www-authenticate'],
      maxAge: 600,
    });
  }
  authenticate(app, auth);
  if (options.rateLimit !== undefined && options.rateLimit > 0) {
    // Route hooks run after the gateway's own, so the key is known here; health checks are not limited.
    await app.register(rateLimit, {
      global: true,
      max: options.rateLimit,
      timeWindow: 1_000,
      keyGenerator: (request) => (request.apiKey ? `key:${request.apiKey.id}` : `address:${request.ip}`),
      allowList: (request) => PUBLIC_ROUTES.has(request.routeOptions.url ?? ''),
      errorResponseBuilder: (_request, context) => apiError('RATE_LIMITED', context.max, context.after),
    });
  }
  app.addHook('preValidation', async (request) => {
    if (!request.is404) readParameters(request);
  });
}

/** Every failure answered from the error table: a user's mistake as 4xx, anything else logged and 500 or 503. */
function answerErrors(app: FastifyInstance, bodyLimit: number): void {
  app.setErrorHandler((error: FastifyError | ApiError, request, reply) => {
    if (error instanceof ApiError) return reply.status(error.status).send(error.toJSON());
    const mapped =
      error.code === 'FST_ERR_CTP_BODY_TOO_LARGE'
        ? apiError('BODY_TOO_LARGE', bodyLimit)
        : error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE'
          ? apiError('UNSUPPORTED_MEDIA_TYPE', shorten(String(request.headers['content-type'] ?? 'none')))
          : error.statusCode !== undefined && error.statusCode < 500
            ? apiError('INVALID_BODY', error.message)
            : undefined;
    if (mapped) return reply.status(mapped.status).send(mapped.toJSON());
    request.log.error({ err: error }, 'request failed');
    const internal = /NATS|JetStream|timeout|connection/i.test(error.message) ? apiError('UNAVAILABLE', 'the NATS JetStream backend did not answer') : apiError('INTERNAL');
    return reply.status(internal.status).send(internal.toJSON());
  });
  app.setNotFoundHandler((request, reply) => {
    const error = apiError('ROUTE_NOT_FOUND', request.method, shorten(request.url));
    return reply.status(error.status).send(error.toJSON());
  });
}

async function openFeeds(app: FastifyInstance): Promise<void> {
  await app.register(websocket, { options: { maxPayload: MAX_PAYLOAD }, errorHandler: feedSocketError });
  app.websocketServer.on('connection', (socket: WebSocket) => {
    const close = socket.close.bind(socket);
    socket.close = (code?: number, reason?: string | Buffer) => close(code, reason ?? (code === undefined ? undefined : PROTOCOL_CLOSE_REASONS.get(code)));
  });
}

/** Builds the gateway as a Fastify instance over a connected service context; `main.ts` listens. */
export async function buildGateway(ctx: ServiceContext, options: GatewayOptions = {}): Promise<FastifyInstance> {
  const bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const app = createFastify(options, bodyLimit);
  traceRequests(app);
  requireScopes(app);
  await describeRoutes(app);
  const { keys, auth } = await openKeys(app, ctx, options);
  const { index, queues, flows } = await openStores(app, ctx, options.listReadAgainAfterOutageMs ?? SUMMARY_MARKER_MS / 2);
  // Bodies are parsed by the flow parser itself, so JSON and YAML errors read the same way.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(['application/json', ...YAML_TYPES, 'text/plain'], { parseAs: 'string' }, (_req, body, done) => done(null, body));
  closingRefusal(app);
  await guard(app, options, auth);
  answerErrors(app, bodyLimit);
  await openFeeds(app);
  observeGateway(app);
  serveApiDocs(app);
  await serveUi(app);
  const secrets = await SecretStore.open(ctx.js, ctx.topo);
  const templates = new Templates(await TemplateStore.open(ctx.js, ctx.topo), flows);
  const triggers = new Triggers(ctx, await TriggerStore.open(ctx.js, ctx.topo), templates, secrets, new IdempotencyStore(await new Kvm(ctx.js).open(ctx.topo.idempotencyBucket), ctx.topo.idempotencyBucket), flows);
  registerRoutes(app, { ctx, flows, schedules: await Schedules.open(ctx.js, ctx.topo), approvals: new Approvals(ctx), index, queues, keys, dlq: new DeadLetterQueue(ctx), secrets, templates, triggers, clientStallMs: options.clientStallMs ?? DEFAULT_CLIENT_STALL_MS });
  return app;
}

/**
 * The gateway's OpenAPI document, from its routes registered as `buildGateway` registers them but
 * without NATS behind them (for the checked-in copy; the test holds the served one to it).
 */
export async function describeGateway(): Promise<OpenAPIV3_1.Document> {
  const app = createFastify({}, DEFAULT_BODY_LIMIT);
  requireScopes(app);
  await describeRoutes(app);
  await openFeeds(app);
  serveApiDocs(app);
  registerRoutes(app, describingOnly());
  await app.ready();
  const document = app.swagger() as OpenAPIV3_1.Document;
  await app.close();
  return document;
}
