import type { HttpConfig } from '@taskstream/domain';
import { StepError } from './step-error.js';
import type { StepContext } from './types.js';

const BODY_LIMIT = 256 * 1024;

/**
 * Calls the configured URL. A 2xx response succeeds with its status and body (JSON when it is
 * JSON); 5xx, 408 and 429 are retryable failures; other statuses are not. The attempt's stable
 * idempotency key goes out as the Idempotency-Key header.
 */
export async function runHttp(ctx: StepContext): Promise<unknown> {
  const config = ctx.spec.config as HttpConfig;
  const headers = new Headers(config.headers);
  if (!headers.has('idempotency-key')) headers.set('idempotency-key', ctx.idempotencyKey);
  let body: string | undefined;
  if (config.body !== undefined && config.method !== 'GET' && config.method !== 'HEAD') {
    body = typeof config.body === 'string' ? config.body : JSON.stringify(config.body);
    if (typeof config.body !== 'string' && !headers.has('content-type')) headers.set('content-type', 'application/json');
  }
  let response: Response;
  try {
    response = await fetch(config.url, { method: config.method, headers, body, signal: ctx.signal, redirect: 'follow' });
  } catch (error) {
    if (ctx.signal.aborted) throw error;
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    throw new StepError({
      message: `${config.method} ${config.url} failed: ${cause?.code ?? cause?.message ?? (error as Error).message}`,
      code: 'NETWORK',
      retryable: true,
    });
  }
  const text = (await response.text()).slice(0, BODY_LIMIT);
  let parsed: unknown = text;
  if ((response.headers.get('content-type') ?? '').includes('json')) {
    try {
      parsed = JSON.parse(text);
    } catch {
      // keep the text
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
  return { status: response.status, body: parsed };
}
