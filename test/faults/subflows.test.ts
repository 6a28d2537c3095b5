import { validateFlow } from '@taskstream/domain';
import { childFlowId, connectNats, jetstream, readFlowHistory, submitFlow, topology } from '@taskstream/nats';
import { NatsServer, waitFor } from '@taskstream/testing';
import { describe, expect, it } from 'vitest';
import { ALL_SERVICES, cleanupAfterEach, Deployment, expectSettled, FAST_FAILOVER, submitAll } from '../support/deployment.js';

/*
 * A trigger task's child flow exists once whatever crashes: the planner submits it under an id
 * derived from the parent and the task, by an append that succeeds only for the first submission,
 * before it stores the parent's wait.
 */

const cleanup = cleanupAfterEach();
const topo = topology();

const CHILD = { tasks: [{ id: 'one', executor: 'noop', config: { output: { n: 1 } } }, { id: 'two', executor: 'transform', depends_on: ['one'], config: { expr: 'tasks.one.output.n + 1' } }] };
const parentFlow = (i: number) => ({ name: `parent-${i}`, tasks: [{ id: 'before', executor: 'noop' }, { id: 'child', executor: 'trigger', depends_on: ['before'], config: { flow: CHILD } }, { id: 'after', executor: 'noop', depends_on: ['child'] }] });

async function setUp() {
  const nats = await NatsServer.start();
  const deployment = await Deployment.start(nats.url, ALL_SERVICES, FAST_FAILOVER);
  const nc = await connectNats({ servers: nats.url, name: 'subflows-fault-test' });
  cleanup(async () => nc.close(), async () => deployment.stop(), async () => nats.stop());
  return { deployment, js: jetstream(nc), gateway: () => deployment.gatewayUrl };
}

const submissionsOf = async (js: ReturnType<typeof jetstream>, flowId: string) => (await readFlowHistory(js, topo, flowId)).filter((e) => e.event.type === 'flow.submitted');

describe('sub-flows survive a crash of the planner', () => {
  it('a child submitted just before the planner died is the child the restarted planner waits for: one child, one submission', async () => {
    const { deployment, js, gateway } = await setUp();
    await deployment.kill('planner');
    const [parent] = await submitAll(gateway, [parentFlow(0)]);
    // What the planner had done before dying: the child submitted, the parent's wait not yet stored.
    const parsed = validateFlow(CHILD);
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
    const childId = childFlowId(parent!, 'child');
    expect(await submitFlow(js, topo, { definition: parsed.flow, flowId: childId, origin: { parent: { flow_id: parent!, task_id: 'child', depth: 1 } } })).toEqual({ flowId: childId, created: true });
    await deployment.restart('planner');

    await expectSettled(gateway, [parent!]);
    const result = (await (await fetch(`${gateway()}/api/v1/flows/${parent}`)).json()) as any;
    expect(result.status).toBe('succeeded');
    expect(result.tasks.find((t: any) => t.id === 'child').output).toMatchObject({ flow_id: childId, state: 'succeeded', outputs: { one: { n: 1 }, two: 2 } });
    expect(await submissionsOf(js, childId)).toHaveLength(1);
  });

  it('kill -9 the planner again and again while 30 parents start children: each parent has exactly one child, run once', async () => {
    const { deployment, js, gateway } = await setUp();
    const submitting = submitAll(gateway, Array.from({ length: 30 }, (_, i) => parentFlow(i)));
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 400 + 300 * i));
      await deployment.restart('planner');
    }
    const parents = await submitting;
    await expectSettled(gateway, parents);
    for (const parent of parents) {
      const view = (await (await fetch(`${gateway()}/api/v1/flows/${parent}`)).json()) as any;
      expect({ parent, status: view.status }).toEqual({ parent, status: 'succeeded' });
      const childId = childFlowId(parent, 'child');
      expect(view.tasks.find((t: any) => t.id === 'child').output.flow_id).toBe(childId);
      expect(await submissionsOf(js, childId)).toHaveLength(1);
      const childEvents = (await readFlowHistory(js, topo, childId)).map((e) => e.event);
      // Each child task ran once: one start per task.
      expect(childEvents.filter((e) => e.type === 'task.started').map((e) => ('task_id' in e ? e.task_id : '')).sort()).toEqual(['one', 'two']);
      const parentWaits = (await readFlowHistory(js, topo, parent)).filter((e) => e.event.type === 'task.waiting');
      expect(parentWaits).toHaveLength(1);
    }
    await waitFor('every child to be settled in its view', async () => {
      for (const parent of parents) {
        const child = (await (await fetch(`${gateway()}/api/v1/flows/${childFlowId(parent, 'child')}`)).json()) as any;
        if (child.status !== 'succeeded') return undefined;
      }
      return true;
    }, 30_000);
  });
});
