import { TaskstreamError, type FeedIterator, type StoredEvent } from '@taskstream/client';

/** How long to wait before opening a feed again after it gave up (the gateway down for longer than its own retries). */
const REOPEN_MS = 2_000;

/**
 * Follows a feed until `signal` aborts, passing each event on. The client's feed already resumes
 * after a dropped connection from the last sequence it received; when it gives up (FEED_FAILED
 * after its retries, the gateway restarting for longer), this opens it again from the same
 * sequence, so the page never needs a reload. A refusal (key, flow) ends it with `onError`.
 */
export async function follow(
  open: (after: number) => FeedIterator,
  handlers: { onEvent: (event: StoredEvent) => void; onError: (error: unknown) => void; onEnd?: () => void; onReconnecting?: (reconnecting: boolean) => void },
  signal: AbortSignal,
  after = 0,
): Promise<void> {
  let last = after;
  while (!signal.aborted) {
    const feed = open(last);
    try {
      for await (const stored of feed) {
        handlers.onReconnecting?.(false);
        last = stored.seq;
        handlers.onEvent(stored);
      }
      handlers.onEnd?.();
      return;
    } catch (error) {
      if (signal.aborted) return;
      if (!(error instanceof TaskstreamError) || !['FEED_FAILED', 'NETWORK', 'TIMEOUT', 'UNAVAILABLE'].includes(error.code)) return handlers.onError(error);
      handlers.onReconnecting?.(true);
      await new Promise((resolve) => setTimeout(resolve, REOPEN_MS));
    }
  }
}
