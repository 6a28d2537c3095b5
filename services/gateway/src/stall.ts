/** How long a streaming client with data waiting for it may read none of it before it is dropped, unless TASKSTREAM_CLIENT_STALL_SECS says otherwise. */
export const DEFAULT_CLIENT_STALL_MS = 120_000;

/**
 * Calls `drop` once the bytes the gateway holds for a client (`waiting`) have stayed above zero
 * without going down for `stallMs`: the client read nothing of them in that time. Progress, however
 * slow, keeps the client. Returns the stop; the watch also ends when it drops the client.
 */
export function watchForStall(waiting: () => number, stallMs: number, drop: () => void): () => void {
  let last = waiting();
  let progressAt = Date.now();
  const check = setInterval(
    () => {
      const now = waiting();
      if (now === 0 || now < last) progressAt = Date.now();
      last = now;
      if (Date.now() - progressAt >= stallMs) {
        clearInterval(check);
        drop();
      }
    },
    Math.min(1_000, Math.max(50, stallMs / 4)),
  );
  check.unref();
  return () => clearInterval(check);
}
