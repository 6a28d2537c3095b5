/**
 * The memory targets: every service under 150 MB RSS with 10,000 tasks in flight, and its
 * live heap (what a full collection leaves) back within 20% of idle 5 s after the flows end. RSS
 * alone cannot say the second: V8 returns grown heap pages to the system lazily.
 */
export const MEMORY_TARGETS = { peakRssMb: 150, heapGrowth: 0.2, settleMs: 5_000 };

export interface ServiceMemory {
  service: string;
  idle_heap_mb: number;
  peak_rss_mb: number;
  heap_after_mb: number;
  rss_under_target: boolean;
  heap_back_to_idle: boolean;
}

const REQUEST = 'live-heap?';

/** What the bench and a service exchange messages over: a child's IPC channel, seen from either end. */
interface Channel {
  on(event: 'message', listener: (message: unknown) => void): unknown;
  off(event: 'message', listener: (message: unknown) => void): unknown;
  send?(message: unknown): unknown;
}

/** In a service (loaded by heap-probe.ts): answers each request with the heap still used after a full collection. */
export function answerHeapRequests(channel: Channel, collect: () => void, heapUsedBytes: () => number): void {
  channel.on('message', (message) => {
    if (message !== REQUEST) return;
    collect();
    channel.send?.({ live_heap_bytes: heapUsedBytes() });
  });
}

/** From the bench: a service's live heap in MB, NaN when it does not answer in time (it was started without the probe). */
export function liveHeapMb(child: Channel, timeoutMs = 10_000): Promise<number> {
  return new Promise((resolve) => {
    const finish = (mb: number) => {
      clearTimeout(timer);
      child.off('message', onMessage);
      resolve(mb);
    };
    const onMessage = (message: unknown) => {
      const bytes = (message as { live_heap_bytes?: unknown } | null)?.live_heap_bytes;
      if (typeof bytes === 'number') finish(Math.round((bytes / 2 ** 20) * 10) / 10);
    };
    const timer = setTimeout(() => finish(Number.NaN), timeoutMs);
    child.on('message', onMessage);
    child.send?.(REQUEST);
  });
}

/** Each service's figures against the targets; a figure that is missing fails its target. */
export function memoryVerdicts(idleHeapMb: Record<string, number>, peakRssMb: Record<string, number>, heapAfterMb: Record<string, number>): ServiceMemory[] {
  return Object.entries(idleHeapMb).map(([service, idle]) => {
    const peak = peakRssMb[service] ?? Number.NaN;
    const after = heapAfterMb[service] ?? Number.NaN;
    return {
      service,
      idle_heap_mb: idle,
      peak_rss_mb: peak,
      heap_after_mb: after,
      rss_under_target: peak < MEMORY_TARGETS.peakRssMb,
      heap_back_to_idle: after <= idle * (1 + MEMORY_TARGETS.heapGrowth),
    };
  });
}

export function memoryMarkdown(entries: Array<{ workload: string; memory: ServiceMemory[] }>): string[] {
  if (entries.length === 0) return [];
  const verdict = (met: boolean) => (met ? 'yes' : '**no**');
  return [
    `Memory per service (targets: peak RSS under ${MEMORY_TARGETS.peakRssMb} MB; live heap after a forced GC, ${MEMORY_TARGETS.settleMs / 1000} s after the end, within ${MEMORY_TARGETS.heapGrowth * 100}% of idle):`,
    '',
    '| workload | service | idle heap MB | peak RSS MB | heap 5 s after MB | RSS met | heap met |',
    '|---|---|---:|---:|---:|---|---|',
    ...entries.flatMap(({ workload, memory }) =>
      memory.map((m) => `| ${workload} | ${m.service} | ${m.idle_heap_mb} | ${m.peak_rss_mb} | ${m.heap_after_mb} | ${verdict(m.rss_under_target)} | ${verdict(m.heap_back_to_idle)} |`),
    ),
    '',
  ];
}
