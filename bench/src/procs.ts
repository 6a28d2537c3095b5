import { readFileSync } from 'node:fs';

const TICKS = 100;

/** CPU seconds (user + system) a process has used so far, from /proc. */
export function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS;
  } catch {
    return 0;
  }
}

export function rssMb(pid: number): number {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** Samples the RSS of named processes while a workload runs and totals their CPU over it. */
export class ProcessMeter {
  private readonly startCpu = new Map<string, number>();
  private readonly peak = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly pids: Map<string, number>) {
    for (const [name, pid] of pids) this.startCpu.set(name, cpuSeconds(pid));
    this.timer = setInterval(() => this.sample(), 200);
  }

  private sample() {
    for (const [name, pid] of this.pids) this.peak.set(name, Math.max(this.peak.get(name) ?? 0, rssMb(pid)));
  }

  stop(): { cpu_s: number; cpu_s_by_process: Record<string, number>; peak_rss_mb: Record<string, number> } {
    clearInterval(this.timer);
    this.sample();
    let cpu = 0;
    const byProcess: Record<string, number> = {};
    for (const [name, pid] of this.pids) {
      const used = cpuSeconds(pid) - (this.startCpu.get(name) ?? 0);
      byProcess[name] = Math.round(used * 100) / 100;
      cpu += used;
    }
    return { cpu_s: cpu, cpu_s_by_process: byProcess, peak_rss_mb: Object.fromEntries([...this.peak].map(([k, v]) => [k, Math.round(v)])) };
  }
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
