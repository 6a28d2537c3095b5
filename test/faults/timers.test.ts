import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '@taskstream/testing';
import { describe, expect, it } from 'vitest';
import { cleanupAfterEach, expectIdle, expectSettled, recordMeasurement, startDeployment, submitAll } from '../support/deployment.js';
import { alive } from '../support/stack.js';

const cleanup = cleanupAfterEach();

const setUp = (env: Record<string, string> = {}) => startDeployment(cleanup, env);

async function events(gateway: string, flowId: string): Promise<any[]> {
  return ((await (await fetch(`${gateway}/api/v1/flows/${flowId}/events`)).json()) as { events: Array<{ event: any }> }).events.map((e) => e.event);
}

describe('waits that outlive the processes that started them', () => {
  it('a retry delay survives its executor: the next attempt comes when due, once, as attempt 2', async () => {
    const { deployment, gateway } = await setUp({ TASKSTREAM_DURABLE_RETRY_MS: '1000' });
    const flows = Array.from({ length: 5 }, (_, i) => ({
      name: `durable-retry-${i}`,
      tasks: [
        {
          id: 'flaky',
          executor: 'shell',
          config: { command: '[ "$TASKSTREAM_ATTEMPT" -ge 2 ] || { echo "first attempt fails" >&2; exit 1; }' },
          retries: 2,
          backoff: { type: 'fixed', initial_delay_ms: 4000, jitter: false },
        },
      ],
    }));
    const ids = await submitAll(gateway, flows);
    await waitFor('every first attempt to fail and schedule a retry', async () => {
      for (const id of ids) if (!(await events(gateway(), id)).some((e) => e.type === 'task.retry_scheduled')) return undefined;
      return true;
    }, 30_000);
    // The executor that scheduled the retries dies; another one starts only after they are due.
    await deployment.kill('executor');
    await new Promise((r) => setTimeout(r, 4500));
    await deployment.restart('executor');

    await expectSettled(gateway, ids);
    await expectIdle(gateway);
    const lateness: number[] = [];
    for (const id of ids) {
      const log = await events(gateway(), id);
      const scheduled = log.find((e) => e.type === 'task.retry_scheduled');
      const starts = log.filter((e) => e.type === 'task.started');
      expect(starts.map((e) => e.attempt)).toEqual([1, 2]);
      expect(scheduled.data).toMatchObject({ next_attempt: 2, delay_ms: 4000 });
      const due = Date.parse(scheduled.time) + scheduled.data.delay_ms;
      expect(Date.parse(starts[1].time)).toBeGreaterThanOrEqual(due - 5);
      lateness.push(Date.parse(starts[1].time) - due);
      expect(log.filter((e) => e.type === 'task.succeeded')).toHaveLength(1);
    }
    recordMeasurement('durable retry across an executor kill', { flows: ids.length, attempts_per_task: 2, max_ms_late_after_restart: Math.max(...lateness) });
  });

  it("a flow's timeout survives a planner kill: running steps are stopped, the flow fails with FLOW_TIMEOUT", async () => {
    const { deployment, gateway } = await setUp();
    const dir = mkdtempSync(join(tmpdir(), 'taskstream-deadline-'));
    const pidFile = join(dir, 'slow.pid');
    const [id] = await submitAll(gateway, [
      {
        name: 'deadline',
        timeout_secs: 3,
        tasks: [
          { id: 'quick', executor: 'noop' },
          { id: 'slow', executor: 'shell', config: { command: `echo $$ > ${pidFile}; exec sleep 60` }, depends_on: ['quick'] },
          { id: 'after', executor: 'noop', depends_on: ['slow'] },
        ],
      },
    ]);
    await waitFor('the slow step to run', () => (existsSync(pidFile) ? true : undefined), 30_000);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    await deployment.restart('planner');

    await expectSettled(gateway, [id!], 'failed');
    const log = await events(gateway(), id!);
    const started = log.find((e) => e.type === 'flow.started');
    const passed = log.filter((e) => e.type === 'flow.deadline_passed');
    expect(passed).toHaveLength(1);
    expect(Date.parse(passed[0].time)).toBeGreaterThanOrEqual(Date.parse(started.time) + 3000);
    const failed = log.find((e) => e.type === 'flow.failed');
    expect(failed.data).toMatchObject({ code: 'FLOW_TIMEOUT', succeeded: 1, total: 3 });
    expect(failed.data.reason).toMatch(/the flow's timeout of 3s passed: 2 of 3 tasks did not finish/);
    const outcome = (task: string) => log.find((e) => e.task_id === task && ['task.succeeded', 'task.cancelled'].includes(e.type));
    expect(outcome('slow')).toMatchObject({ type: 'task.cancelled', data: { reason: "the flow's timeout passed while the task was running" } });
    expect(outcome('after')).toMatchObject({ type: 'task.cancelled' });
    await waitFor('the slow step to be stopped', () => (alive(pid) ? undefined : true));
    await expectIdle(gateway);
    recordMeasurement('flow timeout across a planner kill', { timeout_secs: 3, fired_ms_after_start: Date.parse(passed[0].time) - Date.parse(started.time) });
  });
});
