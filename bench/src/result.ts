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
