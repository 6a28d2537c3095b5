import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, TestStack } from '../support/stack.js';
import { runCli } from '../support/cli.js';

const cli = (args: string[], cwd = ROOT) => runCli(args, { cwd });

describe('taskstream run, embedded', () => {
  it('starts nats-server and the services, runs the flow, prints the outcome and stops everything', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'taskstream-cli-'));
    const result = await cli(['run', join(ROOT, 'examples', 'failing-cascade.json'), '--data-dir', dataDir]);
    expect(result.code, result.stderr).toBe(1);
    const lines = result.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^Flow [0-9A-Z]{26} {2}submitted \(6 tasks\)$/);
    expect(result.stdout).toMatch(/\[test-unit\] {2}failed {5}\d+\.\ds\n {4}AssertionError: expected 2 to equal 3/);
    expect(result.stdout).toContain('[deploy]     upstream failed (upstream "test-unit" failed)');
    expect(result.stdout).toMatch(/\[report\] +succeeded/);
    expect(lines.at(-1)).toMatch(/^Flow [0-9A-Z]{26} failed 3\/6 succeeded, 1 failed, 2 upstream failed \(\d+\.\ds\)$/);
  });

  it('says what is wrong with an invalid flow file before starting anything', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'taskstream-cli-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'tasks:\n  - id: a\n    executor: sh\n');
    const result = await cli(['run', file]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('tasks[0].executor: unknown executor "sh"; use one of shell, http, noop, delay');
    expect(result.stderr).toMatch(/^hint: /m);
    expect(result.stderr).not.toMatch(/at .*\.js:\d+/);
  });
});

describe('taskstream against a running gateway', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await TestStack.start();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('runs, shows status and events, and cancels through --server', async () => {
    const ok = await cli(['run', join(ROOT, 'examples', 'retries.yaml'), '--server', stack.url, '--queue', 'ci']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/submitted to queue "ci" \(2 tasks\)/);
    expect(ok.stdout).toMatch(/\[flaky\] {2}retrying {3}attempt 1 failed, next in/);
    expect(ok.stdout).toMatch(/complete 2\/2 succeeded/);
    const flowId = ok.stdout.match(/Flow ([0-9A-Z]{26})/)![1]!;

    const status = await cli(['status', flowId, '--server', stack.url]);
    expect(status.stdout).toMatch(new RegExp(`Flow ${flowId} \\(retries\\): succeeded`));
    expect(status.stdout).toMatch(/flaky\s+succeeded\s+3/);

    const events = await cli(['events', flowId, '--server', stack.url, '--json']);
    const types = events.stdout.trim().split('\n').map((l) => JSON.parse(l).event.type);
    expect(types[0]).toBe('flow.submitted');
    expect(types.at(-1)).toBe('flow.succeeded');

    const dir = mkdtempSync(join(tmpdir(), 'taskstream-cli-'));
    const slow = join(dir, 'slow.json');
    writeFileSync(slow, JSON.stringify({ tasks: [{ id: 'wait', executor: 'delay', config: { ms: 30000 } }] }));
    const submitted = await cli(['submit', slow, '--server', stack.url]);
    const slowId = submitted.stdout.trim();
    expect(slowId).toMatch(/^[0-9A-Z]{26}$/);
    const cancelled = await cli(['cancel', slowId, '--server', stack.url, '--reason', 'not needed']);
    expect(cancelled.code).toBe(0);
    expect((await stack.settled(slowId)).status).toBe('cancelled');

    const missing = await cli(['status', '01JAAAAAAAAAAAAAAAAAAAAAAA', '--server', stack.url]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/no flow with id "01JAAAAAAAAAAAAAAAAAAAAAAA"/);
  });

  it('says clearly when no gateway is reachable', async () => {
    const result = await cli(['status', '01JAAAAAAAAAAAAAAAAAAAAAAA', '--server', 'http://127.0.0.1:9']);
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/cannot reach the Taskstream gateway at http:\/\/127.0.0.1:9 .*\nhint: start one with `taskstream up`/);
  });
});
