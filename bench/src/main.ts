import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import * as bull from './bullmq.js';
import { memoryMarkdown } from './memory.js';
import * as raw from './raw-jetstream.js';
import { profileMarkdown, summariseDirectory, type ProfileSummary } from './profile.js';
import { manyFlowsMarkdown, type ManyFlowsResult, type Result } from './result.js';
import * as ts from './taskstream.js';

const quick = process.argv.includes('--quick');
// --profile: Taskstream's workloads only, every service under `node --cpu-prof`; the figures of a
// profiled run are not compared with peers, the summary says where each process spends its time.
const profile = process.argv.includes('--profile');
// --only=chain,limits: just these workloads (independent, chain, fan-out, open-loop, limits,
// many-flows, backlog, small-beside-big, retention).
const WORKLOADS = ['independent', 'chain', 'fan-out', 'open-loop', 'limits', 'many-flows', 'backlog', 'small-beside-big', 'retention'] as const;
const only = process.argv.find((arg) => arg.startsWith('--only='))?.slice('--only='.length).split(',');
const unknown = only?.filter((name) => !(WORKLOADS as readonly string[]).includes(name)) ?? [];
if (unknown.length > 0) {
  console.error(`unknown workload ${unknown.join(', ')} in --only; choose from ${WORKLOADS.join(', ')}`);
  process.exit(2);
}
// --node-options="--max-semi-space-size=8 …": V8 or node options on every service's command line,
// to compare them with the defaults in runs of the same code.
const nodeOptions = process.argv.find((arg) => arg.startsWith('--node-options='))?.slice('--node-options='.length).split(/\s+/).filter(Boolean) ?? [];
const wanted = (name: (typeof WORKLOADS)[number]) => only === undefined || only.includes(name);
const heapGrowth = process.env.TASKSTREAM_HEAP_GROWTH_PERCENT;
const stamp = `${new Date().toISOString().slice(0, 10)}${quick ? '-quick' : ''}${profile ? '-profile' : ''}${only ? `-${only.join('-')}` : ''}${nodeOptions.length > 0 || heapGrowth ? '-tuned' : ''}`;
const resultsDir = join(import.meta.dirname, '..', 'results');
const size = {
  independent: quick ? 2_000 : 10_000,
  chain: 100,
  fanOut: 1_000,
  limits: quick ? 300 : 1_000,
  manyFlows: { flows: 20, perFlow: quick ? 100 : 500 },
  // More ready tasks than a dispatcher holds at once (10,000): the steady state of a busy engine.
  backlog: { flows: 3, perFlow: quick ? 4_000 : 10_000 },
  smallBesideBig: quick ? 2_000 : 10_000,
  openLoop: quick ? { flows: 500, rates: [200, 500, 1_000, 1_500] } : { flows: 2_000, rates: [200, 500, 1_000, 1_500] },
  retention: quick ? 1_000 : 3_000,
};

function fmt(n: number, digits = 1): string {
  return Number.isFinite(n) ? n.toFixed(digits) : '-';
}

async function main() {
  const results: Result[] = [];
  const openLoop: Array<Awaited<ReturnType<typeof ts.openLoop>>> = [];
  let retention: ts.RetentionResult | undefined;
  const log = (line: string) => process.stderr.write(`${line}\n`);

  log(`Taskstream (five services as processes, nats-server with file storage)...`);
  const profileDir = profile ? join(import.meta.dirname, '..', 'profiles', stamp) : undefined;
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
  const system = await ts.TaskstreamSystem.start({ profileDir, nodeOptions });
  try {
    await system.run({ tasks: Array.from({ length: 50 }, (_, i) => ({ id: `warm${i}`, executor: 'noop' })) });
    if (wanted('independent')) {
      results.push(await ts.independent(system, size.independent));
      log(`  independent: ${fmt(results.at(-1)!.tasks_per_sec)} tasks/s`);
    }
    if (wanted('chain')) {
      results.push(await ts.chain(system, size.chain));
      log(`  chain: p50 ${fmt(results.at(-1)!.p50_ms)} ms`);
    }
    if (wanted('fan-out')) {
      results.push(await ts.fanOut(system, size.fanOut));
      log(`  fan-out/in: ${fmt(results.at(-1)!.tasks_per_sec)} tasks/s`);
    }
    for (const rate of wanted('open-loop') ? size.openLoop.rates : []) {
      const step = await ts.openLoop(system, rate, size.openLoop.flows);
      openLoop.push(step);
      log(`  open loop ${rate}/s: ${step.sustained ? 'sustained' : 'not sustained'}, drain ${fmt(step.drain_ms, 0)} ms, p50 ${fmt(step.p50_ms)} ms, p99 ${fmt(step.p99_ms)} ms; CPU s by process: ${Object.entries(step.usage.cpu_s_by_process).map(([name, s]) => `${name} ${fmt(s, 2)}`).join(', ')}`);
      if (!step.sustained) break;
    }
    if (wanted('limits')) {
      results.push(await ts.limits(system, size.limits));
      log(`  limits: ${results.at(-1)!.notes}`);
    }
    if (wanted('many-flows')) {
      results.push(await ts.manyFlows(system, size.manyFlows.flows, size.manyFlows.perFlow));
      log(`  many flows: ${fmt(results.at(-1)!.tasks_per_sec)} tasks/s, flow makespan spread ${fmt((results.at(-1) as ManyFlowsResult).flow_makespan_spread, 2)}`);
    }
    if (wanted('backlog')) {
      results.push(await ts.manyFlows(system, size.backlog.flows, size.backlog.perFlow, '8-backlog'));
      log(`  backlog: ${fmt(results.at(-1)!.tasks_per_sec)} tasks/s, ${fmt(results.at(-1)!.cpu_s_per_1k, 2)} CPU s / 1k tasks, dispatcher peak ${results.at(-1)!.peak_rss_mb['dispatcher']} MB`);
    }
    if (wanted('small-beside-big')) {
      results.push(await ts.smallBesideBig(system, size.smallBesideBig));
      log(`  small beside big: ${results.at(-1)!.notes}`);
    }
    // Last: it removes every flow that ended before it.
    if (wanted('retention')) {
      retention = await ts.retention(system, size.retention);
      log(`  retention: ${fmt(retention.removed_per_sec, 0)} flows removed/s against ${fmt(retention.run_flows_per_sec, 0)} run/s (${fmt(retention.ratio, 2)}x)`);
    }
    if (!profile && (wanted('independent') || wanted('chain'))) {
      log('raw JetStream on the same nats-server...');
      if (wanted('independent')) results.push(await raw.independent(system.nc, system.nats.pid!, size.independent));
      if (wanted('chain')) results.push(await raw.chain(system.nc, system.nats.pid!, size.chain));
    }
  } finally {
    await system.stop();
  }
  const profiles: ProfileSummary[] = profileDir ? summariseDirectory(profileDir) : [];

  const bullWanted = wanted('independent') || wanted('chain') || wanted('fan-out') || wanted('limits') || wanted('many-flows');
  for (const mode of profile || !bullWanted ? [] : (['aof', 'none'] as const)) {
    const label = mode === 'aof' ? 'bullmq-aof' : 'bullmq-nopersist';
    log(`BullMQ on the local Redis (${mode === 'aof' ? 'appendonly yes, appendfsync everysec' : 'no persistence'})...`);
    const restore = await bull.setPersistence(mode);
    try {
      if (wanted('independent')) results.push(await bull.independent(size.independent, label));
      if (wanted('chain')) results.push(await bull.chain(size.chain, label));
      if (wanted('fan-out')) results.push(await bull.fanOut(size.fanOut, label));
      if (mode === 'aof' && wanted('limits')) results.push(await bull.limits(size.limits, label));
      if (wanted('many-flows')) results.push(await bull.manyFlows(size.manyFlows.flows, size.manyFlows.perFlow, label));
    } finally {
      await restore();
    }
  }

  const ratio = (workload: string, peer: string, key: 'tasks_per_sec' | 'p50_ms' | 'p99_ms') => {
    const mine = results.find((r) => r.workload === workload && r.system === 'taskstream')?.[key];
    const theirs = results.find((r) => r.workload === workload && r.system === peer)?.[key];
    return mine !== undefined && theirs !== undefined ? mine / theirs : Number.NaN;
  };
  const ownTasksPerSec = (workload: string) => results.find((r) => r.workload === workload && r.system === 'taskstream')?.tasks_per_sec ?? Number.NaN;
  const ratios = {
    independent_tps_vs_bullmq_aof: ratio('1-independent', 'bullmq-aof', 'tasks_per_sec'),
    independent_tps_vs_raw: ratio('1-independent', 'raw-jetstream', 'tasks_per_sec'),
    chain_p50_vs_raw: ratio('3-chain', 'raw-jetstream', 'p50_ms'),
    chain_p99_vs_raw: ratio('3-chain', 'raw-jetstream', 'p99_ms'),
    chain_p50_vs_bullmq_aof: ratio('3-chain', 'bullmq-aof', 'p50_ms'),
    fan_out_tps_vs_bullmq_aof: ratio('4-fan-out-in', 'bullmq-aof', 'tasks_per_sec'),
    many_flows_tps_vs_bullmq_aof: ratio('6-many-flows', 'bullmq-aof', 'tasks_per_sec'),
    many_flows_tps_vs_bullmq_nopersist: ratio('6-many-flows', 'bullmq-nopersist', 'tasks_per_sec'),
    // Not peer comparisons: a backlog beyond what a dispatcher holds against one flow of 10,000;
    // the small flow beside a big one against the same flow alone.
    backlog_tps_vs_independent: ownTasksPerSec('8-backlog') / ownTasksPerSec('1-independent'),
    small_flow_beside_big_vs_alone: (results.find((r) => r.workload === '7-small-beside-big') as { ratio?: number } | undefined)?.ratio ?? Number.NaN,
  };
  const sustained = openLoop.filter((s) => s.sustained).map((s) => s.rate);
  const at200 = openLoop.find((s) => s.rate === 200);

  const lines = [
    `| workload | system | tasks | tasks/s | p50 ms | p99 ms | makespan ms | CPU s / 1k | peak RSS MB | lost | dup |`,
    `|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|`,
    ...results.map((r) =>
      `| ${r.workload} | ${r.system} | ${r.tasks} | ${fmt(r.tasks_per_sec, 0)} | ${fmt(r.p50_ms)} | ${fmt(r.p99_ms)} | ${fmt(r.makespan_ms, 0)} | ${fmt(r.cpu_s_per_1k, 2)} | ${Object.entries(r.peak_rss_mb).map(([k, v]) => `${k} ${v}`).join(', ')} | ${r.lost} | ${r.duplicates} |`,
    ),
    '',
    `Workload 2 (single-task flows over REST, open loop, ${size.openLoop.flows} flows per rate):`,
    '',
    '| rate /s | sustained | drain ms | schedule-to-start p50 ms | p99 ms | rejected | CPU s / 1k flows |',
    '|---:|---|---:|---:|---:|---:|---:|',
    ...openLoop.map((s) => `| ${s.rate} | ${s.sustained ? 'yes' : 'no'} | ${fmt(s.drain_ms, 0)} | ${fmt(s.p50_ms)} | ${fmt(s.p99_ms)} | ${s.rejected} | ${fmt((s.usage.cpu_s / s.flows) * 1000, 2)} |`),
    '',
    `Highest sustained rate: ${sustained.length ? Math.max(...sustained) : 'none'} flows/s.`,
    '',
    ...openLoop.map((s) => `- Messages stored per flow at ${s.rate}/s: ${Object.entries(s.stored_per_flow).map(([k, v]) => `${k} ${v}`).join(', ')}`),
    ...openLoop.map((s) => `- Messages exchanged with nats-server per flow at ${s.rate}/s (in / out): ${Object.entries(s.messages_per_flow).map(([k, v]) => `${k} ${v.in} / ${v.out}`).join(', ')}`),
    ...(openLoop.length > 0 ? [''] : []),
    ...(retention
      ? [
          `Flow retention: ${retention.flows} single-task flows run at ${fmt(retention.run_flows_per_sec, 0)}/s; ${retention.removed} ended flows removed at ${fmt(retention.removed_per_sec, 0)}/s (${fmt(retention.ratio, 2)}x the rate they ran), ${fmt(retention.cpu_s_per_1k_removed, 2)} CPU s per 1k removed (${Object.entries(retention.cpu_s_by_process).map(([k, v]) => `${k} ${v}`).join(', ')}).`,
          '',
        ]
      : []),
    ...manyFlowsMarkdown(results.filter((r): r is ManyFlowsResult => r.workload === '6-many-flows')),
    ...memoryMarkdown(results.flatMap((r) => (r.memory ? [{ workload: r.workload, memory: r.memory }] : []))),
    `Ratios (Taskstream / peer, same run): ${Object.entries(ratios).map(([k, v]) => `${k} ${fmt(v, 2)}`).join('; ')}`,
    '',
    ...results.filter((r) => r.notes).map((r) => `- ${r.workload} ${r.system}: ${r.notes}`),
    '',
    ...results.filter((r) => r.rss_after_mb).map((r) => `- RSS MB 5 s after the workload, ${r.workload} ${r.system}: ${Object.entries(r.rss_after_mb!).map(([k, v]) => `${k} ${v}`).join(', ')}`),
    ...results.filter((r) => r.stored_per_task).map((r) => `- Messages stored per task, ${r.workload} ${r.system}: ${Object.entries(r.stored_per_task!).map(([k, v]) => `${k} ${v}`).join(', ')}`),
    ...results.filter((r) => r.messages_per_task).map((r) => `- Messages exchanged with nats-server per task (in / out), ${r.workload} ${r.system}: ${Object.entries(r.messages_per_task!).map(([k, v]) => `${k} ${v.in} / ${v.out}`).join(', ')}`),
    ...results.filter((r) => r.cpu_s_by_process).map((r) => `- CPU seconds by process, ${r.workload} ${r.system}: ${Object.entries(r.cpu_s_by_process!).map(([k, v]) => `${k} ${v}`).join(', ')}`),
    ...(profileDir ? ['', `## Where each process spends its time (profiles in ${profileDir})`, '', ...profileMarkdown(profiles)] : []),
  ];
  console.log(lines.join('\n'));

  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, `${stamp}.json`);
  const workload2 = {
    highest_sustained_per_sec: sustained.length ? Math.max(...sustained) : 0,
    at_200_per_sec: at200 && { p50_ms: at200.p50_ms, p99_ms: at200.p99_ms },
    steps: openLoop.map(({ usage, ...step }) => ({ ...step, cpu_s_per_1k: (usage.cpu_s / step.flows) * 1000, cpu_s_by_process: usage.cpu_s_by_process, peak_rss_mb: usage.peak_rss_mb })),
  };
  writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), quick, machine: { cpus: cpus().length, model: cpus()[0]?.model, memory_gb: Math.round(totalmem() / 2 ** 30), node: process.version }, ...(nodeOptions.length > 0 && { node_options: nodeOptions }), ...(heapGrowth && { heap_growth_percent: heapGrowth }), results, workload2, ...(retention && { retention }), ratios, ...(profile && { profiles }) }, null, 2) + '\n');
  log(`results written to ${file}`);
  process.exit(0);
}

main().catch((error) => {
  console.error(`benchmark failed: ${(error as Error).stack ?? error}`);
  process.exit(1);
});
