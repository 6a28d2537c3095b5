import { TaskstreamClient, TaskstreamError, type Call, type QueuePolicy, type QueueView, type StoredEvent, type WebSocketLike } from '@taskstream/client';
import type { FlowEvent, FlowView } from '@taskstream/domain';
import WebSocket from 'ws';
import { UserError } from './user-error.js';

export type { QueueView };

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

/** A client error as the CLI reports it: the message (and every problem), a hint, and exit code 2 (the user's to fix) or 3 (the gateway's). */
export function userErrorOf(error: unknown, base: string): unknown {
  if (!(error instanceof TaskstreamError)) return error;
  if (error.code === 'NETWORK' || error.code === 'TIMEOUT') return new UserError(error.message, 'start one with `taskstream up`, or pass --server with the right URL', 3);
  if (error.code === 'BAD_RESPONSE') return new UserError(`the gateway at ${base} answered ${error.status} with something that is not JSON`, 'check that --server points at a Taskstream gateway', 3);
  // A wrong approval code is a 403 about the code, not about the key's scope.
  const hint = error.code === 'INVALID_APPROVAL_CODE' ? "leave out --code to use the one in the task's output" : authHint(error.status);
  return new UserError(error.describe(), hint, error.status >= 500 || error.status === 0 ? 3 : 2);
}

/**
 * The CLI's view of the gateway: @taskstream/client (the SDK) with the key from --api-key or
 * TASKSTREAM_API_KEY, Node's WebSocket, and its errors turned into the CLI's UserErrors.
 */
export class GatewayClient {
  readonly base: string;
  readonly sdk: TaskstreamClient;

  constructor(base: string, apiKey: string | undefined = defaultApiKey()) {
    this.sdk = new TaskstreamClient({
      baseUrl: base,
      ...(apiKey !== undefined && { apiKey }),
      webSocket: (url, headers) => new WebSocket(url, { headers }) as unknown as WebSocketLike,
    });
    this.base = this.sdk.baseUrl;
  }

  /** `Authorization: Bearer <key>` when there is a key. */
  authHeaders(): Record<string, string> {
    return this.sdk.transport.authHeaders();
  }

  /** Runs a call of the SDK, reporting its failure as a UserError. */
  private async run<T>(call: (sdk: TaskstreamClient) => Promise<T>): Promise<T> {
    try {
      return await call(this.sdk);
    } catch (error) {
      throw userErrorOf(error, this.base);
    }
  }

  private request<T>(method: Call['method'], path: string, json?: unknown): Promise<T> {
    return this.run((sdk) => sdk.transport.json<T>({ method, path, ...(json !== undefined && { json }), idempotent: method !== 'POST' }));
  }

  submit(flowText: string, contentType: string, idempotencyKey?: string) {
    return this.run((sdk) => sdk.submit(flowText, { format: contentType.includes('yaml') ? 'yaml' : 'json', ...(idempotencyKey && { idempotencyKey }) }));
  }

  status(flowId: string): Promise<FlowView> {
    return this.run((sdk) => sdk.get(flowId));
  }

  async events(flowId: string): Promise<{ events: StoredEvent[] }> {
    return { events: await this.run((sdk) => sdk.history(flowId)) };
  }

  cancel(flowId: string, reason?: string) {
    return this.run((sdk) => sdk.cancel(flowId, reason));
  }

  /** Approves or rejects a waiting approval task (Tasked's ack) with the body as given; the gateway answers 204. */
  async ack(flowId: string, taskId: string, body: Record<string, unknown>): Promise<void> {
    await this.request('POST', `/api/v1/flows/${encodeURIComponent(flowId)}/tasks/${encodeURIComponent(taskId)}/ack`, body);
  }

  /** Sends a signal; `payload` is JSON text the caller has checked. */
  signal(name: string, payload: string, idempotencyKey?: string) {
    return this.run((sdk) => sdk.signal(name, JSON.parse(payload), idempotencyKey === undefined ? {} : { idempotencyKey }));
  }

  flows(query: Record<string, string | undefined>) {
    return this.run((sdk) => sdk.transport.json<{ flows: Array<Record<string, unknown> & { flow_id: string; status: string; submitted_at: string; total: number; name?: string; queue: string }>; next_cursor?: string }>({ method: 'GET', path: '/api/v1/flows', query, idempotent: true }));
  }

  /** A GET answered as text (a path with its query). */
  async text(path: string): Promise<string> {
    return (await this.run((sdk) => sdk.transport.send({ method: 'GET', path, idempotent: true }))).text;
  }

  /** A PUT, with the status it was answered with (200 or 201). */
  async putWithStatus<T>(path: string, body: unknown): Promise<{ status: number; body: T }> {
    const answer = await this.run((sdk) => sdk.transport.send({ method: 'PUT', path, json: body, idempotent: true }));
    return { status: answer.status, body: (answer.text === '' ? undefined : JSON.parse(answer.text)) as T };
  }

  /** A GET whose body is left unread (a download). */
  download(path: string): Promise<Response> {
    return this.run((sdk) => sdk.transport.raw({ method: 'GET', path, idempotent: true }));
  }

  post<T = unknown>(path: string, body: unknown = {}) {
    return this.request<T>('POST', path, body);
  }

  put<T = unknown>(path: string, body: unknown = {}) {
    return this.request<T>('PUT', path, body);
  }

  get<T>(path: string) {
    return this.request<T>('GET', path);
  }

  async remove(path: string): Promise<void> {
    await this.request<unknown>('DELETE', path);
  }

  rerun(flowId: string, from?: string) {
    return this.run((sdk) => sdk.rerun(flowId, from === undefined ? {} : { from }));
  }

  fork(flowId: string, at: number, patch?: unknown) {
    return this.run((sdk) => sdk.fork(flowId, at, patch as Record<string, unknown> | undefined));
  }

  async queues(): Promise<{ queues: QueueView[] }> {
    return { queues: await this.run((sdk) => sdk.queues.list()) };
  }

  queue(name: string) {
    return this.run((sdk) => sdk.queues.get(name));
  }

  setQueue(name: string, policy: unknown) {
    return this.run((sdk) => sdk.queues.set(name, policy as QueuePolicy));
  }

  deleteQueue(name: string): Promise<void> {
    return this.run((sdk) => sdk.queues.delete(name));
  }

  /** Follows the flow's feed (resuming by itself after drops), calling `onEvent` for each event until it returns true. */
  async follow(flowId: string, onEvent: (event: FlowEvent, seq: number) => boolean): Promise<void> {
    try {
      for await (const { event, seq } of this.sdk.events(flowId, { untilEnd: false, maxReconnects: 20 })) {
        if (onEvent(event, seq)) return;
      }
    } catch (error) {
      if (error instanceof TaskstreamError && error.code === 'FEED_FAILED') {
        throw new UserError(`lost the live feed of flow ${flowId} and could not reconnect`, `the flow keeps running; check it with \`taskstream status ${flowId}\``, 3);
      }
      if (error instanceof TaskstreamError && (error.status === 401 || error.status === 403)) {
        throw new UserError(`the gateway refused the live feed of flow ${flowId} (status ${error.status})`, authHint(error.status), 2);
      }
      throw userErrorOf(error, this.base);
    }
  }
}
