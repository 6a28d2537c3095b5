import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '@taskstream/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runShell } from '../src/steps/shell.js';
import { StepError } from '../src/steps/step-error.js';
import { alive, pidsIn, stepContext } from './processes.js';

const limits = { killGraceMs: 500, drainMs: 200 };
let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'taskstream-shell-'));
});

// A failing test must not leave its sleeps behind: every pid a command wrote is killed.
afterEach(() => {
  for (const pid of readdirSync(dir).flatMap((name) => pidsIn(join(dir, name)))) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone, as it should be
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

function shell(command: string, signal?: AbortSignal): Promise<unknown> {
  return runShell(stepContext('shell', { command }, signal), process.env, limits);
}

function pidsWritten(file: string, count: number): Promise<number[]> {
  return waitFor(`${count} pids in ${file}`, () => (pidsIn(file).length >= count ? pidsIn(file) : undefined), 10_000);
}

async function allGone(pids: number[]): Promise<void> {
  await waitFor(`processes ${pids.join(', ')} to be gone`, () => (pids.every((pid) => !alive(pid)) ? true : undefined), 10_000);
}

async function rejection(promise: Promise<unknown>): Promise<StepError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StepError);
  return error as StepError;
}

describe('shell steps own their process group', () => {
  it('ends when the command exits, even with a background process holding its output, and kills what it left running', async () => {
    const file = join(dir, 'pids');
    const output = await shell(`sleep 241 & echo $! > ${file}; echo x`);
    expect(output).toEqual({ exit_code: 0, stdout: 'x\n', stderr: '' });
    await allGone(await pidsWritten(file, 1));
  });

  it('kills what the command left running even when it holds no pipe', async () => {
    const file = join(dir, 'pids');
    await shell(`sleep 241 > /dev/null 2>&1 & echo $! > ${file}`);
    await allGone(await pidsWritten(file, 1));
  });

  it('a timeout or cancel stops the whole group: the command and its background processes', async () => {
    const file = join(dir, 'pids');
    const controller = new AbortController();
    const step = shell(`echo $$ >> ${file}; sleep 241 & echo $! >> ${file}; echo x; wait`, controller.signal);
    const pids = await pidsWritten(file, 2);
    controller.abort(new Error('timed out'));
    const error = await rejection(step);
    expect(error.detail).toMatchObject({ code: 'EXIT_CODE', signal: 'SIGTERM' });
    await allGone(pids);
  });

  it('a grandchild ignoring SIGTERM that closed its output is killed after the grace, though the step ended before', async () => {
    const file = join(dir, 'pids');
    const controller = new AbortController();
    // The grandchild writes its pid once its trap is set, so the stop cannot come before it.
    const step = shell(`sh -c 'trap "" TERM; echo $$ >> ${file}; exec sleep 241' > /dev/null 2>&1 & echo x; wait`, controller.signal);
    const pids = await pidsWritten(file, 1);
    controller.abort(new Error('cancelled'));
    await rejection(step);
    await allGone(pids);
  });

  it('a command ignoring SIGTERM while holding its output is killed after the grace, and the step ends then', async () => {
    const file = join(dir, 'pids');
    const controller = new AbortController();
    const step = shell(`trap "" TERM; echo $$ >> ${file}; sleep 241 & echo $! >> ${file}; wait`, controller.signal);
    const pids = await pidsWritten(file, 2);
    controller.abort(new Error('cancelled'));
    const error = await rejection(step);
    expect(error.detail).toMatchObject({ code: 'EXIT_CODE', signal: 'SIGKILL' });
    await allGone(pids);
  });

  it('a stop after the command exited, while its leftovers drain, still kills them', async () => {
    const file = join(dir, 'pids');
    const controller = new AbortController();
    const step = runShell(stepContext('shell', { command: `sleep 241 & echo $! > ${file}` }, controller.signal), process.env, { killGraceMs: 500, drainMs: 60_000 });
    const pids = await pidsWritten(file, 1);
    controller.abort(new Error('cancelled'));
    await step.catch(() => undefined);
    await allGone(pids);
  });

  it('starts nothing once stopped', async () => {
    const file = join(dir, 'pids');
    const controller = new AbortController();
    controller.abort(new Error('cancelled'));
    await expect(shell(`echo $$ > ${file}`, controller.signal)).rejects.toThrow('cancelled');
    expect(pidsIn(file)).toEqual([]);
  });

  it('reports a failing command by its exit code and output tails', async () => {
    const error = await rejection(shell('echo out; echo err >&2; exit 3'));
    expect(error.detail).toMatchObject({ code: 'EXIT_CODE', exit_code: 3, retryable: true, stdout_tail: 'out', stderr_tail: 'err' });
  });
});
