import type { FlowEvent, FlowSummary, FlowView } from '@taskstream/domain';
import { TaskstreamError } from './errors.js';
import { FeedIterator, type FeedOptions, type StoredEvent, type WebSocketFactory, type WebSocketLike } from './feed.js';
import { DEFAULT_RETRY, queryString, Transport, type RetryPolicy } from './http.js';
import { Artifacts, DeadLetters, Keys, Queues, Schedules, Secrets, Templates, Triggers } from './resources.js';
import type { Cancelling, Decision, FlowEvents, FlowFilters, FlowInput, FlowPage, FlowStateAt, Fork, Rerun, SignalSent, Submitted } from './types.js';

export interface ClientOptions {
  /** The gateway, e.g. `http://127.0.0.1:8080`. */
  baseUrl: string;
  /** An API key (`ts_…`), sent as `Authorization: Bearer`. */
  apiKey?: string;
  /** Retries of calls safe to repeat (GET, PUT, DELETE, and POSTs with an Idempotency-Key) on no answer, 408, 429, 502, 503, 504. */
  retry?: Partial<RetryPolicy>;
  /** How long one request may take (default 30 s). */
  timeoutMs?: number;
  /** The fetch to use (default: the global one). */
  fetch?: typeof fetch;
  /** How to open WebSockets (see WebSocketFactory); default: the global WebSocket with the key as `?token=`. */
  webSocket?: WebSocketFactory;
}

const TERMINAL = new Set(['flow.succeeded', 'flow.failed', 'flow.cancelled']);

/** Whether an event ends its flow. */
export function isFlowEnd(event: FlowEvent): boolean {
  return TERMINAL.has(event.type);
}

const FLOW_ID = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const path = (...parts: string[]) => parts.map((p) => encodeURIComponent(p)).join('/');

/** Flows whose last sequence read a client remembers. */
const SEEN_FLOWS = 1_000;

/** Makes an Idempotency-Key, so a submission can be retried safely when the caller gave none. */
function newKey(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return `sdk-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

/** The default WebSocket: the global one, when this platform has it. */
function globalWebSocket(url: string): WebSocketLike {
  const Native = (globalThis as { WebSocket?: new (url: string) => WebSocketLike }).WebSocket;
  if (!Native) {
    throw new TaskstreamError('FEED_FAILED', 'this platform has no global WebSocket (Node 20 has none); pass `webSocket: (url, headers) => new WebSocket(url, { headers })` with the `ws` package');
  }
  return new Native(url);
}

export interface EventsOptions extends FeedOptions {
  /** End the iteration after the flow's terminal event (default true). */
  untilEnd?: boolean;
}

export interface SubmitOptions {
  /** Retries with the same key answer the first flow; one is made up when none is given, so retries are safe. */
  idempotencyKey?: string;
  /** For a flow given as text: `yaml` or `json` (default: json). */
  format?: 'json' | 'yaml';
  signal?: AbortSignal;
}

/** The Taskstream gateway's API: flows, their events live, approvals, signals, and the resources beside them. */
export class TaskstreamClient {
  readonly transport: Transport;
  readonly queues: Queues;
  readonly templates: Templates;
  readonly schedules: Schedules;
  readonly secrets: Secrets;
  readonly deadLetters: DeadLetters;
  readonly artifacts: Artifacts;
  readonly keys: Keys;
  readonly triggers: Triggers;
  private readonly openSocket: WebSocketFactory;
  private readonly headersInSocket: boolean;
  /** The newest `last_seq` this client read per flow (the last SEEN_FLOWS read), sent back so no gateway answers older. */
  private readonly seen = new Map<string, number>();

  constructor(options: ClientOptions) {
    if (!/^https?:\/\/[^/]/.test(options.baseUrl)) throw new TaskstreamError('INVALID_PARAMETER', `baseUrl must be an http:// or https:// URL, not "${options.baseUrl.slice(0, 200)}"`);
    const fetchImpl = options.fetch ?? globalThis.fetch?.bind(globalThis);
    if (!fetchImpl) throw new TaskstreamError('INVALID_PARAMETER', 'this platform has no global fetch; pass `fetch` in the options');
    this.transport = new Transport({
      baseUrl: options.baseUrl,
      ...(options.apiKey !== undefined && options.apiKey !== '' && { apiKey: options.apiKey }),
      fetch: fetchImpl,
      retry: { ...DEFAULT_RETRY, ...options.retry },
      timeoutMs: options.timeoutMs ?? 30_000,
    });
    this.openSocket = options.webSocket ?? globalWebSocket;
    this.headersInSocket = options.webSocket !== undefined;
    const t = this.transport;
    this.queues = new Queues(t);
    this.templates = new Templates(t, newKey);
    this.schedules = new Schedules(t);
    this.secrets = new Secrets(t);
    this.deadLetters = new DeadLetters(t);
    this.artifacts = new Artifacts(t);
    this.keys = new Keys(t);
    this.triggers = new Triggers(t);
  }

  get baseUrl(): string {
    return this.transport.baseUrl;
  }

  /** Submits a flow (an object, or JSON/YAML text). Answers at once, with the flow id; follow it with `events` or `wait`. */
  submit(flow: FlowInput | string, options: SubmitOptions = {}): Promise<Submitted> {
    const text = typeof flow === 'string' ? { body: flow, contentType: options.format === 'yaml' ? 'application/yaml' : 'application/json' } : undefined;
    return this.transport.json<Submitted>({
      method: 'POST',
      path: '/api/v1/flows',
      ...(text ? { text } : { json: flow }),
      headers: { 'idempotency-key': options.idempotencyKey ?? newKey() },
      idempotent: true,
      ...(options.signal && { signal: options.signal }),
    });
  }

  /**
   * The flow's view: its status, counts, timings and every task. Never older than a view this
   * client read before, whichever gateway answers (behind a load balancer, one may read a
   * projector's view that is behind what another folded from the log).
   */
  async get(flowId: string, signal?: AbortSignal): Promise<FlowView> {
    const minSeq = this.seen.get(flowId);
    const view = await this.transport.json<FlowView>({
      method: 'GET',
      path: `/api/v1/flows/${path(flowId)}`,
      ...(minSeq !== undefined && { query: { min_seq: minSeq } }),
      idempotent: true,
      ...(signal && { signal }),
    });
    if (view.last_seq > (minSeq ?? 0)) {
      this.seen.delete(flowId);
      this.seen.set(flowId, view.last_seq);
      if (this.seen.size > SEEN_FLOWS) this.seen.delete(this.seen.keys().next().value!);
    }
    return view;
  }

  /** One page of the flows list, newest first. */
  listPage(filters: FlowFilters = {}): Promise<FlowPage> {
    const { status, since, until, labels, ...rest } = filters;
    return this.transport.json<FlowPage>({
      method: 'GET',
      path: '/api/v1/flows',
      query: {
        ...rest,
        status: status === undefined ? undefined : [status].flat(),
        since: since instanceof Date ? since.toISOString() : since,
        until: until instanceof Date ? until.toISOString() : until,
        label: labels === undefined ? undefined : Object.entries(labels).map(([k, v]) => `${k}:${v}`),
      },
      idempotent: true,
    });
  }

  /** Every flow matching the filters, newest first, fetched a page at a time as the iteration goes. */
  async *list(filters: FlowFilters = {}): AsyncIterableIterator<FlowSummary> {
    let cursor = filters.cursor;
    do {
      const page = await this.listPage({ ...filters, ...(cursor !== undefined && { cursor }) });
      yield* page.flows;
      cursor = page.next_cursor;
    } while (cursor !== undefined);
  }

  /** The flow's stored events in stream order (after `after`, when given). */
  async history(flowId: string, after = 0): Promise<StoredEvent[]> {
    const answer = await this.transport.json<FlowEvents>({ method: 'GET', path: `/api/v1/flows/${path(flowId)}/events`, query: { after: after || undefined }, idempotent: true });
    return answer.events;
  }

  /**
   * The flow's events, stored ones first, then live ones, until its end (unless `untilEnd: false`).
   * The feed reconnects by itself after a dropped connection and resumes after the last event
   * received, with no gap and no duplicate.
   */
  events(flowId: string, options: EventsOptions = {}): FeedIterator {
    if (!FLOW_ID.test(flowId)) throw new TaskstreamError('FLOW_NOT_FOUND', `no flow with id "${flowId.slice(0, 100)}": a flow id is a ULID of 26 characters`, { status: 404 });
    const untilEnd = options.untilEnd ?? true;
    return this.feedOf(`/api/v1/flows/${path(flowId)}/feed`, {}, (event) => untilEnd && event.flow_id === flowId && isFlowEnd(event), () => this.get(flowId), options);
  }

  /** Every event (or those of a flow, a queue, some types), stored then live, resumable like `events`. It never ends by itself. */
  feed(options: FeedOptions & { flow?: string; queue?: string; types?: readonly FlowEvent['type'][] } = {}): FeedIterator {
    const { flow, queue, types, ...rest } = options;
    return this.feedOf('/api/v1/feed', { flow, queue, type: types && types.length > 0 ? types.join(',') : undefined }, () => false, () => this.listPage({ limit: 1 }), rest);
  }

  private feedOf(route: string, query: Record<string, string | undefined>, isLast: (event: FlowEvent) => boolean, probe: () => Promise<unknown>, options: FeedOptions): FeedIterator {
    const base = this.baseUrl.replace(/^http/, 'ws');
    const token = !this.headersInSocket && this.transport.apiKey !== undefined ? this.transport.apiKey : undefined;
    return new FeedIterator(
      {
        url: (after) => `${base}${route}${queryString({ ...query, after, token })}`,
        isLast,
        probe,
        open: this.openSocket,
        headers: this.headersInSocket ? this.transport.authHeaders() : {},
      },
      options,
    );
  }

  /**
   * Waits until the flow ends, or `timeoutMs` passes, following its feed; answers the view then
   * (finished or not: check `status`).
   */
  async wait(flowId: string, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<FlowView> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), options.timeoutMs ?? 60_000);
    const stop = () => controller.abort();
    options.signal?.addEventListener('abort', stop, { once: true });
    try {
      for await (const _ of this.events(flowId, { signal: controller.signal })) {
        // Only the end matters.
      }
    } catch (error) {
      if (!(error instanceof TaskstreamError && error.code === 'ABORTED') || options.signal?.aborted) throw error;
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', stop);
    }
    return this.waitForView(flowId);
  }

  /** The view once the projector has folded the flow's end (it may lag the feed by a moment). */
  private async waitForView(flowId: string): Promise<FlowView> {
    let view = await this.get(flowId);
    for (let i = 0; i < 50 && !['succeeded', 'failed', 'cancelled'].includes(view.status); i++) {
      const events = await this.history(flowId, view.last_seq);
      if (!events.some((e) => isFlowEnd(e.event))) break;
      await new Promise((r) => setTimeout(r, 100));
      view = await this.get(flowId);
    }
    return view;
  }

  /** Asks the flow to stop; it ends `cancelled` once every task has settled. */
  cancel(flowId: string, reason?: string): Promise<Cancelling> {
    return this.transport.json<Cancelling>({ method: 'POST', path: `/api/v1/flows/${path(flowId)}/cancel`, json: reason === undefined ? {} : { reason }, idempotent: false });
  }

  /** A new flow with the finished flow's definition, reusing what succeeded (with `from`: that task and what follows it run again). */
  rerun(flowId: string, options: { from?: string } = {}): Promise<Rerun> {
    return this.transport.json<Rerun>({ method: 'POST', path: `/api/v1/flows/${path(flowId)}/rerun`, json: options.from === undefined ? {} : { from: options.from }, idempotent: false });
  }

  /** A new flow from the flow's state at sequence `at`, its definition patched (tasks merged by id). */
  fork(flowId: string, at: number, patch?: Record<string, unknown>): Promise<Fork> {
    return this.transport.json<Fork>({ method: 'POST', path: `/api/v1/flows/${path(flowId)}/fork`, json: { at, ...(patch !== undefined && { patch }) }, idempotent: false });
  }

  /** The flow's view folded from its events up to sequence `at`. */
  stateAt(flowId: string, at: number): Promise<FlowStateAt> {
    return this.transport.json<FlowStateAt>({ method: 'GET', path: `/api/v1/flows/${path(flowId)}/state`, query: { at }, idempotent: true });
  }

  /** The flow's DAG as Graphviz DOT or a Mermaid flowchart. */
  async graph(flowId: string, format: 'dot' | 'mermaid' = 'dot'): Promise<string> {
    return (await this.transport.send({ method: 'GET', path: `/api/v1/flows/${path(flowId)}/graph`, query: { format }, idempotent: true })).text;
  }

  /** Approves a waiting approval task: it succeeds (with `output`, when given) and its dependents run. */
  approve(flowId: string, taskId: string, decision: Decision & { output?: unknown } = {}): Promise<void> {
    return this.ack(flowId, taskId, { status: 'success', ...(decision.output !== undefined && { output: decision.output }) }, decision);
  }

  /** Rejects a waiting approval task: it fails (with `reason` as its error) and its dependents do not run. */
  reject(flowId: string, taskId: string, decision: Decision & { reason?: string } = {}): Promise<void> {
    return this.ack(flowId, taskId, { status: 'failed', ...(decision.reason !== undefined && { error: decision.reason }) }, decision);
  }

  private async ack(flowId: string, taskId: string, body: Record<string, unknown>, decision: Decision): Promise<void> {
    const code = decision.code ?? (await this.approvalCode(flowId, taskId));
    await this.transport.send({
      method: 'POST',
      path: `/api/v1/flows/${path(flowId)}/tasks/${path(taskId)}/ack`,
      json: { ...body, ...(code !== undefined && { code }), ...(decision.approvedBy !== undefined && { approved_by: decision.approvedBy }) },
      idempotent: false,
    });
  }

  /** The code in a waiting approval task's output, if the view shows one (the gateway answers for anything else). */
  private async approvalCode(flowId: string, taskId: string): Promise<string | undefined> {
    const task = (await this.get(flowId)).tasks.find((t) => t.id === taskId);
    const code = (task?.output as { code?: unknown } | undefined)?.code;
    return typeof code === 'string' ? code : undefined;
  }

  /** Sends a signal: every wait task waiting for `name` whose `match` accepts the payload succeeds with it. */
  signal(name: string, payload: unknown = null, options: { idempotencyKey?: string } = {}): Promise<SignalSent> {
    return this.transport.json<SignalSent>({
      method: 'POST',
      path: `/api/v1/signals/${path(name)}`,
      json: payload,
      headers: { 'idempotency-key': options.idempotencyKey ?? newKey() },
      idempotent: true,
    });
  }

  /** Whether the gateway is ready: NATS connected and every stream there. */
  async ready(): Promise<boolean> {
    try {
      await this.transport.send({ method: 'GET', path: '/readyz', idempotent: false });
      return true;
    } catch (error) {
      if (error instanceof TaskstreamError && error.status === 503) return false;
      throw error;
    }
  }
}
