import type { JetStreamClient } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';

/** JetStream's error code for "no message found". */
const NO_MESSAGE_FOUND = 10037;

interface MessageGetAnswer {
  message?: unknown;
  error?: { code: number; err_code?: number; description?: string };
}

/**
 * Whether `stream` holds a message on `subject`, asked of the stream's leader (not a direct get,
 * which a lagging replica may answer: "none" must mean none is stored). `jsm.streams.getMessage`
 * answers the same, but builds a JetStreamApiError, stack trace and all, for every "no message
 * found", which is the usual answer where this is asked for every task (a flow's stop subjects).
 */
export async function storesAnyOn(nc: NatsConnection, stream: string, subject: string, timeoutMs = 5_000): Promise<boolean> {
  const reply = await nc.request(`$JS.API.STREAM.MSG.GET.${stream}`, JSON.stringify({ last_by_subj: subject }), { timeout: timeoutMs });
  const answer = reply.json<MessageGetAnswer>();
  if (answer.error === undefined) return answer.message !== undefined;
  if (answer.error.err_code === NO_MESSAGE_FOUND) return false;
  throw new Error(`could not read the last message on ${subject} in stream ${stream}: ${answer.error.description ?? 'no description'} (${answer.error.code})`);
}

/**
 * The stream leader's last sequence on `subject` (wildcards allowed), undefined when it holds none
 * there; failing when it cannot be asked. For reads that must reach it (see readEvents); off the
 * hot path, so it goes through `jsm.streams.getMessage`, which needs no connection of its own.
 */
export async function lastStoredSeq(js: JetStreamClient, stream: string, subject: string): Promise<number | undefined> {
  const jsm = await js.jetstreamManager(false);
  return (await jsm.streams.getMessage(stream, { last_by_subj: subject }))?.seq;
}
