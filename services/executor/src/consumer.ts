import { allWorkFilter, workSubject, type WorkItem } from '@taskstream/domain';
import { ensureConsumer, flowAttributes, startConsumerLoop, type ConsumerLoop, type DeadLetters, type JsMsg } from '@taskstream/nats';
import type { ServiceContext } from '@taskstream/runtime';
import type { ExecutorConfig } from './config.js';
import { decodeWorkItem } from './work-item.js';

/** The pool's durable consumer of its queue's work items, created or updated to the config. */
export async function ensureWorkConsumer(ctx: ServiceContext, config: ExecutorConfig): Promise<void> {
  await ensureConsumer(ctx.jsm, ctx.topo.workStream, {
    durable_name: config.consumer,
    filter_subject: config.queue === '*' ? allWorkFilter(ctx.topo.layout) : workSubject(ctx.topo.layout, config.queue),
    max_deliver: config.maxDeliver,
    ack_wait: config.ackWaitMs * 1_000_000,
    max_ack_pending: 10_000,
  });
}

/** Pulls work items and hands each to `handle`, `concurrency` at once; an undecodable item is set aside. */
export function startWorkLoop(ctx: ServiceContext, config: ExecutorConfig, handle: (item: WorkItem, msg: JsMsg) => Promise<void>, deadLetters: DeadLetters): Promise<ConsumerLoop> {
  return startConsumerLoop({
    js: ctx.js,
    stream: ctx.topo.workStream,
    consumer: config.consumer,
    source: config.source,
    decode: decodeWorkItem,
    handle,
    span: (item) => ({ name: 'run task', attributes: { ...flowAttributes(item), 'taskstream.executor': item.spec.executor } }),
    deadLetters,
    log: ctx.log,
    maxDeliver: config.maxDeliver,
    concurrency: config.concurrency,
  });
}
