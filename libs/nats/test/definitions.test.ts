import { Objm } from '@nats-io/obj';
import type { FlowDefinition, FlowEvent } from '@taskstream/domain';
import { NatsServer } from '@taskstream/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectNats, Definitions, jetstream, topology, type NatsConnection } from '../src/index.js';

/** A definition stored in about `bytes` bytes. */
const definition = (name: string, bytes: number) => ({ name, queue: 'default', tasks: [{ id: 'a', executor: 'noop', config: { output: 'x'.repeat(bytes) } }] }) as unknown as FlowDefinition;

describe('the definitions store', () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  const topo = topology({ prefix: 'defs' });
  beforeAll(async () => {
    nats = await NatsServer.start();
    nc = await connectNats({ servers: nats.url, name: 'definitions-test' });
  });
  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });

  /** Offloads a definition of about `bytes` bytes for a new flow; returns its submission as the log would hold it. */
  async function submitted(definitions: Definitions, flowId: string, bytes: number): Promise<FlowEvent> {
    const ref = await definitions.offload(flowId, { definition: definition(flowId, bytes) });
    return { type: 'flow.submitted', flow_id: flowId, id: `${flowId}-s`, version: 1, time: new Date().toISOString(), data: { definition_ref: ref } } as unknown as FlowEvent;
  }
  const removeObject = async (flowId: string) => (await new Objm(jetstream(nc)).open(topo.definitionsBucket)).delete(flowId);
  const tasksOf = async (definitions: Definitions, event: FlowEvent) => {
    const hydrated = await definitions.hydrate(event);
    return hydrated.type === 'flow.submitted' ? hydrated.data.definition?.tasks.length : undefined;
  };

  it('keeps the definitions it read most recently within its byte budget, and reads the others again', async () => {
    const definitions = await Definitions.open(jetstream(nc), topo, { cacheBytes: 25_000 });
    const [a, b, c] = await Promise.all(['A', 'B', 'C'].map((id) => submitted(definitions, `flow-${id}`, 10_000)));
    await tasksOf(definitions, a!);
    await tasksOf(definitions, b!);
    // A again is the most recently used, so C's arrival pushes B out, not A.
    await tasksOf(definitions, a!);
    await tasksOf(definitions, c!);
    await Promise.all(['A', 'B', 'C'].map((id) => removeObject(`flow-${id}`)));
    expect(await tasksOf(definitions, a!)).toBe(1);
    expect(await tasksOf(definitions, c!)).toBe(1);
    await expect(definitions.hydrate(b!)).rejects.toThrow(/the definition of flow flow-B is missing from the definitions store \(object "flow-B"\); restore the defs_definitions object store/);
  });

  it('does not keep a definition larger than its whole budget', async () => {
    const definitions = await Definitions.open(jetstream(nc), topo, { cacheBytes: 25_000 });
    const big = await submitted(definitions, 'flow-big', 30_000);
    expect(await tasksOf(definitions, big)).toBe(1);
    await removeObject('flow-big');
    await expect(definitions.hydrate(big)).rejects.toThrow(/flow-big is missing/);
  });

  it('forgets a released flow\'s definition and reads it again, keeping the others', async () => {
    const definitions = await Definitions.open(jetstream(nc), topo, { cacheBytes: 100_000 });
    const [a, b] = await Promise.all(['RA', 'RB'].map((id) => submitted(definitions, `flow-${id}`, 10_000)));
    await tasksOf(definitions, a!);
    await tasksOf(definitions, b!);
    definitions.release('flow-RA');
    definitions.release('flow-never-held');
    await Promise.all(['RA', 'RB'].map((id) => removeObject(`flow-${id}`)));
    await expect(definitions.hydrate(a!)).rejects.toThrow(/flow-RA is missing/);
    expect(await tasksOf(definitions, b!)).toBe(1);
  });

  it('does not answer from the cache for a submission whose digest differs from what it cached', async () => {
    const definitions = await Definitions.open(jetstream(nc), topo, { cacheBytes: 100_000 });
    const first = await submitted(definitions, 'flow-D', 10_000);
    await tasksOf(definitions, first);
    // Stored again under the same object with other content: the older submission's digest no longer matches.
    const second = await submitted(definitions, 'flow-D', 12_000);
    expect(await tasksOf(definitions, second)).toBe(1);
    await expect(definitions.hydrate(first)).rejects.toThrow(/does not match the digest its submission recorded \(object "flow-D"/);
  });
});
