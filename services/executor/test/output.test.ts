import { describe, expect, it } from 'vitest';
import { checkOutput, fitError, MAX_OUTPUT_DEPTH, nestingDepth } from '../src/output.js';

/** `[[[...]]]` nested `depth` deep, built without recursion. */
function nested(depth: number): unknown {
  let value: unknown = [];
  for (let i = 1; i < depth; i++) value = [value];
  return value;
}

describe('outputs the executor records', () => {
  it('measures nesting without recursing, whatever the depth', () => {
    expect(nestingDepth('text')).toBe(0);
    expect(nestingDepth({ a: [1, { b: 2 }] })).toBe(3);
    expect(nestingDepth(nested(100_000))).toBe(100_000);
  });

  it('refuses an output nested deeper than the bound, naming it, as not worth retrying', () => {
    expect(() => checkOutput(nested(MAX_OUTPUT_DEPTH), 1024 * 1024)).not.toThrow();
    const refuse = () => checkOutput({ body: nested(10_000) }, 1024 * 1024);
    expect(refuse).toThrow(`more than ${MAX_OUTPUT_DEPTH} levels deep`);
    try {
      refuse();
    } catch (error) {
      expect((error as { detail: unknown }).detail).toMatchObject({ code: 'OUTPUT_TOO_DEEP', retryable: false });
    }
  });

  it('refuses an output larger as JSON than an event can carry, counting escapes', () => {
    expect(() => checkOutput('a'.repeat(1000), 1002)).not.toThrow();
    expect(() => checkOutput('\u0001'.repeat(1000), 1002)).toThrow(/is 6002 bytes as JSON, more than the 1002 bytes/);
  });

  it('cuts an error to fit, keeping the ends of output tails and the start of the message', () => {
    const error = { message: `command exited with code 1: ${'\u0002'.repeat(200_000)}`, code: 'EXIT_CODE', retryable: true, exit_code: 1, stdout_tail: `${'x'.repeat(300_000)}END`, stderr_tail: '\u0003'.repeat(300_000) };
    const fitted = fitError(error, 64 * 1024);
    expect(Buffer.byteLength(JSON.stringify(fitted))).toBeLessThanOrEqual(64 * 1024);
    expect(fitted).toMatchObject({ code: 'EXIT_CODE', retryable: true, exit_code: 1 });
    expect(fitted.message.startsWith('command exited with code 1: ')).toBe(true);
    expect(fitted.stdout_tail!.endsWith('END')).toBe(true);
    expect(fitError({ message: 'small', code: 'X', retryable: false }, 64 * 1024)).toEqual({ message: 'small', code: 'X', retryable: false });
    expect(Buffer.byteLength(JSON.stringify(fitError(error, 500)))).toBeLessThanOrEqual(500);
  });
});
