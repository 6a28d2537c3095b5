import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { fold } from '@taskstream/domain';
import { connectNats, FlowRetention, jetstream, jetstreamManager, topology, type NatsConnection } from '@taskstream/nats';
import { freePort, NatsServer, waitFor } from '@taskstream/testing';
import { liveHeapMb, MEMORY_TARGETS, memoryVerdicts, type ServiceMemory } from './memory.js';
import { percentile, ProcessMeter, rssMb } from './procs.js';
import { limitStats, lostAndDuplicates, manyFlowsFigures, measured, messagesPer, type ManyFlowsResult, type MessageCounts, type Result } from './result.js';

const ROOT = join(import.meta.dirname, '..', '..');
// Built beside main.js (bench/package.json): preloaded into every service so the bench can read its live heap.
const HEAP_PROBE = pathToFileURL(join(import.meta.dirname, 'heap-probe.js')).href;
const TERMINAL = ['succeeded', 'failed', 'cancelled'];

type Events = Array<{ seq: number; event: any }>;

/** Terminal flow events as they are published, so a flow's end is seen then rather than when next polled. */
class FlowEndWatch {
  private readonly ends = new Map<string, { status: string; at: number }>();
  private readonly waiting = new Map<string, (end: { status: string; at: number }) => void>();
  private readonly subscription: ReturnType<NatsConnection['subscribe']>;

  constructor(nc: NatsConnection) {
    this.subscription = nc.subscribe('ts.evt.*.*.flow.*', { callback: (_e, msg) => this.record(msg.subject) });
  }

  private record(subject: string) {
    const [, , , flowId, , status] = subject.split('.');
    if (!TERMINAL.includes(status!)) return;
    const end = { status: status!, at: performance.now() };
    this.ends.set(flowId!, end);
    this.waiting.get(flowId!)?.(end);
  }

  /** The flow's end if already seen. */
  known(flowId: string): { status: string; at: number } | undefined {
    return this.ends.get(flowId);
  }

  end(flowId: string): Promise<{ status: string; at: number }> {
    const known = this.ends.get(flowId);
    return known ? Promise.resolve(known) : new Promise((resolve) => this.waiting.set(flowId, resolve));
  }

  close(): void {
    this.subscription.unsubscribe();
  }
}

/** Taskstream as a user deploys it: nats-server with file storage and each service its own process. */
export class TaskstreamSystem {
  private constructor(
    readonly nats: NatsServer,
    readonly nc: NatsConnection,
    readonly gateway: string,
    private readonly children: Map<string, ChildProcess>,
    private readonly profileDir: string | undefined,
    private readonly monitorPort: number,
  ) {}

  /**
   * Every service runs with `--expose-gc` and the heap probe, over an IPC channel (`liveHeapsMb`).
   * With `profileDir`, every service runs under `node --cpu-prof` and writes `<name>.cpuprofile` there on stop.
   * `nodeOptions` go on every service's node command line (V8 options, for a comparison).
   */
  static async start(options: { profileDir?: string; nodeOptions?: readonly string[] } = {}): Promise<TaskstreamSystem> {
    // One flow of 10,000 tasks carries a definition of about 2 MiB in its flow.submitted event and
    // view: more than nats-server's default 1 MiB payload (docs/operations.md).
    const config = join(mkdtempSync(join(tmpdir(), 'taskstream-bench-')), 'nats.conf');
    writeFileSync(config, 'max_payload: 8388608\n');
    // The monitoring port gives each connection's message counts (messagesByConnection).
    const monitorPort = await freePort();
    const nats = await NatsServer.start({ args: ['-c', config, '-m', String(monitorPort)] });
    const port = await freePort();
    const env = { ...process.env, TASKSTREAM_NATS_URL: nats.url, TASKSTREAM_LOG_LEVEL: 'error', TASKSTREAM_AUTH: 'none', TASKSTREAM_RATE_LIMIT: '0', TASKSTREAM_HTTP_ALLOW: '127.0.0.0/8,::1', TASKSTREAM_BODY_LIMIT: String(8 * 1024 * 1024) };
    const children = new Map<string, ChildProcess>();
    const profiling = (name: string) => (options.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${options.profileDir}`, `--cpu-prof-name=${name}.cpuprofile`] : []);
    const start = (name: string, service: string, extra: Record<string, string> = {}) =>
      children.set(name, spawn(process.execPath, ['--expose-gc', `--import=${HEAP_PROBE}`, ...profiling(name), ...(options.nodeOptions ?? []), join(ROOT, 'services', service, 'dist', 'main.js')], { env: { ...env, ...extra }, stdio: ['ignore', 'ignore', 'ignore', 'ipc'] }));
    start('gateway', 'gateway', { TASKSTREAM_PORT: String(port) });
    start('planner', 'planner');
    start('dispatcher', 'dispatcher');
    start('executor', 'executor', { TASKSTREAM_QUEUE: 'default', TASKSTREAM_CONCURRENCY: '64' });
    start('executor-limited', 'executor', { TASKSTREAM_QUEUE: 'limited', TASKSTREAM_CONCURRENCY: '64' });
    start('projector', 'projector');
    const gateway = `http://127.0.0.1:${port}`;
    await waitFor('the gateway', async () => ((await fetch(`${gateway}/readyz`).catch(() => undefined))?.ok ? true : undefined), 30_000);
    const nc = await connectNats({ servers: nats.url, name: 'bench' });
    return new TaskstreamSystem(nats, nc, gateway, children, options.profileDir, monitorPort);
  }

  pids(): Map<string, number> {
    const pids = new Map<string, number>([['nats-server', this.nats.pid!]]);
    for (const [name, child] of this.children) pids.set(name, child.pid!);
    return pids;
  }

  /**
   * Submits a flow and resolves when its terminal event is published (seen by subscription), with
   * its history and what every process used until the end (reading the history is not measured).
   */
  async run(flow: unknown): Promise<Awaited<ReturnType<TaskstreamSystem['runToEnd']>> & { events: Events }> {
    const ran = await this.runToEnd(flow);
    return { ...ran, events: await this.history(ran.flowId) };
  }

  /** `run` without reading the history; `endedAt` is the end on the `performance.now()` clock. */
  async runToEnd(flow: unknown): Promise<{ flowId: string; makespanMs: number; endedAt: number; usage: ReturnType<ProcessMeter['stop']> }> {
    const watch = new FlowEndWatch(this.nc);
    try {
      const meter = new ProcessMeter(this.pids());
      const started = performance.now();
      const flowId = await this.submit(flow);
      const endedAt = await this.succeededAt(flowId, watch);
      return { flowId, makespanMs: endedAt - started, endedAt, usage: meter.stop() };
    } finally {
      watch.close();
    }
  }

  /** Posts a flow to the gateway's REST API; its id. */
  async submit(flow: unknown): Promise<string> {
    const response = await fetch(`${this.gateway}/api/v1/flows`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(flow) });
    if (response.status !== 202) throw new Error(`submission failed: ${response.status} ${await response.text()}`);
    return ((await response.json()) as { flow_id: string }).flow_id;
  }

  /**
   * When the flow ended (`performance.now()`), throwing unless it succeeded. Its view is polled every
   * 10 s too, in case `watch` missed the terminal event (a core NATS subscription may drop messages).
   */
  async succeededAt(flowId: string, watch: FlowEndWatch): Promise<number> {
    const polled = waitFor(`flow ${flowId} to end`, async () => {
      const seen = watch.known(flowId);
      if (seen) return seen;
      const view = (await (await fetch(`${this.gateway}/api/v1/flows/${flowId}`)).json()) as { status: string };
      return TERMINAL.includes(view.status) ? { status: view.status, at: performance.now() } : undefined;
    }, 600_000, 10_000);
    const { status, at } = await Promise.race([watch.end(flowId), polled]);
    if (status !== 'succeeded') throw new Error(`flow ${flowId} ${status}`);
    return at;
  }

  async history(flowId: string): Promise<Events> {
    return ((await (await fetch(`${this.gateway}/api/v1/flows/${flowId}/events`)).json()) as { events: Events }).events;
  }

  /** Each service's live heap in MB, right after a forced full collection in it. */
  async liveHeapsMb(): Promise<Record<string, number>> {
    return Object.fromEntries(await Promise.all([...this.children].map(async ([name, child]) => [name, await liveHeapMb(child)] as const)));
  }

  /**
   * Waits until the settling time after `endedAt` (`performance.now()`), then says how each service's
   * memory compares with the targets; with every process's RSS then.
   */
  async settledMemory(endedAt: number, idleHeapMb: Record<string, number>, peakRssMb: Record<string, number>): Promise<{ memory: ServiceMemory[]; rss_after_mb: Record<string, number> }> {
    await sleep(Math.max(0, endedAt + MEMORY_TARGETS.settleMs - performance.now()));
    const rssAfter = Object.fromEntries([...this.pids()].map(([name, pid]) => [name, Math.round(rssMb(pid))]));
    return { memory: memoryVerdicts(idleHeapMb, peakRssMb, await this.liveHeapsMb()), rss_after_mb: rssAfter };
  }

  /** Messages each connection has exchanged with nats-server so far, by connection name (`taskstream-` left off). */
  async messagesByConnection(): Promise<Record<string, MessageCounts>> {
    const { connections } = (await (await fetch(`http://127.0.0.1:${this.monitorPort}/connz?limit=1024`)).json()) as { connections: Array<{ name?: string; in_msgs: number; out_msgs: number }> };
    const out: Record<string, MessageCounts> = {};
    for (const c of connections) {
      const name = (c.name ?? 'unnamed').replace(/^taskstream-/, '');
      const counts = (out[name] ??= { in: 0, out: 0 });
      counts.in += c.in_msgs;
      counts.out += c.out_msgs;
    }
    return out;
  }

  /** How many messages each stream (KV buckets included) has stored so far: its last sequence. */
  async storedSequences(): Promise<Record<string, number>> {
    const jsm = await jetstreamManager(this.nc);
    const out: Record<string, number> = {};
    for await (const stream of jsm.streams.list()) out[stream.config.name] = stream.state.last_seq;
    return out;
  }

  async putQueue(name: string, policy: unknown): Promise<void> {
    await fetch(`${this.gateway}/api/v1/queues/${name}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(policy) });
  }

  async stop(): Promise<void> {
    await this.nc.close();
    // A profile is written only when the process exits by itself, so profiled services get SIGTERM.
    if (this.profileDir) await Promise.all([...this.children.values()].map((child) => exited(child, 20_000)));
    for (const child of this.children.values()) child.kill('SIGKILL');
    await this.nats.stop();
  }
}

async function exited(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exit = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  await Promise.race([exit, new Promise((resolve) => setTimeout(resolve, timeoutMs))]);
}

function taskCounts(events: Events, tasks: number) {
  const succeeded = new Map<string, number>();
  for (const { event } of events) if (event.type === 'task.succeeded') succeeded.set(event.task_id, (succeeded.get(event.task_id) ?? 0) + 1);
  return lostAndDuplicates(succeeded, tasks);
}

/** From the flow's submission (its first event) to each task's start, by event times. */
function startLatencies(events: Events): number[] {
  const submitted = Date.parse(events[0]!.event.time);
  return events.filter((e) => e.event.type === 'task.started').map((e) => Date.parse(e.event.time) - submitted);
}

function noops(n: number, prefix: string) {
  return Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}`, executor: 'noop' }));
}

/** Workload 1, one flow of `n` independent no-ops; with each service's memory against the targets. */
export async function independent(system: TaskstreamSystem, n: number): Promise<Result> {
  const idleHeapMb = await system.liveHeapsMb();
  const storedBefore = await system.storedSequences();
  const messagesBefore = await system.messagesByConnection();
  const { flowId, makespanMs, endedAt, usage } = await system.runToEnd({ tasks: noops(n, 't') });
  const settled = await system.settledMemory(endedAt, idleHeapMb, usage.peak_rss_mb);
  const stored = storedPerTask(storedBefore, await system.storedSequences(), n);
  const messages = messagesPer(messagesBefore, await system.messagesByConnection(), n);
  const events = await system.history(flowId);
  return {
    workload: '1-independent',
    system: 'taskstream',
    ...measured(n, makespanMs, startLatencies(events), usage),
    ...settled,
    stored_per_task: stored,
    messages_per_task: messages,
    ...taskCounts(events, n),
    notes: 'p50/p99: submission to task start',
  };
}

/** Messages each stream stored per task between two readings of their sequences (streams that stored none left out). */
function storedPerTask(before: Record<string, number>, after: Record<string, number>, tasks: number): Record<string, number> {
  return Object.fromEntries(
    Object.entries(after)
      .map(([stream, seq]) => [stream, Math.round(((seq - (before[stream] ?? 0)) / tasks) * 100) / 100] as const)
      .filter(([, perTask]) => perTask > 0),
  );
}

/**
 * Workload 6: `flows` flows of `perFlow` independent no-ops, submitted at once over REST on one
 * queue; throughput over all tasks, each flow's makespan, and each service's memory.
 */
export async function manyFlows(system: TaskstreamSystem, flows: number, perFlow: number, workload = '6-many-flows'): Promise<ManyFlowsResult> {
  const idleHeapMb = await system.liveHeapsMb();
  const watch = new FlowEndWatch(system.nc);
  const meter = new ProcessMeter(system.pids());
  const started = performance.now();
  const flowIds = await Promise.all(Array.from({ length: flows }, () => system.submit({ tasks: noops(perFlow, 't') })));
  const ends = await Promise.all(flowIds.map((flowId) => system.succeededAt(flowId, watch)));
  const usage = meter.stop();
  watch.close();
  const endedAt = Math.max(...ends);
  const settled = await system.settledMemory(endedAt, idleHeapMb, usage.peak_rss_mb);
  const histories = await Promise.all(flowIds.map((flowId) => system.history(flowId)));
  const counts = histories.map((events) => taskCounts(events, perFlow));
  return {
    workload,
    system: 'taskstream',
    ...measured(flows * perFlow, endedAt - started, histories.flatMap(startLatencies), usage),
    ...settled,
    lost: counts.reduce((sum, c) => sum + c.lost, 0),
    duplicates: counts.reduce((sum, c) => sum + c.duplicates, 0),
    ...manyFlowsFigures(perFlow, started, ends),
    notes: 'p50/p99: submission to task start',
  };
}

export async function chain(system: TaskstreamSystem, n: number): Promise<Result> {
  const tasks = Array.from({ length: n }, (_, i) => ({ id: `s${i}`, executor: 'noop', ...(i > 0 && { depends_on: [`s${i - 1}`] }) }));
  const { makespanMs, events, usage } = await system.run({ tasks });
  const startOf = new Map<string, number>();
  const endOf = new Map<string, number>();
  for (const { event } of events) {
    if (event.type === 'task.started') startOf.set(event.task_id, Date.parse(event.time));
    if (event.type === 'task.succeeded') endOf.set(event.task_id, Date.parse(event.time));
  }
  const gaps = Array.from({ length: n - 1 }, (_, i) => startOf.get(`s${i + 1}`)! - endOf.get(`s${i}`)!);
  return {
    workload: '3-chain',
    system: 'taskstream',
    ...measured(n, makespanMs, gaps, usage),
    ...taskCounts(events, n),
    notes: 'p50/p99: step-to-step overhead (start of step i - end of step i-1, event times)',
  };
}

/** When each task was dispatched (admitted): the dispatch its work item records, carried by its first start. */
function dispatchTimes(events: Events): number[] {
  // The fold records each task's dispatch from its first start.
  return Object.values(fold(events.map((e) => e.event))?.tasks ?? {}).flatMap((task) => (task.dispatched_at === undefined ? [] : [Date.parse(task.dispatched_at)]));
}

/** Limits accuracy: rate 100/s, burst 10, concurrency 5, offered at once (well over 2x the rate). */
export async function limits(system: TaskstreamSystem, n: number): Promise<Result & { violations: number; achieved_per_sec: number; max_concurrency: number }> {
  await system.putQueue('limited', { concurrency: 5, rate_limit: { per_second: 100, max_burst: 10 } });
  const { makespanMs, events, usage } = await system.run({ queue: 'limited', tasks: Array.from({ length: n }, (_, i) => ({ id: `l${i}`, executor: 'delay', config: { ms: 20 } })) });
  const starts = events.filter((e) => e.event.type === 'task.started').map((e) => Date.parse(e.event.time)).sort((a, b) => a - b);
  const ends = events.filter((e) => e.event.type === 'task.succeeded').map((e) => Date.parse(e.event.time));
  const { maxConcurrency } = limitStats(starts, ends);
  const admittedWindow = limitStats(dispatchTimes(events), []).maxWindow;
  const violations = (admittedWindow > 110 ? 1 : 0) + (maxConcurrency > 5 ? 1 : 0);
  const achieved = n / ((starts.at(-1)! - starts[0]!) / 1000);
  return {
    workload: '5-limits',
    system: 'taskstream',
    tasks: n,
    tasks_per_sec: n / (makespanMs / 1000),
    p50_ms: Number.NaN,
    p99_ms: Number.NaN,
    makespan_ms: makespanMs,
    cpu_s_per_1k: (usage.cpu_s / n) * 1000,
    peak_rss_mb: usage.peak_rss_mb,
    cpu_s_by_process: usage.cpu_s_by_process,
    ...taskCounts(events, n),
    violations,
    achieved_per_sec: achieved,
    max_concurrency: maxConcurrency,
    notes: `achieved ${achieved.toFixed(1)}/s (limit 100/s; 20 ms tasks at concurrency 5 cap it at 250/s), most admitted in 1 s ${admittedWindow} (limit 110), max concurrency ${maxConcurrency} (limit 5), violations ${violations}`,
  };
}

/** Fan-out/fan-in: `width` independent no-ops and one task that depends on all of them. */
export async function fanOut(system: TaskstreamSystem, width: number): Promise<Result> {
  const tasks = [...noops(width, 'w'), { id: 'join', executor: 'noop', depends_on: Array.from({ length: width }, (_, i) => `w${i}`) }];
  const { makespanMs, events, usage } = await system.run({ tasks });
  return {
    workload: '4-fan-out-in',
    system: 'taskstream',
    ...measured(width + 1, makespanMs, startLatencies(events), usage),
    ...taskCounts(events, width + 1),
    notes: 'p50/p99: submission to task start',
  };
}

export interface OpenLoopStep {
  rate: number;
  flows: number;
  sustained: boolean;
  /** Time from the last scheduled submission to the last flow's end: a growing backlog shows here. */
  drain_ms: number;
  p50_ms: number;
  p99_ms: number;
  rejected: number;
  /** Messages each stream stored per flow accepted (KV buckets included), read once the views have settled. */
  stored_per_flow: Record<string, number>;
  /** Messages each service exchanged with nats-server per flow accepted, read at the same time. */
  messages_per_flow: Record<string, MessageCounts>;
}

/**
 * Single-task flows submitted over REST open-loop: each at its scheduled time whatever the answers
 * to earlier ones. Schedule-to-start is the task.started event time minus the scheduled time. A
 * rate is sustained when the last flow ends within a second of the last submission.
 */
export async function openLoop(system: TaskstreamSystem, rate: number, flows: number): Promise<OpenLoopStep & { usage: ReturnType<ProcessMeter['stop']> }> {
  const scheduled = new Map<string, number>();
  const startedAt = new Map<string, number>();
  let ended = 0;
  let lastEnd = 0;
  const startSub = system.nc.subscribe('ts.evt.*.*.task.started', {
    callback: (_e, msg) => {
      const event = msg.json<{ flow_id: string; time: string }>();
      if (!startedAt.has(event.flow_id)) startedAt.set(event.flow_id, Date.parse(event.time));
    },
  });
  // Nothing else runs meanwhile: every flow that ends is one of these.
  const endSub = system.nc.subscribe('ts.evt.*.*.flow.succeeded', {
    callback: () => {
      ended++;
      lastEnd = Date.now();
    },
  });
  const storedBefore = await system.storedSequences();
  const messagesBefore = await system.messagesByConnection();
  const meter = new ProcessMeter(system.pids());
  const t0 = Date.now() + 50;
  let rejected = 0;
  const submissions: Array<Promise<void>> = [];
  for (let i = 0; i < flows; i++) {
    const at = t0 + (i * 1000) / rate;
    const wait = at - Date.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    submissions.push(
      fetch(`${system.gateway}/api/v1/flows`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tasks: [{ id: 'only', executor: 'noop' }] }) })
        .then(async (response) => {
          if (response.status !== 202) {
            rejected++;
            return;
          }
          scheduled.set(((await response.json()) as { flow_id: string }).flow_id, at);
        })
        .catch(() => void rejected++),
    );
  }
  const lastScheduled = t0 + ((flows - 1) * 1000) / rate;
  await Promise.all(submissions);
  await waitFor(`${flows} open-loop flows at ${rate}/s to end`, () => (ended >= flows - rejected ? true : undefined), 120_000, 20);
  const usage = meter.stop();
  startSub.unsubscribe();
  endSub.unsubscribe();
  const latencies = [...scheduled].map(([id, at]) => (startedAt.get(id) ?? Number.NaN) - at).filter(Number.isFinite);
  const drain = lastEnd - lastScheduled;
  // The projector writes a flow's last view after its end is stored.
  await new Promise((r) => setTimeout(r, 1_000));
  const accepted = flows - rejected;
  const stored = accepted > 0 ? storedPerTask(storedBefore, await system.storedSequences(), accepted) : {};
  const messages = accepted > 0 ? messagesPer(messagesBefore, await system.messagesByConnection(), accepted) : {};
  return { rate, flows, sustained: drain <= 1000 && rejected === 0, drain_ms: drain, p50_ms: percentile(latencies, 50), p99_ms: percentile(latencies, 99), rejected, stored_per_flow: stored, messages_per_flow: messages, usage };
}

/**
 * A small flow's latency while a big one runs on the same queue: the makespan of a 2-task flow
 * alone (median of five) against the same flow submitted 0.6 s after a `big`-task flow, and how
 * many of the big flow's tasks had ended when the small one did (in stream order).
 */
export async function smallBesideBig(system: TaskstreamSystem, big: number): Promise<Result & { baseline_ms: number; ratio: number; big_tasks: number; big_ended_before: number }> {
  const small = () => ({ tasks: [{ id: 'a', executor: 'noop' }, { id: 'b', executor: 'noop' }] });
  const alone: number[] = [];
  for (let i = 0; i < 5; i++) alone.push((await system.run(small())).makespanMs);
  const baseline = percentile(alone, 50);
  const bigRun = system.run({ tasks: noops(big, 'big') });
  await sleep(600);
  const beside = await system.run(small());
  const { events: bigEvents } = await bigRun;
  const smallEnd = beside.events.find((e) => e.event.type === 'flow.succeeded')!.seq;
  const ended = bigEvents.filter((e) => ['task.succeeded', 'task.failed', 'task.timed_out', 'task.cancelled'].includes(e.event.type) && e.seq < smallEnd).length;
  const ratio = beside.makespanMs / baseline;
  return {
    workload: '7-small-beside-big',
    system: 'taskstream',
    ...measured(2, beside.makespanMs, alone, beside.usage),
    ...taskCounts(beside.events, 2),
    baseline_ms: baseline,
    ratio,
    big_tasks: big,
    big_ended_before: ended,
    notes: `2-task flow alone ${baseline.toFixed(0)} ms (median of 5), 0.6 s after a ${big}-task flow on the same queue ${beside.makespanMs.toFixed(0)} ms: x${ratio.toFixed(1)}; ${ended} of the big flow's ${big} tasks had ended when it finished; p50/p99: the small flow alone`,
  };
}

export interface RetentionResult {
  flows: number;
  /** Single-task flows submitted over REST 64 at a time, from the first submission to the last end. */
  run_flows_per_sec: number;
  /** Every ended flow, removed by flow retention's sweeps over all partitions. */
  removed: number;
  removed_per_sec: number;
  /** CPU of nats-server and the sweeping process per 1,000 flows removed. */
  cpu_s_per_1k_removed: number;
  cpu_s_by_process: Record<string, number>;
  /** removed_per_sec / run_flows_per_sec: above 1, retention keeps up with the flows this system can run. */
  ratio: number;
}

/**
 * Flow retention against the rate flows run: `flows` single-task flows, then the projector's
 * sweep (FlowRetention, the same code, run in this process with a retention of 1 ms) over every
 * partition until nothing is left to remove. Removal has to outpace what the system can run, or
 * retention falls behind under sustained load.
 */
export async function retention(system: TaskstreamSystem, flows: number): Promise<RetentionResult> {
  let ended = 0;
  const endSub = system.nc.subscribe('ts.evt.*.*.flow.succeeded', { callback: () => void ended++ });
  const started = Date.now();
  const submit = () =>
    fetch(`${system.gateway}/api/v1/flows`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tasks: [{ id: 'only', executor: 'noop' }] }) }).then((r) => {
      if (r.status !== 202) throw new Error(`submission refused: ${r.status}`);
    });
  for (let sent = 0; sent < flows; sent += 64) await Promise.all(Array.from({ length: Math.min(64, flows - sent) }, submit));
  await waitFor(`${flows} flows to end`, () => (ended >= flows ? true : undefined), 120_000, 20);
  const runSecs = (Date.now() - started) / 1000;
  endSub.unsubscribe();

  const topo = topology();
  const sweeper = await FlowRetention.open(jetstream(system.nc), topo, 1);
  const meter = new ProcessMeter(new Map([['nats-server', system.nats.pid!], ['sweeper', process.pid]]));
  const removing = Date.now();
  let removed = 0;
  for (let more = true; more; ) {
    more = false;
    for (let partition = 0; partition < topo.layout.partitions; partition++) {
      const swept = await sweeper.sweep(partition, Date.now() + 1_000);
      removed += swept.removed;
      more ||= swept.more;
    }
  }
  const removeSecs = (Date.now() - removing) / 1000;
  const usage = meter.stop();
  const runRate = flows / runSecs;
  const removeRate = removed / removeSecs;
  return { flows, run_flows_per_sec: runRate, removed, removed_per_sec: removeRate, cpu_s_per_1k_removed: (usage.cpu_s / removed) * 1000, cpu_s_by_process: usage.cpu_s_by_process, ratio: removeRate / runRate };
}
