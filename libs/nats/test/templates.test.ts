import { jetstream } from '@nats-io/jetstream';
import { MAX_TEMPLATE_VERSIONS } from '@taskstream/domain';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectNats, type NatsConnection } from '../src/connection.js';
import { NatsServer } from '@taskstream/testing';
import { TemplateStore } from '../src/templates.js';
import { ensureTopology, topology } from '../src/topology.js';

const body = (command: string, description?: string) => ({
  flow: { tasks: [{ id: 'a', executor: 'shell', config: { command } }] },
  params_schema: { type: 'object', properties: { env: { type: 'string' } } },
  ...(description !== undefined && { description }),
});

describe('TemplateStore (real nats-server)', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let store: TemplateStore;

  beforeAll(async () => {
    server = await NatsServer.start();
    nc = await connectNats({ servers: server.url, name: 'templates-test' });
    const topo = topology({ prefix: 'tpl' });
    await ensureTopology(nc, topo);
    store = await TemplateStore.open(jetstream(nc), topo);
  });

  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  it('creates a version per change, none for an unchanged put, and reads each back', async () => {
    const first = await store.put('deploy', body('echo 1', 'one'));
    expect(first).toMatchObject({ created: true, template: { name: 'deploy', version: 1, description: 'one' } });
    // Same definition with keys in another order: no new version.
    const same = await store.put('deploy', { description: 'one', params_schema: body('').params_schema, flow: body('echo 1').flow });
    expect(same).toEqual({ created: false, template: first.template });
    const second = await store.put('deploy', body('echo 2', 'two'));
    expect(second).toMatchObject({ created: true, template: { version: 2 } });
    expect((await store.latest('deploy'))?.version).toBe(2);
    expect((await store.get('deploy', 1))?.flow).toEqual(body('echo 1').flow);
    expect((await store.resolve('deploy'))?.version).toBe(2);
    expect((await store.resolve('deploy', 1))?.version).toBe(1);
    expect(await store.resolve('deploy', 3)).toBeUndefined();
    expect((await store.versions('deploy')).map((v) => [v.version, v.description])).toEqual([
      [2, 'two'],
      [1, 'one'],
    ]);
    expect(await store.list()).toEqual([expect.objectContaining({ name: 'deploy', version: 2, description: 'two' })]);
  });

  it('gives each of several racing puts its own version', async () => {
    const results = await Promise.all([1, 2, 3, 4].map((n) => store.put('race', body(`echo ${n}`))));
    expect(results.map((r) => r.template.version).sort()).toEqual([1, 2, 3, 4]);
    expect((await store.latest('race'))?.version).toBe(4);
  });

  it('deletes a template with its versions; the name numbers on when used again', async () => {
    await store.put('gone', body('echo 1'));
    expect(await store.delete('gone')).toBe(true);
    expect(await store.delete('gone')).toBe(false);
    expect(await store.latest('gone')).toBeUndefined();
    expect(await store.get('gone', 1)).toBeUndefined();
    expect(await store.versions('gone')).toEqual([]);
    expect((await store.list()).map((t) => t.name)).not.toContain('gone');
    expect((await store.put('gone', body('echo 1'))).template.version).toBe(2);
  });

  it(`keeps the last ${MAX_TEMPLATE_VERSIONS} versions`, async () => {
    for (let n = 1; n <= MAX_TEMPLATE_VERSIONS + 2; n++) await store.put('many', body(`echo ${n}`));
    const versions = await store.versions('many');
    expect(versions).toHaveLength(MAX_TEMPLATE_VERSIONS);
    expect(versions[0]!.version).toBe(MAX_TEMPLATE_VERSIONS + 2);
    expect(await store.get('many', 2)).toBeUndefined();
    expect((await store.get('many', 3))?.version).toBe(3);
  }, 60_000);

  it('refuses a malformed name', async () => {
    await expect(store.latest('a.b')).rejects.toThrow(/invalid template name "a.b": a template name is 1 to 64 characters/);
  });
});
