import { childFlowId } from '@taskstream/nats';
import { NatsServer, waitFor } from '@taskstream/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_SERVICES, Deployment, FAST_FAILOVER } from '../support/deployment.js';
import { runCli } from '../support/cli.js';
import { gatewayApi } from '../support/gateway-api.js';

/*
 * Wait tasks and signals, and trigger tasks and their child flows, through every service as its
 * own process.
 */

describe('signals and sub-flows through the services', () => {
  let nats: NatsServer;
  let deployment: Deployment;
  let base: string;

  const { post, submit, view, taskOf, events, settled, statusIs, statuses } = gatewayApi(() => base);
  const signal = (name: string, payload: unknown, headers: Record<string, string> = {}) => post(`/api/v1/signals/${name}`, payload, headers);

  const waitingFor = (name: string, match?: string, extra: Record<string, unknown> = {}) => ({
    params: { order: 'A-1' },
    tasks: [
      { id: 'charge', executor: 'noop' },
      { id: 'paid', executor: 'wait', depends_on: ['charge'], config: { signal: name, ...(match !== undefined && { match }) }, ...extra },
      { id: 'ship', executor: 'transform', depends_on: ['paid'], config: { expr: 'tasks.paid.output.amount * 2' } },
    ],
  });

  beforeAll(async () => {
    nats = await NatsServer.start();
    deployment = await Deployment.start(nats.url, ALL_SERVICES, FAST_FAILOVER);
    base = deployment.gatewayUrl;
  });
  afterAll(async () => {
    await deployment?.stop();
    await nats?.stop();
  });

  it('completes every waiting task whose match accepts a signal, with the payload as its output, and leaves the others waiting', async () => {
    const mine = await submit(waitingFor('payment', 'signal.order == params.order'));
    const other = await submit({ ...waitingFor('payment', 'signal.order == params.order'), params: { order: 'B-2' } });
    await statusIs(mine, 'paid', 'waiting');
    await statusIs(other, 'paid', 'waiting');

    const sent = await signal('payment', { order: 'A-1', amount: 21 });
    expect(sent.status).toBe(202);
    expect(sent.body).toEqual({ signal_id: expect.stringMatching(/^[0-9A-Z]{26}$/), name: 'payment', seq: expect.any(Number), replayed: false });
    const done = await settled(mine);
    expect(statuses(done)).toEqual({ charge: 'succeeded', paid: 'succeeded', ship: 'succeeded' });
    expect((await taskOf(mine, 'ship')).output).toBe(42);
    const matched = (await events(mine)).find((e) => e.type === 'task.succeeded' && e.task_id === 'paid');
    expect(matched.data).toMatchObject({ output: { order: 'A-1', amount: 21 }, signal: { id: sent.body.signal_id, name: 'payment' } });
    expect((await taskOf(other, 'paid')).status).toBe('waiting');

    // A payload the match cannot read (no "order") is no match; a matching one completes it, once.
    await signal('payment', { amount: 1 });
    await signal('payment', { order: 'B-2', amount: 5 });
    await settled(other);
    await signal('payment', { order: 'B-2', amount: 7 });
    const ends = (await events(other)).filter((e) => e.task_id === 'paid' && ['task.succeeded', 'task.failed', 'task.cancelled', 'task.timed_out'].includes(e.type));
    expect(ends).toHaveLength(1);
    expect(ends[0].data.output).toEqual({ order: 'B-2', amount: 5 });
  });

  it('finds a signal sent shortly before the wait began (look-back), but not one older than its window', async () => {
    await signal('early', { order: 'A-1', amount: 3 });
    const id = await submit(waitingFor('early'));
    const done = await settled(id);
    expect(statuses(done).paid).toBe('succeeded');
    expect((await taskOf(id, 'ship')).output).toBe(6);

    await signal('stale', { amount: 1 });
    await new Promise((resolve) => setTimeout(resolve, 2_100));
    const late = await submit(waitingFor('stale', undefined, { config: { signal: 'stale', lookback_secs: 1 } }));
    await statusIs(late, 'paid', 'waiting');
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect((await taskOf(late, 'paid')).status).toBe('waiting');
    await signal('stale', { amount: 2 });
    await settled(late);
    expect((await taskOf(late, 'ship')).output).toBe(4);
  });

  it('times a wait out durably with SIGNAL_TIMEOUT, and sends signals from the CLI with a clear refusal of bad input', async () => {
    const id = await submit(waitingFor('never', undefined, { timeout_secs: 1 }));
    const failed = await settled(id);
    expect(statuses(failed)).toEqual({ charge: 'succeeded', paid: 'timed_out', ship: 'upstream_failed' });
    expect((await taskOf(id, 'paid')).error).toMatchObject({ code: 'SIGNAL_TIMEOUT', message: expect.stringContaining('no signal "never" came within 1s') });

    const cliFlow = await submit(waitingFor('cli-signal'));
    await statusIs(cliFlow, 'paid', 'waiting');
    const sent = await runCli(['signal', 'cli-signal', '--data', '{"amount": 10}', '--server', base]);
    expect(sent.stdout, sent.stderr).toMatch(/^Signal cli-signal sent as [0-9A-Z]{26}/);
    expect((await settled(cliFlow)).status).toBe('succeeded');

    const bad = await runCli(['signal', 'x', '--data', '{nope', '--server', base]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('--data is not valid JSON');
    const badName = await signal('has%20space', {});
    expect(badName.status).toBe(400);
    const tooLarge = await signal('big', { blob: 'x'.repeat(70 * 1024) });
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.body.error.code).toBe('SIGNAL_TOO_LARGE');

    const first = await signal('keyed', { n: 1 }, { 'idempotency-key': 'k-1' });
    const again = await signal('keyed', { n: 2 }, { 'idempotency-key': 'k-1' });
    expect(again.body).toEqual({ ...first.body, replayed: true });
  });

  const child = { tasks: [{ id: 'x', executor: 'noop', config: { output: { n: 20 } } }, { id: 'y', executor: 'transform', depends_on: ['x'], config: { expr: 'tasks.x.output.n + params.bump' } }], params: { bump: 0 } };

  it('runs a child flow and ends the waiting task with Tasked\'s summary and the child\'s outputs, lineage in both histories', async () => {
    const parent = await submit({
      params: { bump: 2 },
      tasks: [
        { id: 'prep', executor: 'noop' },
        { id: 'run-child', executor: 'trigger', depends_on: ['prep'], config: { queue: 'default', flow: child, params: { bump: '${params.bump}' } } },
        { id: 'use', executor: 'transform', depends_on: ['run-child'], config: { expr: 'tasks["run-child"].output.outputs.y' } },
      ],
    });
    const done = await settled(parent);
    expect(statuses(done)).toEqual({ prep: 'succeeded', 'run-child': 'succeeded', use: 'succeeded' });
    const childId = childFlowId(parent, 'run-child');
    const output = (await taskOf(parent, 'run-child')).output;
    expect(output).toEqual({ flow_id: childId, queue_id: 'default', state: 'succeeded', task_count: 2, tasks_succeeded: 2, tasks_failed: 0, outputs: { x: { n: 20 }, y: 22 } });
    expect((await taskOf(parent, 'use')).output).toBe(22);
    const childView = await view(childId);
    expect(childView).toMatchObject({ status: 'succeeded', queue: 'default', origin: { parent: { flow_id: parent, task_id: 'run-child', depth: 1 } } });
    const waiting = (await events(parent)).find((e) => e.type === 'task.waiting');
    expect(waiting.data.child).toMatchObject({ flow_id: childId, queue: 'default', wait: true, depth: 1 });
    expect(waiting.data.child.definition).toBeUndefined();
  });

  it('fails the parent task when its child fails, and does not wait when told not to', async () => {
    const failing = await submit({ tasks: [{ id: 'c', executor: 'trigger', config: { flow: { tasks: [{ id: 'boom', executor: 'transform', config: { expr: 'params.missing.x' } }] } } }] });
    const failed = await settled(failing);
    expect(failed.status).toBe('failed');
    expect((await taskOf(failing, 'c')).error).toMatchObject({ code: 'CHILD_FLOW_FAILED', message: expect.stringContaining('child flow failed: 0 succeeded, 1 failed') });

    const async = await submit({ tasks: [{ id: 'c', executor: 'trigger', config: { wait: false, flow: { tasks: [{ id: 'slow', executor: 'delay', config: { ms: 1500 } }] } } }] });
    const quick = await settled(async);
    expect(quick.status).toBe('succeeded');
    expect((await taskOf(async, 'c')).output).toEqual({ flow_id: childFlowId(async, 'c'), queue_id: 'default', async: true });
    expect((await settled(childFlowId(async, 'c'))).status).toBe('succeeded');
  });

  it('cancels the child when the parent is cancelled', async () => {
    const parent = await submit({ tasks: [{ id: 'c', executor: 'trigger', config: { flow: { tasks: [{ id: 'long', executor: 'delay', config: { seconds: 60 } }] } } }] });
    await statusIs(parent, 'c', 'waiting');
    const childId = childFlowId(parent, 'c');
    await waitFor('the child to run its step', async () => ((await taskOf(childId, 'long'))?.status === 'running' ? true : undefined), 20_000);
    expect((await post(`/api/v1/flows/${parent}/cancel`, {})).status).toBeLessThan(300);
    expect((await settled(parent)).status).toBe('cancelled');
    const cancelledChild = await settled(childId);
    expect(cancelledChild.status).toBe('cancelled');
    const request = (await events(childId)).find((e) => e.type === 'flow.cancel_requested');
    expect(request.data).toMatchObject({ requested_by: `flow:${parent}`, reason: expect.stringContaining(`its parent flow ${parent} cancelled task "c"`) });
  });
});
