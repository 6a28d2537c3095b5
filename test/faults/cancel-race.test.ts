import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TERMINAL_TASK_EVENTS } from '@taskstream/domain';
import { waitFor } from '@taskstream/testing';
import { describe, expect, it } from 'vitest';
import { cleanupAfterEach, expectIdle, recordMeasurement, startDeployment, submitAll } from '../support/deployment.js';

const cleanup = cleanupAfterEach();

const FLOWS = 60;

describe('cancellation that cannot be missed', () => {
  it('cancels racing with dispatch and with a killed executor: no step runs after its cancel is stored, no task ends twice', async () => {
    const { deployment, gateway } = await startDeployment(cleanup);
    const dir = mkdtempSync(join(tmpdir(), 'taskstream-cancel-race-'));
    // Each step leaves a marker named after its flow, task and attempt the moment it runs.
    const step = (id: string, dependsOn: string[] = []) => ({
      id,
      executor: 'shell',
      depends_on: dependsOn,
      config: { command: `touch ${dir}/$TASKSTREAM_FLOW_ID.$TASKSTREAM_TASK_ID.$TASKSTREAM_ATTEMPT; sleep 0.3` },
    });
    const flow = (i: number) => ({ name: `race-${i}`, tasks: [step('a'), step('b', ['a']), step('c', ['a']), step('d', ['b', 'c'])] });

    const ids = await submitAll(gateway, Array.from({ length: FLOWS }, (_, i) => flow(i)));
    // Cancels spread over the flows' first second: before dispatch, between dispatch and start, mid-step.
    const cancels = ids.map(async (id, i) => {
      await new Promise((resolve) => setTimeout(resolve, (i * 997) % 1_200));
      const response = await waitFor(`the cancel of ${id} to be answered`, async () => fetch(`${gateway()}/api/v1/flows/${id}/cancel`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }).catch(() => undefined), 30_000);
      expect([202, 409], `cancel of ${id}`).toContain(response.status);
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    await deployment.kill('executor');
    await deployment.restart('executor');
    await Promise.all(cancels);

    const ends = new Map<string, string>();
    for (const id of ids) {
      ends.set(id, await waitFor(`flow ${id} to end`, async () => {
        const view = (await (await fetch(`${gateway()}/api/v1/flows/${id}`).catch(() => undefined))?.json().catch(() => undefined)) as { status?: string } | undefined;
        return view?.status !== undefined && ['succeeded', 'failed', 'cancelled'].includes(view.status) ? view.status : undefined;
      }, 120_000, 100));
    }
    await expectIdle(gateway);

    const ran = new Set(readdirSync(dir));
    let stepsRun = 0;
    let startedAfterCancel = 0;
    for (const id of ids) {
      const { events } = (await (await fetch(`${gateway()}/api/v1/flows/${id}/events`)).json()) as { events: Array<{ seq: number; event: { type: string; task_id?: string; attempt?: number } }> };
      const cancelSeq = events.find((e) => e.event.type === 'flow.cancel_requested')?.seq ?? Number.POSITIVE_INFINITY;
      const terminals = new Map<string, string[]>();
      for (const { event } of events) {
        if (TERMINAL_TASK_EVENTS.has(event.type as never)) terminals.set(event.task_id!, [...(terminals.get(event.task_id!) ?? []), event.type]);
      }
      for (const [task, types] of terminals) expect(types, `flow ${id} task ${task}: one terminal event`).toHaveLength(1);
      expect(terminals.size, `flow ${id}: every task ended`).toBe(4);
      for (const { seq, event } of events.filter((e) => e.event.type === 'task.started')) {
        const marker = `${id}.${event.task_id}.${event.attempt}`;
        if (!ran.has(marker)) continue;
        stepsRun++;
        if (seq > cancelSeq) startedAfterCancel++;
        // A step ran: its start was stored before the cancel, never after.
        expect(seq, `flow ${id} task ${event.task_id} attempt ${event.attempt} ran; its start is at ${seq}, the cancel at ${cancelSeq}`).toBeLessThan(cancelSeq);
      }
      // Every marker belongs to a start the log holds: nothing ran unrecorded.
      for (const marker of [...ran].filter((m) => m.startsWith(`${id}.`))) {
        const [, task, attempt] = marker.split('.');
        expect(events.some((e) => e.event.type === 'task.started' && e.event.task_id === task && e.event.attempt === Number(attempt)), `marker ${marker} has its start in the log`).toBe(true);
      }
    }
    const outcomes = [...ends.values()];
    // The race was real: some flows were cancelled, and some steps ran before their cancel.
    expect(outcomes.filter((s) => s === 'cancelled').length).toBeGreaterThan(FLOWS / 2);
    expect(stepsRun).toBeGreaterThan(0);
    recordMeasurement('cancels racing with dispatch and a killed executor', {
      flows: FLOWS,
      cancelled: outcomes.filter((s) => s === 'cancelled').length,
      succeeded: outcomes.filter((s) => s === 'succeeded').length,
      steps_run: stepsRun,
      steps_started_after_their_cancel: startedAfterCancel,
    });
  });
});
