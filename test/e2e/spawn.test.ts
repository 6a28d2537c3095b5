import { NatsServer } from '@taskstream/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_SERVICES, Deployment } from '../support/deployment.js';
import { gatewayApi } from '../support/gateway-api.js';

/*
 * Tasked's spawn through every service as its own process: a shell step prints task definitions,
 * the flow grows by them (flow.tasks_added), and a task depending on a promised output runs after it.
 */

/** A spawn task whose shell step prints `tasks` as JSON (Tasked's shorthand config); passed in base64, so its references stay the generated tasks' own. */
const printing = (tasks: unknown) => ({ command: 'printf "%s" "$TASKS" | base64 -d', env: { TASKS: Buffer.from(JSON.stringify(tasks)).toString('base64') } });

describe('spawn through the services', () => {
  let nats: NatsServer;
  let deployment: Deployment;
  let base: string;

  const api = gatewayApi(() => base);
  const { submit, events } = api;
  const settled = (id: string) => api.settled(id, 60_000);

  beforeAll(async () => {
    nats = await NatsServer.start();
    deployment = await Deployment.start(nats.url, ALL_SERVICES, { TASKSTREAM_ALLOW_SHELL: 'true' });
    base = deployment.gatewayUrl;
  });
  afterAll(async () => {
    await deployment?.stop();
    await nats?.stop();
  });

  const flow = {
    tasks: [
      { id: 'prepare', executor: 'noop', config: { output: { region: 'eu' } } },
      {
        id: 'gen',
        executor: 'spawn',
        depends_on: ['prepare'],
        spawn_output: ['report'],
        config: printing([
          { id: 'fetch', executor: 'noop', config: { output: { rows: 3 } } },
          { id: 'load', executor: 'transform', depends_on: ['fetch'], config: { expr: 'tasks["gen/fetch"].output.rows + 1' } },
          { id: 'report', executor: 'noop', depends_on: ['load', 'prepare'], config: { output: 'rows: ${tasks["gen/load"].output}, region ${tasks.prepare.output.region}' } },
        ]),
      },
      { id: 'after', executor: 'noop', depends_on: ['gen/report'], config: { output: 'done' } },
    ],
  };

  it('adds a sub-DAG whose tasks depend on each other, and a task depending on its promised output runs after it', async () => {
    const id = await submit(flow);
    const done = await settled(id);
    expect(done.tasks.map((t: any) => [t.id, t.status])).toEqual([
      ['prepare', 'succeeded'],
      ['gen', 'succeeded'],
      ['after', 'succeeded'],
      ['gen/fetch', 'succeeded'],
      ['gen/load', 'succeeded'],
      ['gen/report', 'succeeded'],
    ]);
    expect(done.status).toBe('succeeded');
    const byId = Object.fromEntries(done.tasks.map((t: any) => [t.id, t]));
    expect(byId.gen.output).toMatchObject({ generated_count: 3, inner_output: { exit_code: 0 } });
    expect(byId['gen/report'].output).toBe('rows: 4, region eu');
    expect(byId['gen/fetch'].depends_on).toEqual(['gen']);
    const log = await events(id);
    const added = log.filter((e) => e.type === 'flow.tasks_added');
    expect(added).toHaveLength(1);
    expect(added[0].data).toMatchObject({ by_task: 'gen', kind: 'spawn', part: 0 });
    const at = (type: string, task: string) => log.findIndex((e) => e.type === type && e.task_id === task);
    expect(at('task.succeeded', 'gen/report')).toBeLessThan(at('task.ready', 'after'));
    const graph = await (await fetch(`${base}/api/v1/flows/${id}/graph`)).text();
    expect(graph).toContain('"gen/load" -> "gen/report";');

    // A rerun reusing the spawn task adds its tasks again, from its recorded output.
    const rerun = await fetch(`${base}/api/v1/flows/${id}/rerun`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ from: 'after' }) });
    expect(rerun.status).toBe(202);
    const again = await settled(((await rerun.json()) as any).flow_id);
    expect(again.status).toBe('succeeded');
    expect(again.tasks.map((t: any) => [t.id, t.reused ?? false])).toEqual([
      ['prepare', true],
      ['gen', true],
      ['after', false],
      ['gen/fetch', false],
      ['gen/load', false],
      ['gen/report', false],
    ]);
  });

  it('fails the spawning task listing every problem of what it generated, and the tasks waiting for its outputs do not run', async () => {
    const id = await submit({
      tasks: [
        { id: 'gen', executor: 'spawn', spawn_output: ['report'], config: printing([{ id: 'a', executor: 'nope' }, { id: 'b', executor: 'noop', depends_on: ['missing'] }]) },
        { id: 'after', executor: 'noop', depends_on: ['gen/report'] },
      ],
    });
    const done = await settled(id);
    expect(done.status).toBe('failed');
    const byId = Object.fromEntries(done.tasks.map((t: any) => [t.id, t]));
    expect(byId.gen.status).toBe('failed');
    expect(byId.gen.error).toMatchObject({ code: 'SPAWN_INVALID', retryable: false });
    expect(byId.gen.error.message).toContain('spawn injection failed (');
    expect(byId.gen.error.message).toContain('"missing", which is not a task of the flow');
    expect(byId.gen.error.message).toContain('spawned[0].executor: unknown executor "nope"');
    expect(byId.gen.error.message).toContain('spawn_output promises "report"');
    expect(byId.gen.attempts).toHaveLength(1);
    expect(byId.after.status).toBe('upstream_failed');
    expect(done.total).toBe(2);
  });
});
