/** A duration as people read it: 850 ms, 1.2 s, 3 min 5 s, 2 h 4 min. */
export function formatDuration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 60) return `${minutes} min ${Math.round((ms % 60_000) / 1000)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** How long from `start` to `end`, or to now while it runs. */
export function elapsed(start: string | undefined, end: string | undefined, now = Date.now()): number | undefined {
  if (start === undefined) return undefined;
  return (end === undefined ? now : Date.parse(end)) - Date.parse(start);
}

export function formatTime(iso: string | undefined): string {
  return iso === undefined ? '—' : new Date(iso).toLocaleString();
}
