import type { HttpConfig } from '@taskstream/domain';
import { setLongTimeout } from '../timers.js';
import { StepError } from './step-error.js';
import type { StepContext } from './types.js';

export const BODY_LIMIT = 256 * 1024;

/** Methods that send the task's `input` as the body when the config has no `body` (Tasked's). */
const INPUT_BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

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
 * At most `bodyLimit` bytes of the body are read: the rest is never downloaded (the connection is
 * dropped), and the output says `truncated: true` with the bytes kept in `body_bytes`. A cut body
 * is never parsed, so it has no `json`.
 */
export async function runHttp(ctx: StepContext, bodyLimit = BODY_LIMIT): Promise<unknown> {
  // Validation fills in the method; a config that reached the step without one gets Tasked's default too.
  const config = { ...(ctx.spec.config as HttpConfig), method: (ctx.spec.config as Partial<HttpConfig>).method ?? 'POST' };
  const headers = new Headers(config.headers);
  if (!headers.has('idempotency-key')) headers.set('idempotency-key', ctx.idempotencyKey);
  let body: string | undefined;
  if (config.body !== undefined) {
    if (config.method !== 'GET' && config.method !== 'HEAD') {
      body = typeof config.body === 'string' ? config.body : JSON.stringify(config.body);
      if (typeof config.body !== 'string' && !headers.has('content-type')) headers.set('content-type', 'application/json');
    }
  } else if (ctx.spec.input !== undefined && ctx.spec.input !== null && INPUT_BODY_METHODS.has(config.method)) {
    body = JSON.stringify(ctx.spec.input);
    if (!headers.has('content-type')) headers.set('content-type', 'application/json');
  }
  let response: Response;
  let text: string;
  let truncated: boolean;
  // The request's own timeout (Tasked's `timeout_secs`) covers the answer and its body; the step's
  // signal (task timeout, cancel) still ends it too.
  const request = new AbortController();
  const stop = () => request.abort(ctx.signal.reason);
  if (ctx.signal.aborted) stop();
  else ctx.signal.addEventListener('abort', stop, { once: true });
  let timedOut = false;
  const timer =
    config.timeout_secs === undefined
      ? undefined
      : setLongTimeout(() => {
          timedOut = true;
          request.abort(new Error('request timed out'));
        }, config.timeout_secs * 1000);
  try {
    response = await fetch(config.url, { method: config.method, headers, body, signal: request.signal, redirect: 'follow' });
    ({ text, truncated } = await readCapped(response, bodyLimit));
  } catch (error) {
    if (ctx.signal.aborted) throw error;
    if (timedOut) {
      throw new StepError({ message: `${config.method} ${config.url} did not answer within ${config.timeout_secs}s (the step's timeout_secs)`, code: 'TIMEOUT', retryable: true });
    }
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    throw new StepError({
      message: `${config.method} ${config.url} failed: ${cause?.code ?? cause?.message ?? (error as Error).message}`,
      code: 'NETWORK',
      retryable: true,
    });
  } finally {
    timer?.clear();
    ctx.signal.removeEventListener('abort', stop);
  }
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
      message: `${config.method} ${config.url} answered ${response.status} ${response.statusText}${text ? `: ${text.slice(0, 300)}` : ''}`,
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
