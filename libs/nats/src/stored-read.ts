import type { Consumer, JsMsg } from '@nats-io/jetstream';

/** Creating a consumer normally takes milliseconds; one that takes longer is waiting on a lost peer. */
export const CONSUMER_CREATION_MS = 1_000;
/** The longest wait for the next stored message of a read before the read is given up as stalled. */
export const READ_STALL_MS = 3_000;

export class ReadTimeout extends Error {
  override name = 'TimeoutError';
}

export function withinMs<T>(pending: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expiry = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ReadTimeout(`no answer within ${ms} ms`)), ms);
  });
  pending.catch(() => undefined);
  return Promise.race([pending, expiry]).finally(() => clearTimeout(timer));
}

/** How a read of what a consumer holds ended: all of it read, stopped by its reader, or stalled. */
export type StoredReadEnd = 'caught-up' | 'stopped' | 'stalled';

/**
 * Hands `take` every message `consumer` holds now, in order, until none is pending or `take`
 * returns false (the time `take` spends does not count as waiting). Under load a consumer has been seen to stop delivering for good, which left a
 * request unanswered forever: a read that gets nothing for READ_STALL_MS ends as 'stalled', and the
 * caller reads the rest another way (direct gets) or tries again.
 */
export async function readStored(consumer: Consumer, take: (msg: JsMsg) => boolean | void | Promise<boolean | void>, batch = 1000): Promise<StoredReadEnd> {
  const { num_pending } = await withinMs(consumer.info(), CONSUMER_CREATION_MS);
  if (num_pending === 0) return 'caught-up';
  const messages = await consumer.consume({ max_messages: Math.min(num_pending, batch) });
  const delivered = messages[Symbol.asyncIterator]();
  let end: StoredReadEnd = 'caught-up';
  try {
    for (;;) {
      const next = await withinMs(delivered.next(), READ_STALL_MS);
      if (next.done === true) break;
      if ((await take(next.value)) === false) {
        end = 'stopped';
        break;
      }
      if (next.value.info.pending === 0) break;
    }
  } catch (error) {
    if (!(error instanceof ReadTimeout)) throw error;
    end = 'stalled';
  } finally {
    // Ending the iteration lets the consumer close; a stalled one is stopped without waiting for it.
    if (end === 'stalled') void messages.close().catch(() => undefined);
    else {
      await delivered.return?.(undefined);
      await messages.close();
    }
  }
  return end;
}
