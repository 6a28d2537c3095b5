import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateApiKey } from '@taskstream/nats';
import { freePort, NatsServer, waitFor } from '@taskstream/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { ALL_SERVICES, Deployment, FAST_FAILOVER } from '../support/deployment.js';

/*
 * Templates through every service as its own process: versions made by PUT, runs through REST and
 * the CLI with params checked against the schema, the template recorded in the run's history and
 * view, and the flows list filtered by it.
 */

const ADMIN = generateApiKey().key;

const TEMPLATE = {
  description: 'greets a service',
  params_schema: {
    type: 'object',
    properties: { service: { type: 'string', minLength: 1 }, replicas: { type: 'integer', minimum: 1, default: 2 }, canary: { type: 'boolean' } },
    required: ['service'],
    additionalProperties: false,
  },
  flow: {
    name: 'greet',
    tasks: [
      { id: 'hello', executor: 'shell', config: { command: 'echo "hello ${params.service} x${params.replicas}"' } },
      { id: 'done', executor: 'noop', depends_on: ['hello'], config: { output: { canary: '${params.canary}' } } },
    ],
  },
};

describe('templates through the services', () => {
  let nats: NatsServer;
  let deployment: Deployment;
  let base: string;
  let keyed: string;
  let dir: string;

  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}, url = base) => {
    const response = await fetch(`${url}${path}`, { method, headers: { ...(body !== undefined && { 'content-type': 'application/json' }), ...headers }, ...(body !== undefined && { body: JSON.stringify(body) }) });
    const text = await response.text();
    return { status: response.status, body: text === '' ? undefined : JSON.parse(text), headers: response.headers };
  };
  const settled = (id: string): Promise<any> =>
    waitFor(`flow ${id} to finish`, async () => {
      const view = (await call('GET', `/api/v1/flows/${id}`)).body;
      return ['succeeded', 'failed', 'cancelled'].includes(view?.status) ? view : undefined;
    }, 30_000);
  const cli = (args: string[]) => runCli([...args, '--server', base]);

  beforeAll(async () => {
    nats = await NatsServer.start();
    const keyedPort = await freePort();
    deployment = await Deployment.start(nats.url, [...ALL_SERVICES, ['keyed', 'gateway', { TASKSTREAM_AUTH: 'keys', TASKSTREAM_BOOTSTRAP_ADMIN_KEY: ADMIN, TASKSTREAM_PORT: String(keyedPort) }]], FAST_FAILOVER);
    base = deployment.gatewayUrl;
    keyed = `http://127.0.0.1:${keyedPort}`;
    await deployment.ready(keyed);
    dir = mkdtempSync(join(tmpdir(), 'taskstream-templates-'));
  });
  afterAll(async () => {
    await deployment?.stop();
    await nats?.stop();
  });

  it('versions a template: a change creates the next version, an unchanged PUT none; each version stays readable', async () => {
    const first = await call('PUT', '/api/v1/templates/greet', TEMPLATE);
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ name: 'greet', version: 1, created: true });
    expect(first.headers.get('location')).toBe('/api/v1/templates/greet?version=1');
    // The same template with its keys in another order is unchanged.
    const same = await call('PUT', '/api/v1/templates/greet', { flow: TEMPLATE.flow, params_schema: TEMPLATE.params_schema, description: TEMPLATE.description });
    expect(same.status).toBe(200);
    expect(same.body).toMatchObject({ version: 1, created: false });
    const changed = { ...TEMPLATE, description: 'greets a service, version 2' };
    expect((await call('PUT', '/api/v1/templates/greet', changed)).body).toMatchObject({ version: 2, created: true });
    expect((await call('PUT', '/api/v1/templates/greet', TEMPLATE)).body).toMatchObject({ version: 3, created: true });

    expect((await call('GET', '/api/v1/templates/greet')).body).toMatchObject({ name: 'greet', version: 3, flow: TEMPLATE.flow, params_schema: TEMPLATE.params_schema });
    expect((await call('GET', '/api/v1/templates/greet?version=2')).body.description).toBe('greets a service, version 2');
    expect((await call('GET', '/api/v1/templates/greet/versions')).body.versions.map((v: any) => v.version)).toEqual([3, 2, 1]);
    expect((await call('GET', '/api/v1/templates')).body.templates).toEqual([expect.objectContaining({ name: 'greet', version: 3 })]);
    const missing = await call('GET', '/api/v1/templates/greet?version=9');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('TEMPLATE_VERSION_NOT_FOUND');
    expect((await call('GET', '/api/v1/templates/nope')).body.error.code).toBe('TEMPLATE_NOT_FOUND');
  });

  it('refuses an invalid template with every problem, references checked against the schema', async () => {
    const bad = await call('PUT', '/api/v1/templates/broken', {
      params_schema: { type: 'object', properties: { env: { type: 'string' } } },
      flow: { tasks: [{ id: 'a', executor: 'shell', config: { command: 'deploy ${params.region}' } }, { id: 'b', executor: 'noop', depends_on: ['zz'] }] },
      extra: true,
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('INVALID_TEMPLATE');
    expect(bad.body.error.problems).toEqual([{ path: 'extra', message: expect.stringMatching(/^unknown field/) }]);
    const graph = await call('PUT', '/api/v1/templates/broken', {
      params_schema: { type: 'array' },
      flow: { params: { a: 1 }, tasks: [{ id: 'a', executor: 'shell', config: {} }, { id: 'b', executor: 'noop', depends_on: ['zz'] }] },
    });
    expect(graph.body.error.problems.map((p: any) => p.path)).toEqual(['flow.params', 'params_schema.type', 'flow.tasks[0].config', 'flow.tasks[1].depends_on[0]']);
    // References are checked once the graph is valid, as for a submission.
    const refs = await call('PUT', '/api/v1/templates/broken', {
      params_schema: { type: 'object', properties: { env: { type: 'string' } } },
      flow: { tasks: [{ id: 'a', executor: 'shell', config: { command: 'deploy ${params.region} to ${params.env}' } }] },
    });
    expect(refs.body.error.problems).toEqual([
      { path: 'flow.tasks[0].config.command', message: expect.stringMatching(/^\$\{params\.region\} refers to param "region", which params_schema does not declare/) },
    ]);
    expect((await call('GET', '/api/v1/templates/broken')).status).toBe(404);
  });

  it('runs a template through REST: params checked (every problem with its path), the template recorded in history, view and list', async () => {
    const refused = await call('POST', '/api/v1/templates/greet/runs', { params: { service: '', replicas: 0, colour: 'red' } });
    expect(refused.status).toBe(400);
    expect(refused.body.error.code).toBe('INVALID_PARAMS');
    expect(refused.body.error.problems.map((p: any) => p.path).sort()).toEqual(['params.colour', 'params.replicas', 'params.service']);

    const run = await call('POST', '/api/v1/templates/greet/runs', { params: { service: 'api', canary: true }, version: 2 });
    expect(run.status).toBe(202);
    expect(run.body).toMatchObject({ status: 'submitted', tasks: 2, template: { name: 'greet', version: 2 }, replayed: false });
    expect(run.headers.get('location')).toBe(`/api/v1/flows/${run.body.flow_id}`);
    const view = await settled(run.body.flow_id);
    expect(view.status).toBe('succeeded');
    expect(view.origin).toEqual({ template: { name: 'greet', version: 2 } });
    expect(view.tasks.find((t: any) => t.id === 'hello').output.stdout).toBe('hello api x2\n');
    expect(view.tasks.find((t: any) => t.id === 'done').output).toEqual({ canary: true });
    const events = (await call('GET', `/api/v1/flows/${run.body.flow_id}/events`)).body.events;
    expect(events[0].event.data).toMatchObject({ origin: { template: { name: 'greet', version: 2 } }, definition: { params: { service: 'api', replicas: 2, canary: true } } });

    const other = await call('POST', '/api/v1/flows', { name: 'plain', tasks: [{ id: 'a', executor: 'noop' }] });
    expect(other.status).toBe(202);
    await waitFor('the list to show both flows', async () => ((await call('GET', '/api/v1/flows')).body.flows.length >= 2 ? true : undefined));
    const listed = await waitFor('the template run in the list', async () => {
      const flows = (await call('GET', '/api/v1/flows?template=greet')).body.flows;
      return flows.length > 0 ? flows : undefined;
    });
    expect(listed.map((f: any) => f.flow_id)).toEqual([run.body.flow_id]);
    expect(listed[0].origin).toEqual({ template: { name: 'greet', version: 2 } });
    expect((await call('GET', '/api/v1/flows?schedule=nightly')).body.flows).toEqual([]);
    expect((await call('GET', '/api/v1/flows?template=no%20such')).body.error.code).toBe('INVALID_PARAMETER');

    // An Idempotency-Key makes a retried run answer the first.
    const once = await call('POST', '/api/v1/templates/greet/runs', { params: { service: 'web' } }, { 'idempotency-key': 'greet-web-1' });
    const twice = await call('POST', '/api/v1/templates/greet/runs', { params: { service: 'web' } }, { 'idempotency-key': 'greet-web-1' });
    expect(twice.body).toMatchObject({ flow_id: once.body.flow_id, replayed: true });
  });

  it('runs a template through the CLI: put from YAML, list, show NAME@v, run with --param and --follow', async () => {
    const file = join(dir, 'report.yaml');
    writeFileSync(
      file,
      [
        'name: report',
        'description: counts',
        'params_schema:',
        '  type: object',
        '  properties:',
        '    count: { type: integer, minimum: 1 }',
        '    label: { type: string }',
        '  required: [count, label]',
        'flow:',
        '  tasks:',
        '    - id: count',
        '      executor: shell',
        '      config: { command: "echo ${params.label}=${params.count}" }',
        '',
      ].join('\n'),
    );
    const put = await cli(['template', 'put', file]);
    expect(put.code, put.stderr).toBe(0);
    expect(put.stdout.trim()).toBe('template report version 1 created');
    expect((await cli(['template', 'put', file])).stdout.trim()).toBe('template report unchanged (version 1)');

    const list = await cli(['template', 'list']);
    expect(list.stdout).toMatch(/^report\s+1\s+\S+\s+counts$/m);
    expect(list.stdout).toMatch(/^greet\s+3\s/m);
    const show = await cli(['template', 'show', 'greet@2']);
    expect(JSON.parse(show.stdout)).toMatchObject({ name: 'greet', version: 2, description: 'greets a service, version 2' });
    const versions = await cli(['template', 'show', 'greet', '--versions']);
    expect(versions.stdout.trim().split('\n').map((line) => line.split(/\s+/)[0])).toEqual(['3', '2', '1']);
    const noVersion = await cli(['template', 'show', 'greet@7']);
    expect(noVersion.code).toBe(2);
    expect(noVersion.stderr).toContain('template "greet" has no version 7');

    // "007" stays text for a string param; "3" is read as the integer the schema asks for.
    const run = await cli(['template', 'run', 'report', '--param', 'count=3', '--param', 'label=007', '--follow']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^Flow [0-9A-Z]{26} {2}submitted from template report version 1 \(1 task\)$/m);
    expect(run.stdout).toMatch(/\[count\] +succeeded/);
    const flowId = run.stdout.match(/Flow ([0-9A-Z]{26})/)![1]!;
    const view = (await call('GET', `/api/v1/flows/${flowId}`)).body;
    expect(view.tasks[0].output.stdout).toBe('007=3\n');
    expect(view.origin).toEqual({ template: { name: 'report', version: 1 } });

    const bad = await cli(['template', 'run', 'report', '--param', 'count=zero']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('params.count: must be integer');
    expect(bad.stderr).toContain('params.label: is required');

    const paramsFile = join(dir, 'params.json');
    writeFileSync(paramsFile, JSON.stringify({ count: 1, label: 'from-file' }));
    const quiet = await cli(['template', 'run', 'report@1', '--params-file', paramsFile, '--param', 'label=x']);
    expect(quiet.code, quiet.stderr).toBe(0);
    expect(quiet.stdout.trim()).toMatch(/^[0-9A-Z]{26}$/);
    const runs = await waitFor('both runs in the list', async () => {
      const listed = await cli(['flows', '--template', 'report']);
      return listed.stdout.trim().split('\n').length === 2 ? listed.stdout : undefined;
    });
    expect(runs).toContain(flowId);
    expect(runs).toContain(quiet.stdout.trim());
    // --param wins over the file.
    const fromFile = await settled(quiet.stdout.trim());
    expect(fromFile.tasks[0].output.stdout).toBe('x=1\n');
  });

  it('CLI and REST with API keys: the key is sent with --api-key; deleting a template removes every version', async () => {
    const submitKey = (await call('POST', '/api/v1/keys', { name: 'ci', scope: 'submit' }, { authorization: `Bearer ${ADMIN}` }, keyed)).body.key;
    const denied = await runCli(['template', 'list', '--server', keyed]);
    expect(denied.code).toBe(2);
    expect(denied.stderr).toMatch(/a valid API key is required/);
    const listed = await runCli(['template', 'list', '--server', keyed, '--api-key', submitKey]);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toMatch(/^greet\s+3/m);

    const removed = await runCli(['template', 'delete', 'report', '--server', keyed, '--api-key', submitKey]);
    expect(removed.code, removed.stderr).toBe(0);
    expect((await call('GET', '/api/v1/templates/report?version=1')).body.error.code).toBe('TEMPLATE_NOT_FOUND');
    const run = await call('POST', '/api/v1/templates/report/runs', { params: { count: 1, label: 'x' } });
    expect(run.status).toBe(404);
    expect(run.body.error.code).toBe('TEMPLATE_NOT_FOUND');
  });
});
