import type { FlowEvent, FlowView, Problem } from '@taskstream/domain';
import WebSocket from 'ws';
import { UserError } from './user-error.js';

export interface QueueView {
  name: string;
  policy: Record<string, unknown>;
  running: number;
  tokens?: number;
}

interface ApiErrorBody {
  error?: { code?: string; message?: string; problems?: Problem[] };
}

let chosenApiKey: string | undefined;

/** The API key every client sends unless given another: `--api-key`, which the command line sets here. */
export function useApiKey(key: string | undefined): void {
  chosenApiKey = key === '' ? undefined : key;
}

/** The key to send: the one chosen with `--api-key`, else TASKSTREAM_API_KEY. */
export function defaultApiKey(): string | undefined {
  return chosenApiKey ?? (process.env.TASKSTREAM_API_KEY || undefined);
}

/** What to do about a 401 or 403, which the gateway's message alone does not say for the CLI. */
function authHint(status: number): string | undefined {
  if (status === 401) return 'pass an API key with --api-key or TASKSTREAM_API_KEY (create one with `taskstream keys create`)';
  if (status === 403) return 'use a key with that scope, or ask an administrator for one';
  return undefined;
}

/** A small client for the gateway's REST and WebSocket API. */
export class GatewayClient {
  readonly base: string;

  constructor(
    base: string,
    private readonly apiKey: string | undefined = defaultApiKey(),
  ) {
    this.base = base.replace(/\/+$/, '');
  }

  /** `Authorization: Bearer <key>` when there is a key, for requests made outside this class. */
  authHeaders(): Record<string, string> {
    return this.apiKey ? { authorization: `Bearer ${this.apiKey}` } : {};
  }

  private async request<T>(method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<T> {
    let response: Response;
    try {
      response = await fetch(`${this.base}${path}`, { method, body, headers: { ...headers, ...this.authHeaders() } });
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
      throw new UserError(`cannot reach the Taskstream gateway at ${this.base} (${cause})`, 'start one with `taskstream up`, or pass --server with the right URL', 3);
    }
    const text = await response.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : {};
    } catch {
      throw new UserError(`the gateway at ${this.base} answered ${response.status} with something that is not JSON`, 'check that --server points at a Taskstream gateway', 3);
    }
    if (!response.ok) {
      const error = (json as ApiErrorBody).error;
      const problems = error?.problems?.map((p) => `  ${p.path}: ${p.message}`).join('\n');
      // A wrong approval code is a 403 about the code, not about the key's scope.
      const hint = error?.code === 'INVALID_APPROVAL_CODE' ? 'leave out --code to use the one in the task\'s output' : authHint(response.status);
      throw new UserError(`${error?.message ?? `request failed with status ${response.status}`}${problems ? `\n${problems}` : ''}`, hint, response.status >= 500 ? 3 : 2);
    }
    return json as T;
  }

  submit(flowText: string, contentType: string, idempotencyKey?: string) {
    return this.request<{ flow_id: string; tasks: number; replayed: boolean; warnings?: string[] }>('POST', '/api/v1/flows', flowText, {
      'content-type': contentType,
      ...(idempotencyKey && { 'idempotency-key': idempotencyKey }),
    });
  }

  status(flowId: string) {
    return this.request<FlowView>('GET', `/api/v1/flows/${encodeURIComponent(flowId)}`);
  }

  events(flowId: string) {
    return this.request<{ events: Array<{ seq: number; stored_at: string; event: FlowEvent }> }>('GET', `/api/v1/flows/${encodeURIComponent(flowId)}/events`);
  }

  cancel(flowId: string, reason?: string) {
    return this.request<{ status: string }>('POST', `/api/v1/flows/${encodeURIComponent(flowId)}/cancel`, JSON.stringify(reason ? { reason } : {}), { 'content-type': 'application/json' });
  }

  /** Approves or rejects a waiting approval task (Tasked's ack); the gateway answers 204. */
  async ack(flowId: string, taskId: string, body: Record<string, unknown>): Promise<void> {
    await this.request<unknown>('POST', `/api/v1/flows/${encodeURIComponent(flowId)}/tasks/${encodeURIComponent(taskId)}/ack`, JSON.stringify(body), { 'content-type': 'application/json' });
  }

  signal(name: string, payload: string, idempotencyKey?: string) {
    return this.request<{ signal_id: string; name: string; seq: number; replayed: boolean }>('POST', `/api/v1/signals/${encodeURIComponent(name)}`, payload, {
      'content-type': 'application/json',
      ...(idempotencyKey !== undefined && { 'idempotency-key': idempotencyKey }),
    });
  }

  flows(query: Record<string, string | undefined>) {
    const params = new URLSearchParams(Object.entries(query).filter((e): e is [string, string] => e[1] !== undefined));
    return this.request<{ flows: Array<Record<string, unknown> & { flow_id: string; status: string; submitted_at: string; total: number; name?: string; queue: string }>; next_cursor?: string }>('GET', `/api/v1/flows?${params}`);
  }

  async text(path: string): Promise<string> {
    let response: Response;
    try {
      response = await fetch(`${this.base}${path}`, { headers: this.authHeaders() });
    } catch (error) {
      throw new UserError(`cannot reach the Taskstream gateway at ${this.base} (${(error as Error).message})`, 'start one with `taskstream up`, or pass --server with the right URL', 3);
    }
    const body = await response.text();
    if (!response.ok) throw new UserError(JSON.parse(body)?.error?.message ?? `request failed with status ${response.status}`, authHint(response.status), response.status >= 500 ? 3 : 2);
    return body;
  }

  post<T = unknown>(path: string, body: unknown = {}) {
    return this.request<T>('POST', path, JSON.stringify(body), { 'content-type': 'application/json' });
  }

  put<T = unknown>(path: string, body: unknown = {}) {
    return this.request<T>('PUT', path, JSON.stringify(body), { 'content-type': 'application/json' });
  }

  get<T>(path: string) {
    return this.request<T>('GET', path);
  }

  async remove(path: string): Promise<void> {
    await this.request<unknown>('DELETE', path);
  }

  rerun(flowId: string, from?: string) {
    return this.request<{ flow_id: string }>('POST', `/api/v1/flows/${encodeURIComponent(flowId)}/rerun`, JSON.stringify(from ? { from } : {}), { 'content-type': 'application/json' });
  }

  fork(flowId: string, at: number, patch?: unknown) {
    return this.request<{ flow_id: string }>('POST', `/api/v1/flows/${encodeURIComponent(flowId)}/fork`, JSON.stringify({ at, ...(patch !== undefined && { patch }) }), { 'content-type': 'application/json' });
  }

  queues() {
    return this.request<{ queues: QueueView[] }>('GET', '/api/v1/queues');
  }

  queue(name: string) {
    return this.request<QueueView>('GET', `/api/v1/queues/${encodeURIComponent(name)}`);
  }

  setQueue(name: string, policy: unknown) {
    return this.request<QueueView>('PUT', `/api/v1/queues/${encodeURIComponent(name)}`, JSON.stringify(policy), { 'content-type': 'application/json' });
  }

  async deleteQueue(name: string): Promise<void> {
    await this.request<unknown>('DELETE', `/api/v1/queues/${encodeURIComponent(name)}`);
  }

  /** Follows the flow's feed, calling `onEvent` for each event until it returns true, reconnecting after drops. */
  async follow(flowId: string, onEvent: (event: FlowEvent, seq: number) => boolean): Promise<void> {
    let after = 0;
    for (let failures = 0; ; ) {
      const outcome = await new Promise<'done' | 'dropped'>((resolve, reject) => {
        const url = `${this.base.replace(/^http/, 'ws')}/api/v1/flows/${encodeURIComponent(flowId)}/feed?after=${after}`;
        const socket = new WebSocket(url, { headers: this.authHeaders() });
        let settled = false;
        socket.on('message', (data) => {
          const message = JSON.parse(data.toString()) as { seq: number; event?: FlowEvent; type?: string };
          if (message.type === 'resync') return;
          if (!message.event) return;
          after = message.seq;
          failures = 0;
          if (onEvent(message.event, message.seq) && !settled) {
            settled = true;
            socket.close();
            resolve('done');
          }
        });
        socket.on('unexpected-response', (_req, res) => {
          settled = true;
          reject(new UserError(`the gateway refused the live feed of flow ${flowId} (status ${res.statusCode})`, authHint(res.statusCode ?? 0), res.statusCode === 401 || res.statusCode === 403 ? 2 : 3));
        });
        socket.on('error', () => {
          if (!settled) {
            settled = true;
            resolve('dropped');
          }
        });
        socket.on('close', () => {
          if (!settled) {
            settled = true;
            resolve('dropped');
          }
        });
      });
      if (outcome === 'done') return;
      if (++failures > 20) throw new UserError(`lost the live feed of flow ${flowId} and could not reconnect`, `the flow keeps running; check it with \`taskstream status ${flowId}\``, 3);
      await new Promise((r) => setTimeout(r, Math.min(2000, 100 * failures)));
    }
  }
}
