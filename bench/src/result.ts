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
