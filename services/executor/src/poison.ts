import { stopReason, type AttemptHistory, type WorkItem } from '@taskstream/domain';
import type { DeadLetters } from '@taskstream/nats';
import type { ServiceContext } from '@taskstream/runtime';
import type { ExecutorConfig } from './config.js';
import type { Recorder } from './recorder.js';
import { decodeWorkItem } from './work-item.js';

export interface PoisonDeps {
  config: Pick<ExecutorConfig, 'consumer' | 'source'>;
  deadLetters: DeadLetters;
  recorder: Pick<Recorder, 'append'>;
  readHistory: (item: WorkItem) => Promise<AttemptHistory>;
}

/** JetStream's MAX_DELIVERIES advisory: what it says of the work item. */
interface Advisory {
  json<T>(): T;
}

/**
 * A work item that kills its executor on every delivery never reaches a handler that could set it
 * aside. JetStream announces it once it has been delivered max_deliver times: record the task as
 * failed (cancelled if its flow's cancel is in the log), keep the item in the dead letters, and
 * remove it. One executor of the pool does this (queue group); the outcome's msgID makes a repeat
 * harmless.
 */
export function watchPoison(ctx: ServiceContext, deps: PoisonDeps): { unsubscribe(): void } {
  const { consumer } = deps.config;
  return ctx.nc.subscribe(`$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${ctx.topo.workStream}.${consumer}`, {
    queue: consumer,
    callback: (_err, advisory) => {
      void setAsidePoison(ctx, deps, advisory).catch((error) => ctx.log.error({ err: error }, 'could not set a poison work item aside'));
    },
  });
}

async function setAsidePoison(ctx: ServiceContext, deps: PoisonDeps, advisory: Advisory): Promise<void> {
  const { stream_seq, deliveries } = advisory.json<{ stream_seq: number; deliveries: number }>();
  const stored = await ctx.jsm.streams.getMessage(ctx.topo.workStream, { seq: stream_seq }).catch(() => null);
  if (!stored) return;
  const reason = `the work item was delivered ${deliveries} times and never completed: its executor stopped each time`;
  await deps.deadLetters.setAsideStored(stored, deps.config.source, deps.config.consumer, deliveries, reason);
  const decoded = decodeWorkItem(stored.data);
  if (decoded.ok) await recordPoisoned(deps, decoded.value, deliveries, reason);
  await ctx.jsm.streams.deleteMessage(ctx.topo.workStream, stream_seq, false);
  ctx.log.error({ stream_seq, deliveries }, 'poison work item set aside');
}

/** The task's outcome, unless the log already has one. */
async function recordPoisoned(deps: PoisonDeps, item: WorkItem, deliveries: number, reason: string): Promise<void> {
  const prior = await deps.readHistory(item);
  if (prior.finished) return;
  const stopped = stopReason(prior.stop, item.spec);
  await deps.recorder.append(
    item,
    stopped !== undefined
      ? { type: 'task.cancelled', data: { reason: `${stopped} before the task finished` } }
      : { type: 'task.failed', attempt: Math.max(1, deliveries), data: { error: { message: reason, code: 'POISON', retryable: false }, duration_ms: 0 } },
    'outcome',
  );
}
