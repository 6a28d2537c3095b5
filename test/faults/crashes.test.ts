import { NatsServer } from '@taskstream/testing';
import { describe, expect, it } from 'vitest';
import { ALL_SERVICES, cleanupAfterEach, Deployment, expectIdle, expectSettled, FAST_FAILOVER, faultFlow, idempotentSink, recordMeasurement, submitAll } from '../support/deployment.js';

const cleanup = cleanupAfterEach();

async function setUp(services = ALL_SERVICES, natsUrl?: string) {
  const nats = natsUrl ? undefined : await NatsServer.start();
  const deployment = await Deployment.start(natsUrl ?? nats!.url, services, FAST_FAILOVER);
  const sink = await idempotentSink();
  cleanup(async () => deployment.stop(), async () => sink.close(), async () => nats?.stop());
  return { nats, deployment, sink, gateway: () => deployment.gatewayUrl };
}

describe('crash anything, lose nothing', () => {
  it('kill -9 each service in turn while 200 flows run: every flow ends once, views equal the log', async () => {
    const { deployment, sink, gateway } = await setUp();
    const submitting = submitAll(gateway, Array.from({ length: 200 }, (_, i) => faultFlow(sink.url, i)));
    for (const name of ['planner', 'dispatcher', 'executor', 'projector', 'gateway']) {
      await new Promise((r) => setTimeout(r, 700));
      await deployment.restart(name);
    }
    const ids = await submitting;
    expect(new Set(ids).size).toBe(200);
    const settled = await expectSettled(gateway, ids);
    await expectIdle(gateway);
    expect(sink.effects.size).toBe(400);
    recordMeasurement('kill each service in turn', { ...settled, sink_calls: sink.calls, sink_effects: sink.effects.size, duplicate_calls: sink.calls - sink.effects.size });
  });

  it('two instances of each service, one of each killed for good', async () => {
    const doubled: Array<[string, string]> = ALL_SERVICES.flatMap(([name, service]) => [[`${name}-1`, service], [`${name}-2`, service]] as Array<[string, string]>);
    const { deployment, sink } = await setUp(doubled);
    const second = `http://127.0.0.1:${(deployment as any).specs.get('gateway-2').env.TASKSTREAM_PORT}`;
    let current = deployment.gatewayUrl;
    const gateway = () => current;
    const submitting = submitAll(gateway, Array.from({ length: 100 }, (_, i) => faultFlow(sink.url, i)));
    await new Promise((r) => setTimeout(r, 1000));
    for (const [name] of ALL_SERVICES) await deployment.kill(`${name}-1`);
    current = second;
    const ids = await submitting;
    const settled = await expectSettled(gateway, ids);
    await expectIdle(gateway);
    expect(sink.effects.size).toBe(200);
    recordMeasurement('one of two instances killed for good', { ...settled, sink_calls: sink.calls, duplicate_calls: sink.calls - sink.effects.size });
  });

  it('kill -9 and restart nats-server mid-run (single node, file storage)', async () => {
    const { nats, sink, gateway } = await setUp();
    const ids = await submitAll(gateway, Array.from({ length: 60 }, (_, i) => faultFlow(sink.url, i)));
    await nats!.restart();
    const settled = await expectSettled(gateway, ids);
    // Queue statistics are the sum of each flow's summary, a function of its fold: exact without a rebuild.
    await expectIdle(gateway);
    expect(sink.effects.size).toBe(120);
    recordMeasurement('nats-server killed and restarted', { ...settled, sink_calls: sink.calls, duplicate_calls: sink.calls - sink.effects.size });
  });
});
