import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { alive, waitFor } from '@taskstream/testing';
import { describe, expect, it } from 'vitest';
import { cleanupAfterEach, expectIdle, expectSettled, startDeployment, submitAll } from '../support/deployment.js';

const cleanup = cleanupAfterEach();

const setUp = (env: Record<string, string> = {}) => startDeployment(cleanup, env);

/** A folder for the pids the steps write; whatever is still running when the test ends is killed. */
function pidFolder() {
  const dir = mkdtempSync(join(tmpdir(), 'taskstream-pgroup-'));
  const file = join(dir, 'pids');
  const pids = () => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number) : []);
  cleanup(async () => {
    for (const pid of pids()) if (alive(pid)) process.kill(pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, file, pids };
}

async function events(gateway: string, flowId: string): Promise<any[]> {
  return ((await (await fetch(`${gateway}/api/v1/flows/${flowId}/events`)).json()) as { events: Array<{ event: any }> }).events.map((e) => e.event);
}

const outcomeOf = (log: any[], task: string) => log.filter((e) => e.task_id === task && ['task.succeeded', 'task.failed', 'task.timed_out', 'task.cancelled'].includes(e.type));

describe('a shell step that forks a background process is stopped by timeout and by cancel', () => {
  it('timeout: a step ends when its command exits and what it left running is killed; one still running is timed out with its whole group', async () => {
    const { gateway } = await setUp();
    const { file, pids } = pidFolder();
    // More of them than the executor runs at once: they must not hold its slots until their sleeps end.
    const plain = Array.from({ length: 10 }, (_, i) => `plain-${i}`);
    const [id] = await submitAll(gateway, [
      {
        name: 'background-timeout',
        tasks: [
          ...plain.map((taskId) => ({ id: taskId, executor: 'shell', config: { command: `sleep 241 & echo $! >> ${file}; echo x` }, timeout_secs: 2 })),
          {
            id: 'waits',
            executor: 'shell',
            // A grandchild that ignores SIGTERM and holds no pipe, and a background sleep the command waits for.
            config: { command: `sh -c 'trap "" TERM; echo $$ >> ${file}; exec sleep 241' > /dev/null 2>&1 & sleep 241 & echo $! >> ${file}; echo x; wait` },
            timeout_secs: 2,
            retries: 0,
          },
        ],
      },
    ]);

    await expectSettled(gateway, [id!], 'failed', 60_000);
    const log = await events(gateway(), id!);
    for (const taskId of plain) expect(outcomeOf(log, taskId)).toMatchObject([{ type: 'task.succeeded', data: { output: { exit_code: 0, stdout: 'x\n' } } }]);
    expect(outcomeOf(log, 'waits')).toMatchObject([{ type: 'task.timed_out', data: { error: { code: 'TIMEOUT' } } }]);
    expect(pids()).toHaveLength(plain.length + 2);
    await waitFor('every process the steps started to be gone', () => (pids().every((pid) => !alive(pid)) ? true : undefined), 30_000);
    await expectIdle(gateway);
  });

  it('cancel: the flow ends cancelled, no task of it records a success, and no process it started survives', async () => {
    // A long kill grace: the stubborn step finishes on its own after the cancel, before it would be killed.
    const { gateway } = await setUp({ TASKSTREAM_KILL_GRACE_MS: '10000' });
    const { dir, file, pids } = pidFolder();
    const go = join(dir, 'go');
    const [id] = await submitAll(gateway, [
      {
        name: 'background-cancel',
        tasks: [
          { id: 'bg', executor: 'shell', config: { command: `sh -c 'trap "" TERM; echo $$ >> ${file}; exec sleep 241' > /dev/null 2>&1 & sleep 241 & echo $! >> ${file}; echo x; wait` } },
          { id: 'stubborn', executor: 'shell', config: { command: `trap "" TERM; echo $$ >> ${file}; while [ ! -e ${go} ]; do sleep 0.1; done; echo done` } },
          { id: 'after', executor: 'noop', depends_on: ['bg', 'stubborn'] },
        ],
      },
    ]);
    await waitFor('both steps to run', () => (pids().length === 3 ? true : undefined), 30_000);
    const cancelled = await fetch(`${gateway()}/api/v1/flows/${id}/cancel`, { method: 'POST' });
    expect(cancelled.status).toBe(202);
    await waitFor('the cancel to be stored', async () => ((await events(gateway(), id!)).some((e) => e.type === 'flow.cancel_requested') ? true : undefined), 10_000);
    // The stubborn step ignored SIGTERM; now it completes with exit code 0.
    writeFileSync(go, '');

    await expectSettled(gateway, [id!], 'cancelled', 60_000);
    const log = await events(gateway(), id!);
    expect(log.filter((e) => ['task.succeeded', 'task.attempt_failed', 'task.failed'].includes(e.type))).toEqual([]);
    for (const taskId of ['bg', 'stubborn']) expect(outcomeOf(log, taskId)).toMatchObject([{ type: 'task.cancelled', data: { reason: 'flow cancelled while the task was running' } }]);
    expect(outcomeOf(log, 'after')).toMatchObject([{ type: 'task.cancelled' }]);
    await waitFor('every process the steps started to be gone', () => (pids().every((pid) => !alive(pid)) ? true : undefined), 30_000);
    await expectIdle(gateway);
  });
});
