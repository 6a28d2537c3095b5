import { EXECUTOR_NAMES, HttpConfig, STEP_EXECUTORS, ShellConfig, TransformConfig, unknownExecutorMessage } from '@taskstream/domain';
import { describe, expect, it } from 'vitest';
import { createSteps } from '../src/steps/index.js';

describe('executor configs', () => {
  it("http's method defaults to POST, as Tasked's", () => {
    expect(HttpConfig.parse({ url: 'https://example.com/hook' })).toEqual({ url: 'https://example.com/hook', method: 'POST' });
    expect(HttpConfig.parse({ url: 'https://example.com/hook', method: 'get' }).method).toBe('GET');
  });

  it("http takes Tasked's mode \"inline\" and refuses \"callback\", which Tasked never implemented", () => {
    expect(HttpConfig.parse({ url: 'https://example.com/hook', mode: 'inline' }).mode).toBe('inline');
    const refused = HttpConfig.safeParse({ url: 'https://example.com/hook', mode: 'callback' });
    expect(refused.success).toBe(false);
    expect(refused.error?.issues[0]?.message).toMatch(/^must be "inline"/);
  });

  it('shell env takes any JSON value and args take text, numbers and booleans', () => {
    expect(ShellConfig.safeParse({ command: 'true', env: { A: 'x', N: 1, B: false, Z: null, O: { a: 1 }, L: [1] } }).success).toBe(true);
    expect(ShellConfig.safeParse({ args: ['sleep', 1, true] }).success).toBe(true);
    expect(ShellConfig.safeParse({ args: ['echo', { a: 1 }] }).success).toBe(false);
    expect(ShellConfig.safeParse({ args: ['echo', null] }).success).toBe(false);
  });

  it('transform takes one expression of 1 to 4096 characters', () => {
    expect(TransformConfig.parse({ expr: 'input.n + 1' })).toEqual({ expr: 'input.n + 1' });
    expect(TransformConfig.safeParse({ expr: '' }).success).toBe(false);
    expect(TransformConfig.safeParse({ expr: 'x'.repeat(4097) }).success).toBe(false);
    expect(TransformConfig.safeParse({ expr: '1', extra: 1 }).success).toBe(false);
  });

  it('every executor with a config has a step runner, but those the planner holds (approval, wait, trigger)', () => {
    expect(Object.keys(createSteps({ shellEnabled: false })).sort()).toEqual([...STEP_EXECUTORS].sort());
    expect(EXECUTOR_NAMES.filter((name) => !STEP_EXECUTORS.includes(name))).toEqual(['approval', 'wait', 'trigger']);
  });
});

describe('unknownExecutorMessage', () => {
  const available = 'shell, http, noop, delay, transform, approval, wait, trigger, spawn';

  it('names an unknown executor and lists those there are', () => {
    expect(EXECUTOR_NAMES.join(', ')).toBe(available);
    expect(unknownExecutorMessage('sh')).toBe(`unknown executor "sh"; use one of ${available}`);
  });

  it("says when Tasked has the executor but Taskstream does not run it", () => {
    for (const name of ['container', 'agent', 'callback', 'remote', 'api']) {
      expect(unknownExecutorMessage(name)).toBe(`Tasked's "${name}" executor is not available in Taskstream; available: ${available}`);
    }
  });

  it('cuts a long name', () => {
    expect(unknownExecutorMessage('x'.repeat(1000))).toBe(`unknown executor "${'x'.repeat(63)}…"; use one of ${available}`);
  });
});
