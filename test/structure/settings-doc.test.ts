import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DISPATCHER_SETTINGS } from '@taskstream/dispatcher';
import { EXECUTOR_SETTINGS } from '@taskstream/executor';
import { GATEWAY_SETTINGS } from '@taskstream/gateway';
import { PLANNER_SETTINGS } from '@taskstream/planner';
import { PROJECTOR_SETTINGS } from '@taskstream/projector';
import { SCHEDULER_SETTINGS } from '@taskstream/scheduler';
import { COMMON_SETTINGS, TASKSTREAM_VARIABLES, type Setting } from '@taskstream/runtime';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SERVICES: Record<string, Record<string, Setting>> = {
  all: COMMON_SETTINGS,
  gateway: GATEWAY_SETTINGS,
  planner: PLANNER_SETTINGS,
  dispatcher: DISPATCHER_SETTINGS,
  executor: EXECUTOR_SETTINGS,
  projector: PROJECTOR_SETTINGS,
  scheduler: SCHEDULER_SETTINGS,
};

/** docs/operations.md's settings tables (or only the first, the services' own), by variable: [flag, default, meaning]. */
function documented(only: 'first table' | 'all tables' = 'all tables'): Map<string, string[]> {
  const rows = new Map<string, string[]>();
  const lines = readFileSync(join(root, 'docs', 'operations.md'), 'utf8').split('\n');
  const start = lines.findIndex((line) => line.startsWith('| variable |'));
  const end = only === 'all tables' ? lines.length : lines.findIndex((line, i) => i > start && !line.startsWith('|'));
  for (const line of lines.slice(0, end)) {
    const cells = line.split('|').slice(1, -1).map((cell) => cell.trim());
    const name = /^`(TASKSTREAM_[A-Z_]+)`$/.exec(cells[0] ?? '')?.[1];
    if (name !== undefined) rows.set(name, cells.slice(1));
  }
  return rows;
}

describe('docs/operations.md lists every setting as the services read it', () => {
  const cases = Object.entries(SERVICES).flatMap(([service, settings]) => Object.values(settings).map((setting) => [setting.env, service, setting] as const));
  it.each(cases)('%s (%s)', (env, service, setting) => {
    const row = documented().get(env);
    expect(row, `docs/operations.md has no row for \`${env}\``).toBeDefined();
    const [flag, fallback, meaning] = row!;
    const long = setting.flag === undefined ? undefined : /--[a-z-]+/.exec(setting.flag)![0];
    expect(flag).toBe(long === undefined ? '' : `\`${long}\``);
    if (setting.default !== '') expect(fallback).toContain(setting.default);
    expect(meaning!.startsWith(service === 'all' ? 'all' : '') && meaning!.includes(service === 'all' ? 'all' : service)).toBe(true);
  });
});

describe("docs/operations.md's settings table lists no shared setting the services do not declare", () => {
  it('every row "used by" all is one of COMMON_SETTINGS', () => {
    const declared = new Set(Object.values(COMMON_SETTINGS).map((setting) => setting.env));
    const shared = [...documented('first table')].filter(([, [, , meaning]]) => /^all\b/.test(meaning ?? '')).map(([env]) => env);
    expect(shared.length).toBeGreaterThan(0);
    expect(shared.filter((env) => !declared.has(env))).toEqual([]);
  });
});

describe('the TASKSTREAM_* variables Taskstream knows (the rest are refused at start)', () => {
  const declared = Object.values(SERVICES).flatMap((settings) => Object.values(settings).map((setting) => setting.env));
  it('knows every declared setting', () => {
    expect(declared.filter((env) => !TASKSTREAM_VARIABLES.has(env))).toEqual([]);
  });
  it('knows every variable docs/operations.md documents, and documents every setting it knows', () => {
    const documentedNames = [...documented().keys()];
    expect(documentedNames.filter((env) => !TASKSTREAM_VARIABLES.has(env))).toEqual([]);
    const notSettings = new Set(['TASKSTREAM_URL', 'TASKSTREAM_DEBUG', 'TASKSTREAM_FLOW_ID', 'TASKSTREAM_TASK_ID', 'TASKSTREAM_ATTEMPT', 'TASKSTREAM_IDEMPOTENCY_KEY', 'TASKSTREAM_ARTIFACTS']);
    const serverPasswords = [...TASKSTREAM_VARIABLES].filter((env) => /^TASKSTREAM_[A-Z]+_PASSWORD$/.test(env) && env !== 'TASKSTREAM_NATS_PASSWORD');
    expect([...TASKSTREAM_VARIABLES].filter((env) => !documentedNames.includes(env) && !notSettings.has(env) && !serverPasswords.includes(env))).toEqual([]);
  });
});
