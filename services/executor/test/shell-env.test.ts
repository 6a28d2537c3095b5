import { ShellConfig } from '@taskstream/domain';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSteps } from '../src/steps/index.js';
import { DEFAULT_PATH, runShell } from '../src/steps/shell.js';
import { stepContext } from './processes.js';

const limits = { killGraceMs: 500, drainMs: 200 };

/** The variables a step saw, from `env` run by it: NAME=value lines (values here hold no newline). */
function variables(stdout: string): Record<string, string> {
  return Object.fromEntries(
    stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
}

async function environmentOf(config: Record<string, unknown>, pathFrom: NodeJS.ProcessEnv = process.env): Promise<Record<string, string>> {
  const ctx = { ...stepContext('shell', ShellConfig.parse(config) as Record<string, unknown>), flowId: '01JFLOW0000000000000000000', taskId: 'build', attempt: 2, idempotencyKey: '01JFLOW0000000000000000000:build' };
  const output = (await runShell(ctx, pathFrom, limits)) as { stdout: string };
  return variables(output.stdout);
}

describe("shell steps get none of the executor's environment", () => {
  beforeEach(() => {
    process.env.TS_TEST_CANARY = 'executor-secret';
  });
  afterEach(() => {
    delete process.env.TS_TEST_CANARY;
  });

  it('sees PATH, the config env and the documented variables, and nothing else: not a variable of the executor', async () => {
    const seen = await environmentOf({ command: 'env', env: { GREETING: 'hello world' } });
    expect(seen).not.toHaveProperty('TS_TEST_CANARY');
    expect(seen).not.toHaveProperty('HOME');
    expect(seen).toMatchObject({
      PATH: process.env.PATH,
      GREETING: 'hello world',
      TASKSTREAM_FLOW_ID: '01JFLOW0000000000000000000',
      TASKSTREAM_TASK_ID: 'build',
      TASKSTREAM_ATTEMPT: '2',
      TASKSTREAM_IDEMPOTENCY_KEY: '01JFLOW0000000000000000000:build',
    });
    // What sh adds of its own (PWD, SHLVL, _) is all there is besides.
    const expected = new Set(['PATH', 'GREETING', 'TASKSTREAM_FLOW_ID', 'TASKSTREAM_TASK_ID', 'TASKSTREAM_ATTEMPT', 'TASKSTREAM_IDEMPOTENCY_KEY', 'PWD', 'SHLVL', '_', 'OLDPWD']);
    expect(Object.keys(seen).filter((name) => !expected.has(name))).toEqual([]);
  });

  it('is the same without a shell (args)', async () => {
    const seen = await environmentOf({ args: ['env'], env: { A: 'b' } });
    expect(Object.keys(seen).sort()).toEqual(['A', 'PATH', 'TASKSTREAM_ATTEMPT', 'TASKSTREAM_FLOW_ID', 'TASKSTREAM_IDEMPOTENCY_KEY', 'TASKSTREAM_TASK_ID']);
  });

  it('takes PATH from the environment it is given, or a safe default when that has none', async () => {
    expect((await environmentOf({ args: ['/usr/bin/env'] }, { PATH: '/bin:/usr/bin', TS_TEST_CANARY: 'x' })).PATH).toBe('/bin:/usr/bin');
    expect(await environmentOf({ args: ['/usr/bin/env'] }, {})).toMatchObject({ PATH: DEFAULT_PATH });
    expect(await environmentOf({ args: ['/usr/bin/env'] }, { TS_TEST_CANARY: 'x' })).not.toHaveProperty('TS_TEST_CANARY');
  });

  it('lets the config env set PATH, but not the documented variables', async () => {
    const seen = await environmentOf({ args: ['/usr/bin/env'], env: { PATH: '/opt/tools/bin:/usr/bin:/bin', TASKSTREAM_TASK_ID: 'spoofed' } });
    expect(seen).toMatchObject({ PATH: '/opt/tools/bin:/usr/bin:/bin', TASKSTREAM_TASK_ID: 'build' });
  });

  it('passes env values that are not text as their compact JSON text', async () => {
    const seen = await environmentOf({ args: ['env'], env: { N: 42, F: 1.5, T: true, Z: null, O: { a: [1, 'x'] }, L: [1, 2] } });
    expect(seen).toMatchObject({ N: '42', F: '1.5', T: 'true', Z: 'null', O: '{"a":[1,"x"]}', L: '[1,2]' });
  });

  it('passes args items that are numbers or booleans as their text', async () => {
    const output = (await runShell(stepContext('shell', ShellConfig.parse({ args: ['printf', '%s|%s|%s', 3, false, 'x'] }) as Record<string, unknown>), process.env, limits)) as { stdout: string };
    expect(output.stdout).toBe('3|false|x');
  });

  it('fails for good, without starting anything, when a value holds a NUL character', async () => {
    await expect(runShell(stepContext('shell', { command: 'true', env: { BAD: 'a\u0000b' } }), process.env, limits)).rejects.toMatchObject({ detail: { code: 'SPAWN', retryable: false } });
  });

  it('the executor default (createSteps without env) reads PATH from the executor and nothing else', async () => {
    const steps = createSteps({ shellEnabled: true });
    const output = (await steps.shell!(stepContext('shell', { command: 'env' }))) as { stdout: string };
    const seen = variables(output.stdout);
    expect(seen.PATH).toBe(process.env.PATH);
    expect(seen).not.toHaveProperty('TS_TEST_CANARY');
  });
});
