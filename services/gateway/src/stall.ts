import type { Socket } from 'node:net';

/** How long a streaming client with data waiting for it may read none of it before it is dropped, unless TASKSTREAM_CLIENT_STALL_SECS says otherwise. */
export const DEFAULT_CLIENT_STALL_MS = 120_000;

/**
 * Bytes of writes to `socket` the kernel has not taken yet. Node's `writableLength` goes down only
 * when a whole write is done, so a client reading one large write slowly would look stalled;
 * libuv's queue goes down as the kernel takes each part of it.
 */
export function unsentBytes(socket: Socket | null | undefined): number {
  return (socket as { _handle?: { writeQueueSize?: number } } | null | undefined)?._handle?.writeQueueSize ?? 0;
}

/**
 * Calls `drop` once the bytes the gateway holds for a client (`waiting`) have stayed above zero
 * without going down for `stallMs`: the client read nothing of them in that time. Progress, however
 * slow, keeps the client, and so does a pause of the gateway's own (a check that comes late does
 * not count the delay against the client). Returns the stop; the watch also ends when it drops the
 * client.
 */
export function watchForStall(waiting: () => number, stallMs: number, drop: () => void): () => void {
  const every = Math.min(1_000, Math.max(50, stallMs / 4));
  let last = waiting();
  let progressAt = Date.now();
  let checkedAt = progressAt;
  const check = setInterval(() => {
    const now = Date.now();
    if (now - checkedAt > 2 * every) progressAt += now - checkedAt - every;
    checkedAt = now;
    const bytes = waiting();
    if (bytes === 0 || bytes < last) progressAt = now;
    last = bytes;
    if (now - progressAt >= stallMs) {
      clearInterval(check);
      drop();
    }
  }, every);
  check.unref();
  return () => clearInterval(check);
}
