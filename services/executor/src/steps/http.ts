import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions } from 'node:dns';
import type { Socket } from 'node:net';
import type { HttpConfig } from '@taskstream/domain';
import { Agent, buildConnector, fetch, Headers, type Response } from 'undici';
import { activeTraceContext, inChildSpan, SpanKind, traceCarrier } from '@taskstream/nats';
import { setLongTimeout } from '../timers.js';
import { allowsHost, checkAddress, parseAddress, parseAllowList, refusalMessage, type AllowList, type BlockedRange } from './address-policy.js';
import { StepError } from './step-error.js';
import type { StepContext, StepRunner } from './types.js';

export const BODY_LIMIT = 256 * 1024;

/** Redirects an http step follows before it gives up. */
export const MAX_REDIRECTS = 5;

/** Methods that send the task's `input` as the body when the config has no `body` (Tasked's). */
const INPUT_BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
/** Headers that describe the body, dropped with it when a redirect turns the request into a GET. */
const BODY_HEADERS = ['content-encoding', 'content-language', 'content-location', 'content-type'];
/** Credentials that do not follow a redirect to another origin. */
const CREDENTIAL_HEADERS = ['authorization', 'proxy-authorization', 'cookie'];

/** Resolves a host name to all its addresses, as dns.lookup does with `all: true`. */
export type LookupAll = (hostname: string, options: LookupAllOptions, callback: (error: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) => void;

export interface HttpStepOptions {
  /**
   * CIDRs, addresses and host names the step may reach although they are private (see
   * address-policy.ts). Public addresses are always reachable; by default nothing else is.
   */
  allow?: readonly string[];
  /** Bytes of a response body kept (256 KiB by default). */
  bodyLimit?: number;
  /** Redirects followed, each hop checked like the first request (5 by default). */
  maxRedirects?: number;
  /** Name resolution, dns.lookup by default: tests put their own names here. */
  lookup?: LookupAll;
}

/** A connection the allow-list refused: the host asked for, the address and the range that blocks it. */
export class SsrfBlockedError extends Error {
  override name = 'SsrfBlockedError';
  readonly code = 'SSRF_BLOCKED';
  constructor(
    readonly host: string,
    readonly address: string,
    readonly range: BlockedRange,
  ) {
    super(refusalMessage(host, { address, range }));
  }
}

/**
 * An undici dispatcher that connects only where the allow-list lets it. Every check is on an
 * address the socket is about to use or has used: an IP literal before connecting, the addresses a
 * name resolves to inside the socket's own lookup (so a name that resolves somewhere else on the
 * next query, DNS rebinding, is judged by the answer actually used), and the socket's remote
 * address once connected. A host the allow-list names is reached wherever it resolves.
 */
export function guardedDispatcher(list: AllowList, lookup: LookupAll = dnsLookup as LookupAll): Agent {
  const guardedLookup = (hostname: string, options: LookupAllOptions & { all?: boolean }, callback: (error: Error | null, address: string | LookupAddress[], family?: number) => void) => {
    lookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, options.all ? [] : '');
      let usable = addresses;
      let refused: SsrfBlockedError | undefined;
      if (!allowsHost(list, hostname)) {
        usable = [];
        for (const candidate of addresses) {
          const verdict = safeCheck(list, candidate.address);
          if (verdict.allowed) usable.push(candidate);
          else refused ??= new SsrfBlockedError(hostname, verdict.address, verdict.range);
        }
      }
      if (usable.length === 0) {
        return callback(refused ?? Object.assign(new Error(`${hostname} resolved to no address`), { code: 'ENOTFOUND' }), options.all ? [] : '');
      }
      if (options.all) return callback(null, usable);
      callback(null, usable[0]!.address, usable[0]!.family);
    });
  };
  const connector = buildConnector({ lookup: guardedLookup as never });
  const connect: buildConnector.connector = (options, callback) => {
    const host = options.hostname;
    const byName = parseAddress(host) === undefined && allowsHost(list, host);
    if (!byName && parseAddress(host) !== undefined) {
      const verdict = checkAddress(list, host);
      if (!verdict.allowed) {
        queueMicrotask(() => callback(new SsrfBlockedError(host, verdict.address, verdict.range), null));
        return;
      }
    }
    connector(options, (error, socket) => {
      if (error !== null) return callback(error, null);
      // The address the socket really reached, whatever led to it.
      const remote = (socket as Socket).remoteAddress;
      const verdict = byName || remote === undefined ? undefined : safeCheck(list, remote);
      if (verdict !== undefined && !verdict.allowed) {
        socket.destroy();
        return callback(new SsrfBlockedError(host, verdict.address, verdict.range), null);
      }
      callback(null, socket);
    });
  };
  return new Agent({ connect });
}

/** checkAddress for an address from outside (a resolver, a socket): text that is no address is refused. */
function safeCheck(list: AllowList, address: string): ReturnType<typeof checkAddress> {
  try {
    return checkAddress(list, address);
  } catch {
    return { allowed: false, address, range: { category: 'reserved', cidr: address } };
  }
}

/** The http step: one guarded connection pool for every run, with the pool's allow-list. */
export function createHttpStep(options: HttpStepOptions = {}): StepRunner {
  const dispatcher = guardedDispatcher(parseAllowList(options.allow ?? []), options.lookup);
  const limits = { bodyLimit: options.bodyLimit ?? BODY_LIMIT, maxRedirects: options.maxRedirects ?? MAX_REDIRECTS };
  return (ctx) => runHttp(ctx, dispatcher, limits);
}

/**
 * Calls the configured URL, within its own `timeout_secs` when it has one. The method defaults to
 * POST (Tasked's). A config `body` is sent for every method but GET and HEAD: text as it is, any
 * other value as JSON. Without a `body`, the task's `input` (when it has one, and not null) is
 * sent as JSON for POST, PUT and PATCH, as Tasked does.
 *
 * A 2xx response succeeds with Tasked's `{status, body}`, `body` always the response text, plus
 * `json`, the parsed body, when the response says it is JSON (a content-type naming json, such as
 * application/json or application/problem+json) and the body parses: the server's declaration
 * decides, so a text answer that happens to look like JSON ("42") stays text only. 5xx, 408 and
 * 429 are retryable failures; other statuses are not. The attempt's stable idempotency key goes
 * out as the Idempotency-Key header.
 *
 * Connections go through `dispatcher` (guardedDispatcher): an address outside the allow-list
 * fails the attempt for good with SSRF_BLOCKED. Redirects are followed here, at most
 * `maxRedirects`, each hop through the same dispatcher, so each is checked as the first request
 * was; a 303, or a 301/302 of a POST, becomes a GET without the body, and credentials are not
 * sent on to another origin (as fetch does).
 *
 * At most `bodyLimit` bytes of the body are read: the rest is never downloaded (the connection is
 * dropped), and the output says `truncated: true` with the bytes kept in `body_bytes`. A cut body
 * is never parsed, so it has no `json`.
 */
async function runHttp(ctx: StepContext, dispatcher: Agent, limits: { bodyLimit: number; maxRedirects: number }): Promise<unknown> {
  const exchange = newExchange(ctx);
  const request = requestAbort(ctx.signal, exchange.config.timeout_secs);
  let response: Response;
  let read: { text: string; truncated: boolean };
  try {
    response = await follow(exchange, request.signal, dispatcher, limits.maxRedirects);
    read = await readCapped(response, limits.bodyLimit);
  } catch (error) {
    throw failure(error, exchange, ctx.signal, request.timedOut());
  } finally {
    request.release();
  }
  return answer(response, read, exchange);
}

/** One request and the redirects it follows: what goes out on the next hop, and where it is. */
interface Exchange {
  readonly config: HttpConfig;
  readonly headers: Headers;
  method: string;
  body: string | undefined;
  url: URL | undefined;
  hop: number;
}

function newExchange(ctx: StepContext): Exchange {
  // Validation fills in the method; a config that reached the step without one gets Tasked's default too.
  const config = { ...(ctx.spec.config as HttpConfig), method: (ctx.spec.config as Partial<HttpConfig>).method ?? 'POST' };
  const headers = new Headers(config.headers);
  if (!headers.has('idempotency-key')) headers.set('idempotency-key', ctx.idempotencyKey);
  return { config, headers, method: config.method, body: requestBody(config, ctx.spec.input, headers), url: undefined, hop: 0 };
}

/** The body sent, if any; a JSON body gets its content-type unless the config set one. */
function requestBody(config: HttpConfig, input: unknown, headers: Headers): string | undefined {
  if (config.body !== undefined) {
    if (config.method === 'GET' || config.method === 'HEAD') return undefined;
    if (typeof config.body === 'string') return config.body;
    const body = JSON.stringify(config.body);
    if (!headers.has('content-type')) headers.set('content-type', 'application/json');
    return body;
  }
  if (input === undefined || input === null || !INPUT_BODY_METHODS.has(config.method)) return undefined;
  const body = JSON.stringify(input);
  if (!headers.has('content-type')) headers.set('content-type', 'application/json');
  return body;
}

/** The URL as the config gave it until a redirect leads elsewhere. */
function shown(exchange: Exchange): string {
  return exchange.hop === 0 || exchange.url === undefined ? exchange.config.url : exchange.url.href;
}

/**
 * What ends the request: its own timeout (Tasked's `timeout_secs`), which covers the answer and its
 * body, redirects included, and the step's signal (task timeout, cancel).
 */
function requestAbort(step: AbortSignal, timeoutSecs: number | undefined): { signal: AbortSignal; timedOut: () => boolean; release: () => void } {
  const request = new AbortController();
  const stop = () => request.abort(step.reason);
  if (step.aborted) stop();
  else step.addEventListener('abort', stop, { once: true });
  let timedOut = false;
  const timer =
    timeoutSecs === undefined
      ? undefined
      : setLongTimeout(() => {
          timedOut = true;
          request.abort(new Error('request timed out'));
        }, timeoutSecs * 1000);
  const release = () => {
    timer?.clear();
    step.removeEventListener('abort', stop);
  };
  return { signal: request.signal, timedOut: () => timedOut, release };
}

/** Sends the request and follows its redirects, each hop through `dispatcher`; gives the last response. */
async function follow(exchange: Exchange, signal: AbortSignal, dispatcher: Agent, maxRedirects: number): Promise<Response> {
  exchange.url = new URL(exchange.config.url);
  for (;;) {
    const response = await sendHop(exchange, exchange.url, signal, dispatcher);
    const location = REDIRECT_STATUSES.has(response.status) ? response.headers.get('location') : null;
    if (location === null) return response;
    await response.body?.cancel().catch(() => undefined);
    const next = redirectTarget(exchange, location, maxRedirects);
    exchange.hop++;
    redirect(exchange, response.status, next);
  }
}

/**
 * One hop, in a client span when the task is traced, with the span's `traceparent` on the request
 * (unless the config sets its own), so the service called continues the flow's trace. The span
 * names the server, never the URL, whose path or query may hold a secret.
 */
function sendHop(exchange: Exchange, url: URL, signal: AbortSignal, dispatcher: Agent): Promise<Response> {
  const { method, headers, body } = exchange;
  const attributes = { 'http.request.method': method, 'server.address': url.hostname, 'server.port': Number(url.port || (url.protocol === 'https:' ? 443 : 80)) };
  return inChildSpan(`HTTP ${method}`, activeTraceContext(), { kind: SpanKind.CLIENT, attributes }, async (span) => {
    if (span !== undefined && !Object.keys(exchange.config.headers ?? {}).some((name) => name.toLowerCase() === 'traceparent')) {
      for (const [name, value] of Object.entries(traceCarrier())) headers.set(name, value);
    }
    const response = await fetch(url, { method, headers, body, signal, redirect: 'manual', dispatcher });
    span?.setAttribute('http.response.status_code', response.status);
    return response;
  });
}

/** Where a redirect leads, if the step follows it there. */
function redirectTarget(exchange: Exchange, location: string, maxRedirects: number): URL {
  const { config, method } = exchange;
  let next: URL;
  try {
    next = new URL(location, exchange.url);
  } catch {
    throw new StepError({ message: `${method} ${shown(exchange)} redirected to "${location}", which is not a URL`, code: 'HTTP_REDIRECT', retryable: false });
  }
  if (next.protocol !== 'http:' && next.protocol !== 'https:') {
    throw new StepError({ message: `${method} ${shown(exchange)} redirected to ${next.href}; http steps follow redirects to http and https only`, code: 'HTTP_REDIRECT', retryable: false });
  }
  if (exchange.hop + 1 > maxRedirects) {
    throw new StepError({ message: `${config.method} ${config.url} redirected more than ${maxRedirects} times (the last time to ${next})`, code: 'TOO_MANY_REDIRECTS', retryable: false });
  }
  return next;
}

/** The next hop: as a GET without the body after a 303 (or a 301/302 of a POST), without credentials to another origin. */
function redirect(exchange: Exchange, status: number, next: URL): void {
  const { method, headers } = exchange;
  if ((status === 303 && method !== 'GET' && method !== 'HEAD') || ((status === 301 || status === 302) && method === 'POST')) {
    exchange.method = 'GET';
    exchange.body = undefined;
    for (const name of BODY_HEADERS) headers.delete(name);
  }
  if (next.origin !== exchange.url!.origin) for (const name of CREDENTIAL_HEADERS) headers.delete(name);
  exchange.url = next;
}

/** What a request that did not get its answer fails with; a stopped step's own reason stays as it is. */
function failure(error: unknown, exchange: Exchange, step: AbortSignal, timedOut: boolean): unknown {
  const { config, hop } = exchange;
  if (error instanceof StepError || step.aborted) return error;
  if (timedOut) {
    return new StepError({ message: `${config.method} ${config.url} did not answer within ${config.timeout_secs}s (the step's timeout_secs)`, code: 'HTTP_TIMEOUT', retryable: true });
  }
  const blocked = ssrfCause(error);
  if (blocked !== undefined) {
    const where = hop > 0 ? ` (redirect ${hop} of ${config.method} ${config.url}, to ${shown(exchange)})` : '';
    return new StepError({ message: `${blocked.message}${where}`, code: 'SSRF_BLOCKED', retryable: false });
  }
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return new StepError({
    message: `${exchange.method} ${shown(exchange)} failed: ${cause?.code ?? cause?.message ?? (error as Error).message}`,
    code: 'NETWORK',
    retryable: true,
  });
}

/** The step's output for an answer, or its failure for a status that is not 2xx. */
function answer(response: Response, read: { text: string; truncated: boolean }, exchange: Exchange): unknown {
  const { text, truncated } = read;
  let json: { value: unknown } | undefined;
  if (!truncated && /json/i.test(response.headers.get('content-type') ?? '')) {
    try {
      json = { value: JSON.parse(text) };
    } catch {
      // not JSON after all: the text alone
    }
  }
  if (!response.ok) {
    const retryable = response.status >= 500 || response.status === 408 || response.status === 429;
    throw new StepError({
      message: `${exchange.method} ${shown(exchange)} answered ${response.status} ${response.statusText}${text ? `: ${text.slice(0, 300)}` : ''}`,
      code: 'HTTP_STATUS',
      retryable,
      http_status: response.status,
    });
  }
  return {
    status: response.status,
    body: text,
    ...(json !== undefined && { json: json.value }),
    ...(truncated && { truncated: true, body_bytes: Buffer.byteLength(text) }),
  };
}

/** The SsrfBlockedError somewhere in an error's causes (fetch wraps connection errors in a TypeError). */
function ssrfCause(error: unknown): SsrfBlockedError | undefined {
  for (let e = error, depth = 0; e !== undefined && e !== null && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof SsrfBlockedError) return e;
  }
  return undefined;
}

/** Reads the body up to `limit` bytes, then cancels the stream, which closes the connection. */
async function readCapped(response: Response, limit: number): Promise<{ text: string; truncated: boolean }> {
  if (response.body === null) return { text: '', truncated: false };
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let truncated = false;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (size + value.byteLength > limit) {
      chunks.push(value.subarray(0, limit - size));
      size = limit;
      truncated = true;
      await reader.cancel().catch(() => undefined);
      break;
    }
    chunks.push(value);
    size += value.byteLength;
  }
  const bytes = Buffer.concat(chunks, size);
  return { text: new TextDecoder().decode(truncated ? bytes.subarray(0, completeUtf8Length(bytes)) : bytes), truncated };
}

/** The length of `bytes` without a UTF-8 sequence the cut left incomplete at its end. */
function completeUtf8Length(bytes: Uint8Array): number {
  let start = bytes.length;
  // Back over continuation bytes (10xxxxxx) to the lead byte of the last sequence, at most 3.
  while (start > 0 && bytes.length - start < 3 && (bytes[start - 1]! & 0xc0) === 0x80) start--;
  if (start === 0) return bytes.length;
  const lead = bytes[start - 1]!;
  const needed = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  return bytes.length - (start - 1) >= needed ? bytes.length : start - 1;
}
