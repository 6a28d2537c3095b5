import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NatsServer, waitFor } from '@taskstream/testing';
import { describe, expect, it } from 'vitest';
import { ALL_SERVICES, cleanupAfterEach, Deployment, expectIdle, expectSettled, FAST_FAILOVER, recordMeasurement, submitAll } from '../support/deployment.js';
import { alive } from '../support/stack.js';

const cleanup = cleanupAfterEach();

describe('graceful shutdown', () => {
  it('SIGTERM: an executor lets short steps finish, hands long ones back unspent, and exits', async () => {
    const nats = await NatsServer.start();
    const deployment = await Deployment.start(nats.url, ALL_SERVICES, { ...FAST_FAILOVER, TASKSTREAM_SHUTDOWN_GRACE_MS: '1500' });
    cleanup(async () => deployment.stop(), async () => nats.stop());
    const gateway = () => deployment.gatewayUrl;
    const dir = mkdtempSync(join(tmpdir(), 'taskstream-sigterm-'));
    const marker = (name: string) => join(dir, `${name}.$TASKSTREAM_ATTEMPT`);
    const ids = await submitAll(gateway, [
      // retries: 0 — an interrupted attempt must not use up the only attempt there is.
      { name: 'long', tasks: [{ id: 'long', executor: 'shell', config: { command: `echo $$ > ${marker('long')}; sleep 8` }, retries: 0 }] },
      { name: 'short', tasks: [{ id: 'short', executor: 'shell', config: { command: `echo $$ > ${marker('short')}; sleep 0.5` }, retries: 0 }] },
    ]);
    await waitFor('both steps to run', () => (existsSync(join(dir, 'long.1')) && existsSync(join(dir, 'short.1')) ? true : undefined), 30_000);
    const firstLong = Number(readFileSync(join(dir, 'long.1'), 'utf8'));

    const executor = deployment.processes.get('executor')!;
    const firstExecutorLogs = () => executor.logs();
    const signalled = Date.now();
    await executor.stop('SIGTERM');
    const exitMs = Date.now() - signalled;
    expect(executor.child.exitCode, executor.logs()).toBe(0);
    expect(alive(firstLong), 'the interrupted step was stopped with its executor').toBe(false);

    await deployment.restart('executor');
    const settled = await expectSettled(gateway, ids);
    await expectIdle(gateway);
    const log = async (id: string) => ((await (await fetch(`${gateway()}/api/v1/flows/${id}/events`)).json()) as { events: Array<{ event: any }> }).events.map((e) => e.event);
    const long = await log(ids[0]!);
    const explain = () => [JSON.stringify(long, null, 1), 'first executor:', firstExecutorLogs(), 'second executor:', deployment.processes.get('executor')!.logs()].join('\n');
    expect(long.filter((e) => e.type === 'task.started').map((e) => e.attempt), explain()).toEqual([1, 2]);
    expect(long.find((e) => e.type === 'task.attempt_failed')?.data.error, explain()).toMatchObject({ code: 'INTERRUPTED', retryable: true });
    expect(long.find((e) => e.type === 'task.succeeded')?.attempt, explain()).toBe(2);
    const short = await log(ids[1]!);
    expect(short.filter((e) => e.type === 'task.started').map((e) => e.attempt)).toEqual([1]);
    recordMeasurement('SIGTERM during a long step', { grace_ms: 1500, exit_ms_after_sigterm: exitMs, ...settled });
  });
});
