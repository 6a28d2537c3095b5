import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitFor } from '@taskstream/testing';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { ROOT } from '../support/stack.js';

interface Proc {
  pid: number;
  comm: string;
}

/** A process that no longer runs: gone, or a zombie its new parent has not reaped yet. */
function gone(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').startsWith('Z');
  } catch {
    return true;
  }
}

/** A process's command line, its arguments joined by spaces. */
function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
  } catch {
    return '';
  }
}

// Each long step sleeps a different time: the earlier tests' steps, handed back, may run again beside it.
let longSteps = 0;

function comm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

/** Every process below `pid`, found through the kernel's children lists. */
function descendants(pid: number): Proc[] {
  const found: Proc[] = [];
  const visit = (parent: number) => {
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${parent}/task`);
    } catch {
      return;
    }
    for (const task of tasks) {
      let children: number[];
      try {
        children = readFileSync(`/proc/${parent}/task/${task}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
      } catch {
        continue;
      }
      for (const child of children) {
        found.push({ pid: child, comm: comm(child) });
        visit(child);
      }
    }
  };
  visit(pid);
  return found;
}

class Up {
  output = '';
  stderr = '';
  /** Every process seen below it, for cleaning up after a failed test. */
  readonly seen = new Map<number, string>();
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(
    readonly child: ChildProcess,
    readonly url: string,
  ) {
    const collect = (c: Buffer) => (this.output += c.toString());
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    child.stderr!.on('data', (c: Buffer) => (this.stderr += c.toString()));
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  static async start(dataDir: string, nodeArgs: string[] = [], env: Record<string, string> = {}): Promise<Up> {
    const port = await freePort();
    const child = spawn(process.execPath, [...nodeArgs, join(ROOT, 'cli', 'bin', 'taskstream.js'), 'up', '--host', '127.0.0.1', '--port', String(port), '--data-dir', dataDir], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const up = new Up(child, `http://127.0.0.1:${port}`);
    running.push(up);
    await waitFor(`taskstream up to serve /healthz\n${up.output}`, async () => {
      if (child.exitCode !== null) throw new Error(`taskstream up exited with ${child.exitCode}:\n${up.output}`);
      return (await fetch(`${up.url}/healthz`)).ok || undefined;
    }, 45_000, 100);
    return up;
  }

  get pid(): number {
    return this.child.pid!;
  }

  below(): Proc[] {
    const found = descendants(this.pid);
    for (const p of found) this.seen.set(p.pid, p.comm);
    return found;
  }

  natsServer(): Proc {
    const nats = this.below().find((p) => p.comm === 'nats-server');
    if (!nats) throw new Error(`no nats-server below taskstream up: ${JSON.stringify(this.below())}`);
    return nats;
  }

  /** Submits a flow whose one step runs `command` (a sleep of a minute or so), and returns its process once it runs: the one named `comm` whose command line ends with `command`'s last word. */
  async runLongStep(command = `sleep ${60 + ++longSteps}`, comm = 'sleep'): Promise<Proc> {
    const last = command.split(' ').at(-1)!;
    const flow = { name: 'lifecycle', tasks: [{ id: 'long', executor: 'shell', config: { command } }] };
    const submitted = await fetch(`${this.url}/api/v1/flows`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(flow) });
    expect(submitted.status, await submitted.clone().text()).toBe(202);
    const flowId = ((await submitted.json()) as { flow_id: string }).flow_id;
    return waitFor(`the step to run ${command}`, () => this.below().find((p) => p.comm === comm && commandLine(p.pid).endsWith(last)), 20_000, 100).catch(async (error: Error) => {
      const view = await (await fetch(`${this.url}/api/v1/flows/${flowId}`)).text();
      throw new Error(`${error.message}\nflow: ${view}\nbelow: ${JSON.stringify(this.below())}\n${this.output}`);
    });
  }

  exitWithin(ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null } | 'late'> {
    return Promise.race([this.exited, new Promise<'late'>((r) => setTimeout(() => r('late'), ms))]);
  }
}

const running: Up[] = [];

afterEach(() => {
  for (const up of running.splice(0)) {
    up.child.kill('SIGKILL');
    for (const [pid, name] of up.seen) if (!gone(pid) && comm(pid) === name) process.kill(pid, 'SIGKILL');
  }
});

async function allGone(processes: Proc[], timeoutMs: number): Promise<void> {
  await waitFor(`${JSON.stringify(processes)} to end`, () => processes.every((p) => gone(p.pid)) || undefined, timeoutMs, 100);
}

describe.skipIf(!existsSync('/proc/self/task'))('taskstream up, its lifecycle', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'taskstream-lifecycle-'));

  it('SIGKILL of up takes its nats-server with it, even with a step process running', async () => {
    const up = await Up.start(dataDir);
    // A step's process must not hold on to whatever tells nats-server that up has gone.
    await up.runLongStep();
    const nats = up.natsServer();

    up.child.kill('SIGKILL');
    await up.exited;
    await waitFor(`nats-server ${nats.pid} to end`, () => gone(nats.pid) || undefined, 10_000, 100);
  });

  it('after a kill, up resumes flows at once instead of waiting out the partition leases its earlier run held', async () => {
    const ownDir = mkdtempSync(join(tmpdir(), 'taskstream-leases-'));
    onTestFinished(() => rmSync(ownDir, { recursive: true, force: true }));
    // Leases of a minute: waited out, the flow below would not end within the wait.
    const env = { TASKSTREAM_LEASE_MS: '60000' };
    const runs = async (up: Up) => {
      const submitted = await fetch(`${up.url}/api/v1/flows`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tasks: [{ id: 'quick', executor: 'noop' }] }) });
      const flowId = ((await submitted.json()) as { flow_id: string }).flow_id;
      await waitFor(`flow ${flowId} to succeed\n${up.output}`, async () => (((await (await fetch(`${up.url}/api/v1/flows/${flowId}`)).json()) as { status: string }).status === 'succeeded' ? true : undefined), 20_000, 100);
    };
    const first = await Up.start(ownDir, [], env);
    await runs(first);
    first.child.kill('SIGKILL');
    await first.exited;
    const second = await Up.start(ownDir, [], env);
    await runs(second);
    second.child.kill('SIGINT');
    await second.exitWithin(15_000);
  });

  it('SIGINT with a long step running stops everything within a bound and exits 130', async () => {
    // The same data directory: the server killed above left nothing holding its store.
    const up = await Up.start(dataDir);
    const sleep = await up.runLongStep();
    const below = up.below();
    expect(below.map((p) => p.comm)).toContain('nats-server');

    up.child.kill('SIGINT');
    const exit = await up.exitWithin(15_000);
    expect(exit, up.output).toEqual({ code: 130, signal: null });
    expect(up.output).toMatch(/stopping/i);
    await allGone(below, 5_000);
    expect(gone(sleep.pid)).toBe(true);
  });

  it('a second SIGINT exits at once, still ending nats-server and the step', async () => {
    const up = await Up.start(dataDir);
    await up.runLongStep();
    const below = up.below();

    up.child.kill('SIGINT');
    await waitFor('up to say it is stopping', () => /stopping/i.test(up.output) || undefined, 5_000);
    // A repeat within a fraction of a second counts as the same Ctrl-C (wrappers forward it).
    await new Promise((r) => setTimeout(r, 500));
    up.child.kill('SIGINT');
    // Running steps alone get longer than this to finish: only an immediate exit meets it.
    const exit = await up.exitWithin(3_000);
    expect(exit, up.output).toEqual({ code: 130, signal: null });
    await allGone(below, 10_000);
  });

  it('an error nothing caught is logged as one fatal line, and ends the step (even one ignoring SIGTERM) and nats-server before up exits 1', async () => {
    // A bug on demand: the exception is thrown outside any handler once up is told to (SIGUSR2).
    const bugDir = mkdtempSync(join(tmpdir(), 'taskstream-bug-'));
    onTestFinished(() => rmSync(bugDir, { recursive: true, force: true }));
    const bug = join(bugDir, 'bug.mjs');
    writeFileSync(bug, "process.on('SIGUSR2', () => setImmediate(() => { throw new Error('a bug nothing caught'); }));\n");
    // A step that ignores SIGTERM: only SIGKILL ends it.
    const stubborn = join(bugDir, 'stubborn-step');
    writeFileSync(stubborn, "#!/bin/sh\ntrap '' TERM\nwhile :; do sleep 0.1; done\n", { mode: 0o755 });
    // A data directory of its own: the earlier tests' steps, handed back, would run again first.
    const up = await Up.start(join(bugDir, 'data'), ['--import', bug]);
    const step = await up.runLongStep(stubborn, 'stubborn-step');
    const below = up.below();

    up.child.kill('SIGUSR2');
    const exit = await up.exitWithin(5_000);
    expect(exit, up.output).toEqual({ code: 1, signal: null });
    // On standard error: standard output may be a protocol (taskstream mcp).
    const fatal = up.stderr
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line))
      .filter((line) => line.level === 60);
    expect(fatal, up.output).toHaveLength(1);
    expect(fatal[0]).toMatchObject({ service: 'taskstream', msg: 'uncaught exception: a bug nothing caught; exiting' });
    // The step's process is in a process group of its own: without the abort it would outlive up.
    await allGone(below, 10_000);
    expect(gone(step.pid)).toBe(true);
  });
});
