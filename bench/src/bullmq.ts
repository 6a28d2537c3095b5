import { execFileSync } from 'node:child_process';
import { FlowProducer, Queue, Worker, type FlowJob } from 'bullmq';
import { Redis } from 'ioredis';
import { ProcessMeter } from './procs.js';
import { limitStats, lostAndDuplicates, manyFlowsFigures, measured, type ManyFlowsResult, type Result } from './result.js';

const connection = { host: '127.0.0.1', port: 6379, maxRetriesPerRequest: null };

function redisPid(): number {
  return Number(execFileSync('pidof', ['redis-server']).toString().trim().split(/\s+/)[0]);
}

/** Sets Redis persistence for a run: "aof" (appendonly yes, appendfsync everysec) or "none". */
export async function setPersistence(mode: 'aof' | 'none'): Promise<() => Promise<void>> {
  const redis = new Redis(connection);
  const get = async (key: string) => ((await redis.config('GET', key)) as string[])[1]!;
  const before = { appendonly: await get('appendonly'), appendfsync: await get('appendfsync') };
  await redis.config('SET', 'appendonly', mode === 'aof' ? 'yes' : 'no');
  if (mode === 'aof') await redis.config('SET', 'appendfsync', 'everysec');
  await redis.flushall();
  return async () => {
    await redis.config('SET', 'appendonly', before.appendonly);
    await redis.config('SET', 'appendfsync', before.appendfsync);
    await redis.flushall();
    redis.disconnect();
  };
}

function meter(): ProcessMeter {
  return new ProcessMeter(new Map([['redis-server', redisPid()], ['bench (workers)', process.pid]]));
}

export async function independent(n: number, label: string): Promise<Result> {
  const name = `bench-independent-${Date.now()}`;
  const queue = new Queue(name, { connection });
  const starts: number[] = [];
  const seen = new Map<number, number>();
  let resolve!: () => void;
  const done = new Promise<void>((r) => (resolve = r));
  const usage = meter();
  const t0 = performance.now();
  const submitted = Date.now();
  const worker = new Worker(
    name,
    async (job) => {
      starts.push(Date.now() - submitted);
      seen.set(job.data.i, (seen.get(job.data.i) ?? 0) + 1);
      return null;
    },
    { connection, concurrency: 64 },
  );
  let completed = 0;
  worker.on('completed', () => {
    if (++completed === n) resolve();
  });
  for (let i = 0; i < n; i += 1000) await queue.addBulk(Array.from({ length: Math.min(1000, n - i) }, (_, k) => ({ name: 'noop', data: { i: i + k }, opts: { removeOnComplete: true } })));
  await done;
  const makespan = performance.now() - t0;
  const used = usage.stop();
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  return {
    workload: '1-independent',
    system: label,
    ...measured(n, makespan, starts, used),
    ...lostAndDuplicates(seen, n),
    notes: 'one queue, addBulk, 64 concurrent in one worker',
  };
}

/** A chain of n steps as nested FlowProducer children: the deepest child runs first. */
export async function chain(n: number, label: string): Promise<Result> {
  const name = `bench-chain-${Date.now()}`;
  const times = new Map<number, { start: number; end: number }>();
  let resolve!: () => void;
  const done = new Promise<void>((r) => (resolve = r));
  const worker = new Worker(
    name,
    async (job) => {
      const start = performance.now();
      times.set(job.data.step, { start, end: performance.now() });
      if (job.data.step === n - 1) setImmediate(resolve);
      return null;
    },
    { connection, concurrency: 8 },
  );
  let node: FlowJob = { name: 'step', queueName: name, data: { step: 0 } };
  for (let step = 1; step < n; step++) node = { name: 'step', queueName: name, data: { step }, children: [node] };
  const { makespan, used } = await runFlows(name, [node], worker, done);
  const gaps = Array.from({ length: n - 1 }, (_, i) => times.get(i + 1)!.start - times.get(i)!.end);
  return {
    workload: '3-chain',
    system: label,
    ...measured(n, makespan, gaps, used),
    lost: n - times.size,
    duplicates: 0,
    notes: 'nested FlowProducer children',
  };
}

/**
 * Adds `flows` at once with a FlowProducer, measures until `done`, then closes `worker` and removes
 * the queue; `started` is on the `performance.now()` clock.
 */
async function runFlows(name: string, flows: FlowJob[], worker: Worker, done: Promise<void>) {
  const usage = meter();
  const t0 = performance.now();
  const producer = new FlowProducer({ connection });
  await Promise.all(flows.map((flow) => producer.add(flow)));
  await done;
  const makespan = performance.now() - t0;
  const used = usage.stop();
  await worker.close();
  await producer.close();
  const queue = new Queue(name, { connection });
  await queue.obliterate({ force: true });
  await queue.close();
  return { makespan, used, started: t0 };
}

/** Fan-out/fan-in: a FlowProducer parent with `width` children; the parent runs once all are done. */
export async function fanOut(width: number, label: string): Promise<Result> {
  const name = `bench-fanout-${Date.now()}`;
  const seen = new Map<string, number>();
  const starts: number[] = [];
  let resolve!: () => void;
  const done = new Promise<void>((r) => (resolve = r));
  const submitted = Date.now();
  const worker = new Worker(
    name,
    async (job) => {
      starts.push(Date.now() - submitted);
      seen.set(job.name + (job.data.i ?? ''), (seen.get(job.name + (job.data.i ?? '')) ?? 0) + 1);
      if (job.name === 'join') setImmediate(resolve);
      return null;
    },
    { connection, concurrency: 64 },
  );
  const { makespan, used } = await runFlows(name, [{ name: 'join', queueName: name, data: {}, children: Array.from({ length: width }, (_, i) => ({ name: 'w', queueName: name, data: { i } })) }], worker, done);
  return {
    workload: '4-fan-out-in',
    system: label,
    ...measured(width + 1, makespan, starts, used),
    ...lostAndDuplicates(seen, width + 1),
    notes: 'FlowProducer parent with the children, 64 concurrent in one worker',
  };
}

/**
 * Workload 6: `flows` FlowProducer trees on one queue, added at once, each a parent with `perFlow`
 * no-op children; a tree's parent runs once its children are done, which is the flow's end.
 */
export async function manyFlows(flows: number, perFlow: number, label: string): Promise<ManyFlowsResult> {
  const name = `bench-many-flows-${Date.now()}`;
  const seen = new Map<string, number>();
  const starts: number[] = [];
  const ends = new Map<number, number>();
  let resolve!: () => void;
  const done = new Promise<void>((r) => (resolve = r));
  const submitted = Date.now();
  const worker = new Worker(
    name,
    async (job) => {
      if (job.name === 'flow-end') {
        ends.set(job.data.flow, performance.now());
        if (ends.size === flows) setImmediate(resolve);
        return null;
      }
      starts.push(Date.now() - submitted);
      const task = `${job.data.flow}/${job.data.i}`;
      seen.set(task, (seen.get(task) ?? 0) + 1);
      return null;
    },
    { connection, concurrency: 64 },
  );
  const trees = Array.from({ length: flows }, (_, flow) => ({ name: 'flow-end', queueName: name, data: { flow }, children: Array.from({ length: perFlow }, (_, i) => ({ name: 'noop', queueName: name, data: { flow, i } })) }));
  const { used, started } = await runFlows(name, trees, worker, done);
  const endedAt = Math.max(...ends.values());
  return {
    workload: '6-many-flows',
    system: label,
    ...measured(flows * perFlow, endedAt - started, starts, used),
    ...lostAndDuplicates(seen, flows * perFlow),
    ...manyFlowsFigures(perFlow, started, [...ends.values()]),
    notes: 'FlowProducer trees (a parent with the children) added at once, 64 concurrent in one worker; p50/p99: submission to task start',
  };
}

/**
 * Limits accuracy with BullMQ's own limiter: 100 jobs per second, worker concurrency 5, 20 ms jobs
 * offered at once. BullMQ has no burst setting; the same violation rules as Taskstream's apply.
 */
export async function limits(n: number, label: string): Promise<Result & { violations: number }> {
  const name = `bench-limits-${Date.now()}`;
  const queue = new Queue(name, { connection });
  const starts: number[] = [];
  const ends: number[] = [];
  let resolve!: () => void;
  const done = new Promise<void>((r) => (resolve = r));
  const usage = meter();
  const t0 = performance.now();
  const worker = new Worker(
    name,
    async () => {
      starts.push(Date.now());
      await new Promise((r) => setTimeout(r, 20));
      ends.push(Date.now());
      if (ends.length === n) setImmediate(resolve);
      return null;
    },
    { connection, concurrency: 5, limiter: { max: 100, duration: 1000 } },
  );
  await queue.addBulk(Array.from({ length: n }, (_, i) => ({ name: 'limited', data: { i }, opts: { removeOnComplete: true } })));
  await done;
  const makespan = performance.now() - t0;
  const { cpu_s, peak_rss_mb } = usage.stop();
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  const { maxWindow, maxConcurrency } = limitStats(starts, ends);
  const violations = (maxWindow > 110 ? 1 : 0) + (maxConcurrency > 5 ? 1 : 0);
  const achieved = n / ((Math.max(...starts) - Math.min(...starts)) / 1000);
  return {
    workload: '5-limits',
    system: label,
    tasks: n,
    tasks_per_sec: n / (makespan / 1000),
    p50_ms: Number.NaN,
    p99_ms: Number.NaN,
    makespan_ms: makespan,
    cpu_s_per_1k: (cpu_s / n) * 1000,
    peak_rss_mb,
    lost: n - ends.length,
    duplicates: 0,
    violations,
    notes: `BullMQ limiter max 100 per 1000 ms, concurrency 5: achieved ${achieved.toFixed(1)}/s, most started in 1 s ${maxWindow} (limit 110), max concurrency ${maxConcurrency} (limit 5), violations ${violations}`,
  };
}
