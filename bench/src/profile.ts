import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The parts of a V8 .cpuprofile (written by `node --cpu-prof`) this summary reads. */
interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }>;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  process: string;
  busy_ms: number;
  /** Where the busy time went, by package (or Taskstream library/service), largest first. */
  by_owner: Array<{ owner: string; share: number }>;
  /** The functions with the most self time, largest first. */
  top_functions: Array<{ name: string; owner: string; share: number }>;
}

const IDLE = new Set(['(idle)', '(program)']);

/** Who a sampled frame belongs to: an npm package, a Taskstream package, Node itself, or V8. */
export function ownerOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : 'V8 builtins';
  if (url.startsWith('node:')) return 'node internals';
  const modules = url.lastIndexOf('/node_modules/');
  if (modules >= 0) {
    const [scope, name] = url.slice(modules + '/node_modules/'.length).split('/');
    return scope!.startsWith('@') ? `${scope}/${name}` : scope!;
  }
  const own = /\/(services|libs|bench|cli)\/([^/]+)\//.exec(url);
  return own ? `taskstream ${own[1]}/${own[2]}` : url;
}

/** Self time per owner and per function from one profile; idle time is left out of the shares. */
export function summarise(processName: string, profile: CpuProfile): ProfileSummary {
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const byOwner = new Map<string, number>();
  const byFunction = new Map<string, { owner: string; us: number }>();
  let busy = 0;
  for (const node of profile.nodes) {
    const us = selfUs.get(node.id) ?? 0;
    const { functionName, url, lineNumber } = node.callFrame;
    if (us === 0 || IDLE.has(functionName)) continue;
    busy += us;
    const owner = ownerOf(url, functionName);
    byOwner.set(owner, (byOwner.get(owner) ?? 0) + us);
    const name = `${functionName || '(anonymous)'}${url ? ` ${url.split('/').slice(-2).join('/')}:${lineNumber + 1}` : ''}`;
    const entry = byFunction.get(name) ?? { owner, us: 0 };
    entry.us += us;
    byFunction.set(name, entry);
  }
  const share = (us: number) => Math.round((us / Math.max(busy, 1)) * 1000) / 10;
  return {
    process: processName,
    busy_ms: Math.round(busy / 1000),
    by_owner: [...byOwner].sort((a, b) => b[1] - a[1]).slice(0, 12).map(([owner, us]) => ({ owner, share: share(us) })),
    top_functions: [...byFunction].sort((a, b) => b[1].us - a[1].us).slice(0, 15).map(([name, { owner, us }]) => ({ name, owner, share: share(us) })),
  };
}

/** Summaries of every profile in `dir`, one per process (files are named `<process>.cpuprofile`). */
export function summariseDirectory(dir: string): ProfileSummary[] {
  return readdirSync(dir)
    .filter((file) => file.endsWith('.cpuprofile'))
    .sort()
    .map((file) => summarise(file.replace(/\.cpuprofile$/, ''), JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile));
}

export function profileMarkdown(summaries: ProfileSummary[]): string[] {
  return summaries.flatMap((s) => [
    `### ${s.process}: ${s.busy_ms} ms busy`,
    '',
    `By owner: ${s.by_owner.map((o) => `${o.owner} ${o.share}%`).join(', ')}`,
    '',
    '| self % | function | owner |',
    '|---:|---|---|',
    ...s.top_functions.map((f) => `| ${f.share} | \`${f.name}\` | ${f.owner} |`),
    '',
  ]);
}
