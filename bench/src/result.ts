import type { ServiceMemory } from './memory.js';
import { percentile } from './procs.js';

/** A connection's messages: `in` what the client sent (publishes, acknowledgements, requests), `out` what it was sent (deliveries, PubAcks, replies). */
export interface MessageCounts {
  in: number;
  out: number;
}

/** Each connection's messages between two readings, per unit (task or flow), by connection name; the bench's own left out. */
export function messagesPer(before: Record<string, MessageCounts>, after: Record<string, MessageCounts>, units: number): Record<string, MessageCounts> {
  const round = (n: number) => Math.round((n / units) * 100) / 100;
  return Object.fromEntries(
    Object.entries(after)
      .filter(([name]) => name !== 'bench')
      .map(([name, counts]) => [name, { in: round(counts.in - (before[name]?.in ?? 0)), out: round(counts.out - (before[name]?.out ?? 0)) }] as const),
  );
}

export interface Result {
  workload: string;
  system: string;
  tasks: number;
  tasks_per_sec: number;
  p50_ms: number;
  p99_ms: number;
  makespan_ms: number;
  cpu_s_per_1k: number;
  peak_rss_mb: Record<string, number>;
  cpu_s_by_process?: Record<string, number>;
  /** RSS per process a few seconds after the workload ended: does memory fall back? */
  rss_after_mb?: Record<string, number>;
  /** Messages each stream (KV buckets included) stored per task over the workload: where the broker's work goes. */
  stored_per_task?: Record<string, number>;
  /** Messages each service exchanged with nats-server per task (`in`: it sent; `out`: it was sent), from the server's connection statistics. */
  messages_per_task?: Record<string, MessageCounts>;
  /** Each service's live heap before and after, and peak RSS, against the memory targets. */
  memory?: ServiceMemory[];
  lost: number;
  duplicates: number;
  notes?: string;
}

/** Most starts in any one-second window, and most tasks running at once. */
export function limitStats(starts: number[], ends: number[]): { maxWindow: number; maxConcurrency: number } {
  const sorted = [...starts].sort((a, b) => a - b);
  let maxWindow = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (sorted[i]! - sorted[j]! >= 1000) j++;
    maxWindow = Math.max(maxWindow, i - j + 1);
  }
  const points = [...starts.map((t) => [t, 1] as const), ...ends.map((t) => [t, -1] as const)].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let running = 0;
  let maxConcurrency = 0;
  for (const [, d] of points) maxConcurrency = Math.max(maxConcurrency, (running += d));
  return { maxWindow, maxConcurrency };
}

/** The fields every throughput and latency result shares, from what one workload run measured. */
export function measured(tasks: number, makespanMs: number, latencies: number[], usage: { cpu_s: number; peak_rss_mb: Record<string, number>; cpu_s_by_process?: Record<string, number> }) {
  return {
    tasks,
    tasks_per_sec: tasks / (makespanMs / 1000),
    p50_ms: percentile(latencies, 50),
    p99_ms: percentile(latencies, 99),
    makespan_ms: makespanMs,
    cpu_s_per_1k: (usage.cpu_s / tasks) * 1000,
    peak_rss_mb: usage.peak_rss_mb,
    ...(usage.cpu_s_by_process && { cpu_s_by_process: usage.cpu_s_by_process }),
  };
}

/** Lost (never ran) and duplicated (ran more than once) tasks, from how many times each task ran. */
export function lostAndDuplicates(runs: Map<unknown, number>, expected: number): { lost: number; duplicates: number } {
  return { lost: expected - runs.size, duplicates: [...runs.values()].filter((n) => n > 1).length };
}

/** Workload 6: many flows submitted at once; each flow's makespan is its submission to its end. */
export interface ManyFlowsResult extends Result {
  flows: number;
  tasks_per_flow: number;
  flow_makespan_p50_ms: number;
  flow_makespan_max_ms: number;
  /** Slowest flow's makespan over the fastest's: 1 when every flow is served alike. */
  flow_makespan_spread: number;
}

/** Workload 6's own figures, from when the flows were submitted and when each ended (on one clock). */
export function manyFlowsFigures(tasksPerFlow: number, submittedAt: number, endedAt: number[]): Pick<ManyFlowsResult, 'flows' | 'tasks_per_flow' | 'flow_makespan_p50_ms' | 'flow_makespan_max_ms' | 'flow_makespan_spread'> {
  return { flows: endedAt.length, tasks_per_flow: tasksPerFlow, ...flowMakespans(endedAt.map((end) => end - submittedAt)) };
}

export function flowMakespans(makespansMs: number[]): Pick<ManyFlowsResult, 'flow_makespan_p50_ms' | 'flow_makespan_max_ms' | 'flow_makespan_spread'> {
  if (makespansMs.length === 0) return { flow_makespan_p50_ms: Number.NaN, flow_makespan_max_ms: Number.NaN, flow_makespan_spread: Number.NaN };
  const max = Math.max(...makespansMs);
  return { flow_makespan_p50_ms: percentile(makespansMs, 50), flow_makespan_max_ms: max, flow_makespan_spread: max / Math.min(...makespansMs) };
}

export function manyFlowsMarkdown(results: ManyFlowsResult[]): string[] {
  if (results.length === 0) return [];
  const { flows, tasks_per_flow } = results[0]!;
  const ms = (n: number) => (Number.isFinite(n) ? n.toFixed(0) : '-');
  return [
    `Workload 6 (${flows} flows of ${tasks_per_flow} independent no-ops submitted at once on one queue; makespan: a flow's submission to its end):`,
    '',
    '| system | tasks | tasks/s | flow makespan p50 ms | max ms | spread (max/min) | lost | dup |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...results.map((r) => `| ${r.system} | ${r.tasks} | ${ms(r.tasks_per_sec)} | ${ms(r.flow_makespan_p50_ms)} | ${ms(r.flow_makespan_max_ms)} | ${r.flow_makespan_spread.toFixed(2)} | ${r.lost} | ${r.duplicates} |`),
    '',
  ];
}
