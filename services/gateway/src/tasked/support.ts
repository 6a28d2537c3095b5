import { eventSubject, QueueName, type FlowDefinition, type QueuePolicy } from '@taskstream/domain';
import { decodeEvent, definitionsOf, Kvm, queuePolicyKey, type KV } from '@taskstream/nats';
import type { ServiceContext } from '@taskstream/runtime';
import { ApiError } from '../errors.js';
import type { Queues } from '../queues.js';
import { notFound, TaskedError } from './errors.js';
import type { QueueDefaults } from './shapes.js';

/** A request body as JSON, or Tasked's 400 for one that is not (an empty body is not a JSON value). */
export function jsonBody(body: unknown): unknown {
  const text = typeof body === 'string' ? body : '';
  if (text.trim() === '') throw new TaskedError(400, 'invalid_json', 'Failed to parse the request body as JSON: the body is empty');
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new TaskedError(400, 'invalid_json', `Failed to parse the request body as JSON: ${(error as Error).message}`);
  }
}

/** Runs `work`, answering Taskstream's not-found errors as Tasked's, naming what the client asked for. */
export async function tasked<T>(work: () => Promise<T>, names: { flow?: string; task?: string; queue?: string; schedule?: string }): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof ApiError) {
      if (error.code === 'FLOW_NOT_FOUND' && names.flow !== undefined) throw notFound.flow(names.flow);
      if (error.code === 'TASK_NOT_FOUND' && names.flow !== undefined && names.task !== undefined) throw notFound.task(names.flow, names.task);
      if (error.code === 'QUEUE_NOT_FOUND' && names.queue !== undefined) throw notFound.queue(names.queue);
      if (error.code === 'SCHEDULE_NOT_FOUND' && names.schedule !== undefined) throw notFound.schedule(names.schedule);
    }
    throw error;
  }
}

/** A queue's policy; a queue "exists" in Tasked's sense when it has one (a name no queue may have names none). */
export async function existingQueue(queues: Queues, id: string): Promise<QueuePolicy> {
  if (!QueueName.safeParse(id).success) throw notFound.queue(id);
  return (await tasked(() => queues.get(id), { queue: id })).policy;
}

/** Task defaults by queue, each policy read once per request; a queue without a policy has none. */
export function policyLookup(queues: Queues): { load(names: Iterable<string>): Promise<void>; get(queue: string): QueueDefaults } {
  const known = new Map<string, QueueDefaults>();
  return {
    async load(names) {
      for (const name of new Set(names)) {
        if (known.has(name)) continue;
        known.set(name, await queues.get(name).then((v) => v.policy, (error: unknown) => (error instanceof ApiError && error.code === 'QUEUE_NOT_FOUND' ? undefined : Promise.reject(error))));
      }
    },
    get: (queue) => known.get(queue),
  };
}

/**
 * The flow's definition as submitted: its `flow.submitted`, read directly by subject (one read,
 * whatever the flow's size), with a large definition put back from the definitions store.
 */
export async function definitionOf(ctx: ServiceContext, flowId: string): Promise<FlowDefinition | undefined> {
  const message = await ctx.jsm.streams.getMessage(ctx.topo.eventsStream, { last_by_subj: eventSubject(ctx.topo.layout, flowId, 'flow.submitted') });
  if (message === null) return undefined;
  const decoded = decodeEvent(message.data);
  if (!decoded.ok || decoded.value.type !== 'flow.submitted') return undefined;
  const event = await (await definitionsOf(ctx.js, ctx.topo)).hydrate(decoded.value);
  return event.type === 'flow.submitted' ? event.data.definition : undefined;
}

/** The queue policies' bucket, opened once per connection (only its entries' times are read here; policies go through Queues). */
const policyBuckets = new WeakMap<ServiceContext, Promise<KV>>();

/**
 * When a queue's policy was last written: the time its bucket stored the value. A policy keeps no
 * creation time of its own, so Tasked's `created_at` and `updated_at` both say this.
 */
export async function policyWrittenAt(ctx: ServiceContext, queue: string): Promise<string> {
  let kv = policyBuckets.get(ctx);
  if (kv === undefined) {
    kv = new Kvm(ctx.js).open(ctx.topo.queuesBucket);
    kv.catch(() => policyBuckets.delete(ctx));
    policyBuckets.set(ctx, kv);
  }
  const entry = await (await kv).get(queuePolicyKey(queue));
  return (entry?.created ?? new Date()).toISOString();
}

/** `work` over `items`, at most `width` at a time, results in order. */
export async function mapLimited<T, R>(items: readonly T[], width: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await work(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
  return out;
}
