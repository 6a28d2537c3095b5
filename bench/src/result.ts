import { percentile } from './procs.js';

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
