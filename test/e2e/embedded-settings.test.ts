import { startStack, type Stack } from '@taskstream/cli';
import { DISPATCHER_SETTINGS } from '@taskstream/dispatcher';
import { connectNats, jetstreamManager, topology, type NatsConnection } from '@taskstream/nats';
import { NatsServer } from '@taskstream/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The embedded stack's services run with what their own declarations say: seen from NATS, in the
 * consumers they create (ack wait, nanoseconds), with the declared default and with the environment's value.
 */
describe('the embedded stack starts its services with their declared settings', () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  const stacks: Stack[] = [];
  beforeAll(async () => {
    nats = await NatsServer.start();
    nc = await connectNats({ servers: nats.url, name: 'embedded-settings-test' });
  });
  afterAll(async () => {
    for (const stack of stacks) await stack.stop();
    await nc?.close();
    await nats?.stop();
  });

  const ackWaits = async (prefix: string, env: NodeJS.ProcessEnv) => {
    const stack = await startStack({ natsUrl: nats.url, prefix, logLevel: 'silent', env });
    stacks.push(stack);
    const topo = topology({ prefix });
    const jsm = await jetstreamManager(nc);
    const ackWaitMs = async (stream: string, consumer: string) => ((await jsm.consumers.info(stream, consumer)).config.ack_wait ?? 0) / 1e6;
    return { dispatcher: await ackWaitMs(topo.eventsStream, 'dispatcher'), executor: await ackWaitMs(topo.workStream, 'exec-all') };
  };

  it('the default when the environment says nothing, and the environment when it does', async () => {
    const declared = Number(DISPATCHER_SETTINGS.ackWaitMs.default);
    expect(await ackWaits('plain', {})).toEqual({ dispatcher: declared, executor: declared });
    expect(await ackWaits('tuned', { TASKSTREAM_ACK_WAIT_MS: '12000' })).toEqual({ dispatcher: 12_000, executor: 12_000 });
  });
});
