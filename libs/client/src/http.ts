import { errorOfAnswer, isTransient, snippet, TaskstreamError } from './errors.js';

/** How calls that are safe to repeat are retried. */
export interface RetryPolicy {
  /** Retries after the first attempt (default 3; 0 turns retries off). */
  retries: number;
  /** The first delay; each next one doubles, with jitter (default 200 ms). */
  initialDelayMs: number;
  /** The longest delay, `Retry-After` included (default 5 s). */
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { retries: 3, initialDelayMs: 200, maxDelayMs: 5_000 };

export interface TransportOptions {
  baseUrl: string;
  apiKey?: string;
  fetch: typeof fetch;
  retry: RetryPolicy;
  timeoutMs: number;
}

export interface Call {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  query?: Record<string, string | number | readonly string[] | undefined>;
  /** A JSON value, sent as JSON; or text with its content type. */
  json?: unknown;
  text?: { body: string; contentType: string };
  headers?: Record<string, string>;
  /** Safe to send again: GET, PUT and DELETE, and POSTs made safe by an Idempotency-Key. */
  idempotent: boolean;
  signal?: AbortSignal;
}

/** Longest request body the client sends; the gateway's own default limit (10 MiB). */
export const MAX_BODY_BYTES = 10 * 1024 * 1024;

/** The query string of a call: lists repeat their parameter. */
export function queryString(query: Call['query']): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const item of value) params.append(name, String(item));
    else params.append(name, String(value));
  }
  const text = params.toString();
  return text === '' ? '' : `?${text}`;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(aborted(signal));
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', stop);
      resolve();
    }, ms);
    const stop = () => {
      clearTimeout(timer);
      reject(aborted(signal!));
    };
    signal?.addEventListener('abort', stop, { once: true });
  });

export function aborted(signal: AbortSignal): TaskstreamError {
  return new TaskstreamError('ABORTED', 'the call was aborted by the caller', { cause: signal.reason });
}

/** The delay before retry `n` (0 first): exponential with full jitter, or what `Retry-After` asks, within the cap. */
export function retryDelay(policy: RetryPolicy, n: number, error: unknown): number {
  const asked = error instanceof TaskstreamError && error.retryAfter !== undefined ? error.retryAfter * 1000 : undefined;
  const exponential = policy.initialDelayMs * 2 ** n;
  const delay = asked ?? exponential / 2 + Math.random() * (exponential / 2);
  return Math.min(policy.maxDelayMs, delay);
}

/** Sends HTTP requests to one gateway: authentication, timeouts, typed errors and retries. */
export class Transport {
  readonly baseUrl: string;

  constructor(private readonly options: TransportOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
  }

  /** `Authorization: Bearer <key>` when there is a key. */
  authHeaders(): Record<string, string> {
    return this.options.apiKey ? { authorization: `Bearer ${this.options.apiKey}` } : {};
  }

  get apiKey(): string | undefined {
    return this.options.apiKey;
  }

  /** The answer's text and headers for a 2xx; a TaskstreamError otherwise, after the retries the call allows. */
  async send(call: Call): Promise<{ status: number; text: string; headers: Headers }> {
    return this.retrying(call, async () => {
      const { response, text } = await this.once(call, true);
      return { status: response.status, text: text!, headers: response.headers };
    });
  }

  /** A 2xx answer with its body unread (for files); a TaskstreamError otherwise. */
  raw(call: Call): Promise<Response> {
    return this.retrying(call, async () => (await this.once(call, false)).response);
  }

  private async retrying<T>(call: Call, attempt: () => Promise<T>): Promise<T> {
    const retries = call.idempotent ? this.options.retry.retries : 0;
    for (let n = 0; ; n++) {
      try {
        return await attempt();
      } catch (error) {
        if (n >= retries || !isTransient(error)) throw error;
        await sleep(retryDelay(this.options.retry, n, error), call.signal);
      }
    }
  }

  /** The answer parsed as JSON (undefined for an empty 2xx body, such as a 204). */
  async json<T>(call: Call): Promise<T> {
    const { status, text } = await this.send(call);
    if (text === '') return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new TaskstreamError('BAD_RESPONSE', `the gateway answered ${status} with something that is not JSON (${snippet(text)}); check that the URL points at a Taskstream gateway`, { status });
    }
  }

  private body(call: Call): { body?: string; contentType?: string } {
    if (call.text) return { body: call.text.body, contentType: call.text.contentType };
    if (call.json === undefined) return {};
    return { body: JSON.stringify(call.json), contentType: 'application/json' };
  }

  /** One request: its answer (and its text, when `read` or not 2xx), or the TaskstreamError it stands for. */
  private async once(call: Call, read: boolean): Promise<{ response: Response; text?: string }> {
    if (call.signal?.aborted) throw aborted(call.signal);
    const { body, contentType } = this.body(call);
    if (body !== undefined && body.length > MAX_BODY_BYTES) {
      throw new TaskstreamError('BODY_TOO_LARGE', `the request body is ${body.length} characters, over the ${MAX_BODY_BYTES / (1024 * 1024)} MiB the gateway accepts by default`);
    }
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new Error('timeout')), this.options.timeoutMs);
    const follow = () => controller.abort(call.signal?.reason);
    call.signal?.addEventListener('abort', follow, { once: true });
    const url = `${this.baseUrl}${call.path}${queryString(call.query)}`;
    try {
      let response: Response;
      let text: string | undefined;
      try {
        response = await this.options.fetch(url, {
          method: call.method,
          headers: { ...(contentType && { 'content-type': contentType }), ...call.headers, ...this.authHeaders() },
          ...(body !== undefined && { body }),
          signal: controller.signal,
        });
        if (read || !response.ok) text = await response.text();
      } catch (error) {
        if (call.signal?.aborted) throw aborted(call.signal);
        if (controller.signal.aborted) throw new TaskstreamError('TIMEOUT', `the gateway at ${this.baseUrl} did not answer ${call.method} ${call.path} within ${this.options.timeoutMs} ms`, { cause: error });
        const reason = (error as { cause?: { code?: string; message?: string } }).cause?.code ?? (error as Error).message;
        throw new TaskstreamError('NETWORK', `cannot reach the Taskstream gateway at ${this.baseUrl} (${reason})`, { cause: error });
      }
      if (!response.ok) throw errorOfAnswer(response.status, text!, response.headers.get('retry-after'));
      return { response, ...(text !== undefined && { text }) };
    } finally {
      clearTimeout(timer);
      call.signal?.removeEventListener('abort', follow);
    }
  }
}
