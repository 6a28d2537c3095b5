import type { FlowEvent } from '@taskstream/domain';
import { isTransient, TaskstreamError } from './errors.js';
import { aborted } from './http.js';

/** An event as the log stores it, with its stream sequence. */
export interface StoredEvent {
  seq: number;
  stored_at: string;
  event: FlowEvent;
}

/** The part of the WebSocket interface the client uses: browsers' and Node's global one, and the `ws` package's, have it. */
export interface WebSocketLike {
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  close(code?: number, reason?: string): void;
}

/**
 * Opens a WebSocket. `headers` holds the `Authorization` header when there is an API key: a factory
 * that can send headers (Node's `ws`: `(url, headers) => new WebSocket(url, { headers })`) should.
 * Without a factory the client uses the global `WebSocket` (browsers, Node 22+), which cannot send
 * headers, and passes the key as the feeds' `token` query parameter instead.
 */
export type WebSocketFactory = (url: string, headers: Record<string, string>) => WebSocketLike;

export interface FeedOptions {
  /** Start after this sequence (0, the default: from the first event). */
  after?: number;
  /** Stops the iteration; a pending `next()` rejects with ABORTED. */
  signal?: AbortSignal;
  /** Events held for a slow consumer before the socket is closed, to be reopened where it stopped once they are read (default 1,000). */
  maxBuffered?: number;
  /** Reconnections in a row without receiving anything before giving up with FEED_FAILED (default 10). */
  maxReconnects?: number;
}

export interface FeedSource {
  /** The feed's URL for events after `after`, without credentials. */
  url(after: number): string;
  /** Whether an event ends the feed (a flow's terminal event, for a flow's feed followed to its end). */
  isLast(event: FlowEvent): boolean;
  /** Asks the gateway over HTTP about what the feed needs, so a refused upgrade turns into the API's error (401, 403, 404). */
  probe(): Promise<unknown>;
  open: WebSocketFactory;
  headers: Record<string, string>;
}

const RECONNECT_INITIAL_MS = 100;
const RECONNECT_MAX_MS = 3_000;

function text(data: unknown): string {
  if (typeof data === 'string') return data;
  if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) return new TextDecoder().decode(data as ArrayBuffer);
  return String(data);
}

/**
 * A live feed as an async iterator of stored events. It reconnects whenever the socket closes
 * before the end (a drop, a server restart, code 4008 after `resync`), asking for the events after
 * the last sequence it received, and drops any sequence it already has: no gap and no duplicate.
 */
export class FeedIterator implements AsyncIterableIterator<StoredEvent> {
  private readonly queue: StoredEvent[] = [];
  private last: number;
  private socket: WebSocketLike | undefined;
  private finished = false;
  private stopped = false;
  private paused = false;
  private failure: unknown;
  private failures = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private wake: (() => void) | undefined;
  private readonly maxBuffered: number;
  private readonly maxReconnects: number;

  constructor(
    private readonly source: FeedSource,
    private readonly options: FeedOptions = {},
  ) {
    this.last = options.after ?? 0;
    this.maxBuffered = Math.max(1, options.maxBuffered ?? 1_000);
    this.maxReconnects = options.maxReconnects ?? 10;
    options.signal?.addEventListener('abort', () => this.fail(aborted(options.signal!)), { once: true });
    if (options.signal?.aborted) this.fail(aborted(options.signal));
    else this.connect();
  }

  /** The sequence of the last event received: where a new feed would resume. */
  get lastSeq(): number {
    return this.last;
  }

  /** Closes the current socket as a network drop would; the feed reconnects and resumes (for tests of resumption). */
  dropConnection(): void {
    this.socket?.close(4000, 'dropped by the client');
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<StoredEvent> {
    return this;
  }

  async next(): Promise<IteratorResult<StoredEvent>> {
    for (;;) {
      const item = this.queue.shift();
      if (item) {
        if (this.paused && this.queue.length === 0) {
          this.paused = false;
          this.connect();
        }
        return { value: item, done: false };
      }
      if (this.failure !== undefined) throw this.failure;
      if (this.finished || this.stopped) return { value: undefined, done: true };
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  async return(): Promise<IteratorResult<StoredEvent>> {
    this.stop();
    return { value: undefined, done: true };
  }

  private stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    const socket = this.socket;
    this.socket = undefined;
    socket?.close(1000, 'done');
    this.notify();
  }

  private fail(error: unknown): void {
    if (this.failure === undefined) this.failure = error;
    this.stop();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private connect(): void {
    if (this.stopped || this.finished) return;
    let socket: WebSocketLike;
    try {
      socket = this.source.open(this.source.url(this.last), this.source.headers);
    } catch (error) {
      return this.fail(new TaskstreamError('FEED_FAILED', `could not open the feed: ${(error as Error).message}`, { cause: error }));
    }
    this.socket = socket;
    let received = false;
    let opened = false;
    socket.onopen = () => {
      opened = true;
    };
    socket.onmessage = (message) => {
      if (this.socket !== socket) return;
      received = true;
      this.failures = 0;
      this.receive(text(message.data));
    };
    socket.onerror = () => undefined;
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      if (this.stopped || this.finished || this.paused) return this.notify();
      void this.reconnect(received, opened);
    };
  }

  private receive(data: string): void {
    let message: { seq?: unknown; event?: FlowEvent; invalid?: string; type?: string };
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    // `resync` precedes a close with code 4008; reconnecting after the last event received continues the feed.
    if (typeof message.seq !== 'number' || message.seq <= this.last) return;
    this.last = message.seq;
    if (message.event === undefined) return;
    this.queue.push({ seq: message.seq, stored_at: String((message as { stored_at?: unknown }).stored_at), event: message.event });
    if (this.source.isLast(message.event)) {
      this.finished = true;
      const socket = this.socket;
      this.socket = undefined;
      socket?.close(1000, 'done');
    } else if (this.queue.length >= this.maxBuffered && !this.paused) {
      this.paused = true;
      const socket = this.socket;
      this.socket = undefined;
      socket?.close(1000, 'paused until the buffered events are read');
    }
    this.notify();
  }

  private async reconnect(received: boolean, opened: boolean): Promise<void> {
    this.failures = received ? 0 : this.failures + 1;
    if (!opened) {
      // Nothing came through: ask over HTTP why, so a missing key or flow is its own error rather than endless retries.
      try {
        await this.source.probe();
      } catch (error) {
        if (!isTransient(error)) return this.fail(error);
      }
    }
    if (this.failures > this.maxReconnects) {
      return this.fail(new TaskstreamError('FEED_FAILED', `the live feed closed ${this.failures} times in a row without sending anything; the last event received was seq ${this.last}`));
    }
    if (this.stopped) return;
    const delay = this.failures === 0 ? 0 : Math.min(RECONNECT_MAX_MS, RECONNECT_INITIAL_MS * 2 ** (this.failures - 1));
    this.timer = setTimeout(() => this.connect(), delay);
  }
}
