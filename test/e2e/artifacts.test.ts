import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NatsServer, waitFor } from '@taskstream/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { Deployment } from '../support/deployment.js';

/*
 * Artifacts through every service as its own process: a shell step on one executor stores files,
 * a later task on another executor process (another queue's pool) reads them through
 * ${tasks.x.artifacts.<name>}, the gateway lists and streams them, the CLI downloads them, and a
 * file over the size limit fails its task with a clear error.
 */

const LIMIT = 64 * 1024;
const common = { TASKSTREAM_ALLOW_SHELL: 'true', TASKSTREAM_ARTIFACT_MAX_FILE_BYTES: String(LIMIT), TASKSTREAM_LEASE_MS: '2000', TASKSTREAM_ACK_WAIT_MS: '2000' };
const rows = Array.from({ length: 1000 }, (_, i) => `${i + 1}`).join('\n') + '\n';
const sha = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

describe('artifacts through the services', () => {
  let nats: NatsServer;
  let deployment: Deployment;
  let base: string;
  const scratch = mkdtempSync(join(tmpdir(), 'artifacts-e2e-'));

  const submit = async (flow: unknown): Promise<string> => {
    const response = await fetch(`${base}/api/v1/flows`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(flow) });
    const text = await response.text();
    if (response.status !== 202) throw new Error(`submission failed: ${response.status} ${text}`);
    return JSON.parse(text).flow_id;
  };
  const settled = (id: string): Promise<any> =>
    waitFor(`flow ${id} to finish`, async () => {
      const view: any = await (await fetch(`${base}/api/v1/flows/${id}`)).json();
      return ['succeeded', 'failed', 'cancelled'].includes(view.status) ? view : undefined;
    }, 60_000);
  const events = async (id: string): Promise<any[]> => ((await (await fetch(`${base}/api/v1/flows/${id}/events`)).json()) as any).events.map((e: any) => e.event);
  const task = (view: any, id: string) => view.tasks.find((t: any) => t.id === id);

  beforeAll(async () => {
    nats = await NatsServer.start();
    deployment = await Deployment.start(
      nats.url,
      [
        ['gateway', 'gateway'],
        ['planner', 'planner'],
        ['dispatcher', 'dispatcher'],
        ['projector', 'projector'],
        ['executor-extract', 'executor', { TASKSTREAM_QUEUE: 'extract' }],
        ['executor-load', 'executor', { TASKSTREAM_QUEUE: 'load' }],
      ],
      common,
    );
    base = deployment.gatewayUrl;
  });
  afterAll(async () => {
    await deployment?.stop();
    await nats?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('are written by one step, read by a later one on another executor process, listed and downloaded through the API and the CLI', async () => {
    const id = await submit({
      name: 'etl',
      tasks: [
        {
          id: 'extract',
          queue: 'extract',
          executor: 'shell',
          config: { command: 'mkdir -p "$TASKSTREAM_ARTIFACTS/out" && seq 1 1000 > "$TASKSTREAM_ARTIFACTS/out/rows.csv" && printf "from %s" "$TASKSTREAM_TASK_ID" > "$TASKED_ARTIFACTS/report 1.txt"' },
        },
        {
          id: 'load',
          queue: 'load',
          executor: 'shell',
          depends_on: ['extract'],
          config: {
            command: 'wc -l < "${tasks.extract.artifacts.out/rows.csv}" && cat "${tasks.extract.artifacts["report 1.txt"]}" && cp "${tasks.extract.artifacts.out/rows.csv}" "$TASKSTREAM_ARTIFACTS/copy.csv"',
          },
        },
      ],
    });
    const view = await settled(id);
    expect(view.status, JSON.stringify(view.tasks.map((t: any) => [t.id, t.status, t.error]))).toBe('succeeded');
    expect(task(view, 'load').output.stdout).toBe('1000\nfrom extract');

    // Each task ran on its own queue's executor process, and each file is an event before the success.
    const history = await events(id);
    const startedBy = (t: string) => history.find((e) => e.type === 'task.started' && e.task_id === t).data.executor_id as string;
    expect(startedBy('extract').endsWith(':extract')).toBe(true);
    expect(startedBy('load').endsWith(':load')).toBe(true);
    expect(startedBy('extract').split(':')[1]).not.toBe(startedBy('load').split(':')[1]);
    const ofExtract = history.filter((e) => e.task_id === 'extract').map((e) => e.type);
    expect(ofExtract.slice(-3)).toEqual(['task.artifact_stored', 'task.artifact_stored', 'task.succeeded']);
    expect(history.find((e) => e.type === 'task.ready' && e.task_id === 'load').data.spec.bindings.tasks.extract.artifacts['out/rows.csv']).toMatchObject({ bytes: rows.length, sha256: sha(rows) });
    expect(task(view, 'extract').artifacts).toEqual([
      { name: 'out/rows.csv', bytes: rows.length, sha256: sha(rows), attempt: 1 },
      { name: 'report 1.txt', bytes: 12, sha256: sha('from extract'), attempt: 1 },
    ]);

    const listed: any = await (await fetch(`${base}/api/v1/flows/${id}/artifacts`)).json();
    expect(listed).toEqual({
      flow_id: id,
      artifacts: [
        { name: 'out/rows.csv', task: 'extract', bytes: rows.length, sha256: sha(rows), attempt: 1 },
        { name: 'report 1.txt', task: 'extract', bytes: 12, sha256: sha('from extract'), attempt: 1 },
        { name: 'copy.csv', task: 'load', bytes: rows.length, sha256: sha(rows), attempt: 1 },
      ],
    });
    expect(await (await fetch(`${base}/api/v1/flows/${id}/artifacts?format=names&task=extract`)).json()).toEqual(['out/rows.csv', 'report 1.txt']);

    const download = await fetch(`${base}/api/v1/flows/${id}/artifacts/out/rows.csv`);
    expect(download.status).toBe(200);
    expect(download.headers.get('content-type')).toBe('application/octet-stream');
    expect(download.headers.get('content-length')).toBe(String(rows.length));
    expect(download.headers.get('etag')).toBe(`"${sha(rows)}"`);
    expect(download.headers.get('repr-digest')).toBe(`sha-256=:${createHash('sha256').update(rows).digest('base64')}:`);
    expect(await download.text()).toBe(rows);
    expect(await (await fetch(`${base}/api/v1/flows/${id}/artifacts/report%201.txt?task=extract`)).text()).toBe('from extract');

    const missing = await fetch(`${base}/api/v1/flows/${id}/artifacts/nope.csv`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as any).error).toMatchObject({ code: 'ARTIFACT_NOT_FOUND', message: expect.stringContaining('has no artifact "nope.csv"') });
    expect((await fetch(`${base}/api/v1/flows/${id}/artifacts/..%2Fetc%2Fpasswd`)).status).toBe(400);
    expect((await fetch(`${base}/api/v1/flows/01JZZZZZZZZZZZZZZZZZZZZZZZ/artifacts`)).status).toBe(404);
    const put = await fetch(`${base}/api/v1/flows/${id}/artifacts/x.txt`, { method: 'PUT', body: 'x' });
    expect(put.status).toBe(405);
    expect(((await put.json()) as any).error.code).toBe('ARTIFACT_UPLOAD_UNSUPPORTED');

    const cli = await runCli(['artifacts', id, '--server', base]);
    expect(cli, cli.stderr).toMatchObject({ code: 0 });
    expect(cli.stdout.split('\n').filter(Boolean).map((line) => line.split(/\s{2,}/)[0])).toEqual(['out/rows.csv', 'report 1.txt', 'copy.csv']);
    const target = join(scratch, 'rows.csv');
    const got = await runCli(['artifacts', id, '--get', 'out/rows.csv', '-o', target, '--server', base]);
    expect(got, got.stderr).toMatchObject({ code: 0 });
    expect(readFileSync(target, 'utf8')).toBe(rows);
  });

  it('are named per task: a name two tasks stored is downloaded with ?task=, else 409 naming them', async () => {
    const id = await submit({
      tasks: [
        { id: 'a', queue: 'extract', executor: 'shell', config: { command: 'printf A > "$TASKSTREAM_ARTIFACTS/report.txt"' } },
        { id: 'b', queue: 'load', executor: 'shell', config: { command: 'printf B > "$TASKSTREAM_ARTIFACTS/report.txt"' } },
      ],
    });
    expect((await settled(id)).status).toBe('succeeded');
    const both = await fetch(`${base}/api/v1/flows/${id}/artifacts/report.txt`);
    expect(both.status).toBe(409);
    expect(((await both.json()) as any).error).toMatchObject({ code: 'ARTIFACT_AMBIGUOUS', tasks: ['a', 'b'] });
    expect(await (await fetch(`${base}/api/v1/flows/${id}/artifacts/report.txt?task=b`)).text()).toBe('B');
    const head = await fetch(`${base}/api/v1/flows/${id}/artifacts/report.txt?task=a`, { method: 'HEAD' });
    expect([head.status, head.headers.get('content-length'), head.headers.get('etag')]).toEqual([200, '1', `"${sha('A')}"`]);
    const cli = await runCli(['artifacts', id, '--get', 'report.txt', '-o', '-', '--server', base]);
    expect(cli.code).toBe(2);
    expect(cli.stderr).toContain('add --task <id>');
    const chosen = await runCli(['artifacts', id, '--get', 'report.txt', '--task', 'a', '-o', '-', '--server', base]);
    expect([chosen.code, chosen.stdout]).toEqual([0, 'A']);
  });

  it('over the size limit fail their task for good, naming the file, its size and the limit', async () => {
    const id = await submit({
      tasks: [
        { id: 'big', queue: 'extract', executor: 'shell', retries: 2, config: { command: `head -c ${LIMIT + 1} /dev/zero > "$TASKSTREAM_ARTIFACTS/dump.bin"` } },
        { id: 'after', queue: 'load', executor: 'shell', depends_on: ['big'], config: { command: 'cat "${tasks.big.artifacts.dump.bin}"' } },
      ],
    });
    const view = await settled(id);
    expect(view.status).toBe('failed');
    const big = task(view, 'big');
    expect(big.status).toBe('failed');
    expect(big.attempts).toHaveLength(1);
    expect(big.error).toMatchObject({ code: 'ARTIFACT_TOO_LARGE', retryable: false });
    expect(big.error.message).toContain(`"dump.bin" is ${LIMIT + 1} bytes`);
    expect(big.error.message).toContain(`over the limit of ${LIMIT} bytes per file (TASKSTREAM_ARTIFACT_MAX_FILE_BYTES)`);
    expect(task(view, 'after').status).toBe('upstream_failed');
    expect((await events(id)).some((e) => e.type === 'task.artifact_stored')).toBe(false);
  });

  it('that an upstream task did not store fail the reading task, listing what it stored', async () => {
    const id = await submit({
      tasks: [
        { id: 'make', queue: 'extract', executor: 'shell', config: { command: 'echo a > "$TASKSTREAM_ARTIFACTS/a.txt"' } },
        { id: 'read', queue: 'load', executor: 'shell', depends_on: ['make'], config: { command: 'cat "${tasks.make.artifacts.b.txt}"' } },
      ],
    });
    const view = await settled(id);
    expect(task(view, 'read').error).toMatchObject({ code: 'REFERENCE_ERROR', message: expect.stringContaining('task "make" stored no artifact "b.txt"; it stored a.txt') });
  });
});
