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

/** A small client for the gateway's REST and WebSocket API. */
export class GatewayClient {
  readonly base: string;

  constructor(base: string) {
    this.base = base.replace(/\/+$/, '');
  }

  private async request<T>(method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<T> {
    let response: Response;
    try {
      response = await fetch(`${this.base}${path}`, { method, body, headers });
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
      throw new UserError(`${error?.message ?? `request failed with status ${response.status}`}${problems ? `\n${problems}` : ''}`, undefined, response.status >= 500 ? 3 : 2);
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

  flows(query: Record<string, string | undefined>) {
    const params = new URLSearchParams(Object.entries(query).filter((e): e is [string, string] => e[1] !== undefined));
    return this.request<{ flows: Array<Record<string, unknown> & { flow_id: string; status: string; submitted_at: string; total: number; name?: string; queue: string }>; next_cursor?: string }>('GET', `/api/v1/flows?${params}`);
  }

  async text(path: string): Promise<string> {
    let response: Response;
    try {
      response = await fetch(`${this.base}${path}`);
    } catch (error) {
      throw new UserError(`cannot reach the Taskstream gateway at ${this.base} (${(error as Error).message})`, 'start one with `taskstream up`, or pass --server with the right URL', 3);
    }
    const body = await response.text();
    if (!response.ok) throw new UserError(JSON.parse(body)?.error?.message ?? `request failed with status ${response.status}`, undefined, response.status >= 500 ? 3 : 2);
    return body;
  }

  post(path: string, body: unknown = {}) {
    return this.request<unknown>('POST', path, JSON.stringify(body), { 'content-type': 'application/json' });
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
        const socket = new WebSocket(url);
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
          reject(new UserError(`the gateway refused the live feed of flow ${flowId} (status ${res.statusCode})`, undefined, 3));
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
