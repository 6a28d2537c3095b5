import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_PARTITIONS, partitionOf } from '@taskstream/domain';
import { AckPolicy, connectNats, DeliverPolicy, jetstream, type NatsConnection } from '@taskstream/nats';
import { NatsServer, waitFor } from '@taskstream/testing';
import { describe, expect, it } from 'vitest';
import { ALL_SERVICES, cleanupAfterEach, Deployment, expectSettled, FAST_FAILOVER, submitAll } from '../support/deployment.js';

const cleanup = cleanupAfterEach();

async function setUp() {
  const nats = await NatsServer.start();
  const deployment = await Deployment.start(nats.url, ALL_SERVICES, FAST_FAILOVER);
  const nc = await connectNats({ servers: nats.url, name: 'replay-faults' });
  const dir = await mkdtemp(join(tmpdir(), 'ts-replay-'));
  cleanup(async () => deployment.stop(), async () => nc.close(), async () => nats.stop(), async () => rm(dir, { recursive: true, force: true }));
  return { nats, nc, deployment, dir, gateway: () => deployment.gatewayUrl };
}

async function eventTypes(nc: NatsConnection, flowId: string): Promise<string[]> {
  const consumer = await jetstream(nc).consumers.get('TS_EVENTS', { filter_subjects: `ts.evt.${partitionOf(flowId, DEFAULT_PARTITIONS)}.${flowId}.>` });
  const out: string[] = [];
  if ((await consumer.info()).num_pending === 0) return out;
  const messages = await consumer.consume();
  for await (const m of messages) {
    out.push(m.json<{ type: string }>().type);
    if (m.info.pending === 0) break;
  }
  return out;
}

describe('a poison flow and a replayed partition re-run nothing', () => {
  it('refuses the flow whose task could not travel in its own events, at submission', async () => {
    const { gateway } = await setUp();
    // It fits in the request and in flow.submitted, but its task.ready would not fit in a message.
    const response = await fetch(`${gateway()}/api/v1/flows`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ tasks: [{ id: 'big', executor: 'noop', config: { output: 'x'.repeat(700_000) } }] }),
    });
    expect(response.status).toBe(413);
    expect(((await response.json()) as any).error.code).toBe('FLOW_TOO_LARGE');
  });

  it('sets aside an event too large for a letter by reference, and the partition goes on', async () => {
    const { nc, gateway } = await setUp();
    const flowId = '01JBBBBBBBBBBBBBBBBBBBBBBB';
    const subject = `ts.evt.${partitionOf(flowId, DEFAULT_PARTITIONS)}.${flowId}.task.ready`;
    const ack = await jetstream(nc).publish(subject, `{"broken": "${'x'.repeat(800_000)}`);
    const [after] = await submitAll(gateway, [{ tasks: [{ id: 'a', executor: 'noop' }] }]);
    await expectSettled(gateway, [after!]);
    const letter = await waitFor('the letter', async () => {
      const { letters } = (await (await fetch(`${gateway()}/api/v1/dlq?source=planner`)).json()) as any;
      return letters.find((l: any) => l.stream_seq === ack.seq);
    }, 30_000, 200);
    expect(letter).toMatchObject({ encoding: 'omitted', data: '', bytes: expect.any(Number), stream: 'TS_EVENTS', subject });
    expect(letter.bytes).toBeGreaterThan(800_000);
  });

  it('replaying a planner partition from its first event starts no finished flow again and runs no step twice', async () => {
    const { nc, deployment, dir, gateway } = await setUp();
    const marker = join(dir, 'ran');
    const flows = Array.from({ length: 3 }, (_, i) => ({
      tasks: [
        { id: 'first', executor: 'shell', config: { command: `echo ${i}-first >> ${marker}` } },
        { id: 'second', executor: 'shell', config: { command: `echo ${i}-second >> ${marker}` }, depends_on: ['first'] },
      ],
    }));
    const ids = await submitAll(gateway, flows);
    await expectSettled(gateway, ids);
    const before = await Promise.all(ids.map((id) => eventTypes(nc, id)));

    // De-duplication by message id no longer hides a repeat: the window passes in a second.
    const jsm = await jetstream(nc).jetstreamManager();
    const stream = await jsm.streams.info('TS_EVENTS');
    await jsm.streams.update('TS_EVENTS', { ...stream.config, duplicate_window: 1_000_000_000 });
    await new Promise((r) => setTimeout(r, 1_500));

    // An operator (or a bug) resets every planner partition to the first event.
    await deployment.processes.get('planner')!.stop('SIGKILL');
    for (let p = 0; p < DEFAULT_PARTITIONS; p++) {
      const name = `planner-p${p}`;
      const info = await jsm.consumers.info('TS_EVENTS', name).catch(() => undefined);
      if (!info) continue;
      await jsm.consumers.delete('TS_EVENTS', name);
      await jsm.consumers.add('TS_EVENTS', { ...info.config, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: 1 });
    }
    await deployment.restart('planner');

    // A new flow after the replay proves the planner has worked through everything before it.
    const [later] = await submitAll(gateway, [{ tasks: [{ id: 'later', executor: 'shell', config: { command: `echo later >> ${marker}` } }] }]);
    await expectSettled(gateway, [later!]);
    await waitFor('the replayed partitions to be acknowledged', async () => {
      for (let p = 0; p < DEFAULT_PARTITIONS; p++) {
        const info = await jsm.consumers.info('TS_EVENTS', `planner-p${p}`).catch(() => undefined);
        if (info && (info.num_pending > 0 || info.num_ack_pending > 0)) return undefined;
      }
      return true;
    }, 60_000, 250);

    expect(await Promise.all(ids.map((id) => eventTypes(nc, id)))).toEqual(before);
    const lines = (await readFile(marker, 'utf8')).trim().split('\n').sort();
    expect(lines).toEqual(['0-first', '0-second', '1-first', '1-second', '2-first', '2-second', 'later']);
  });
});
