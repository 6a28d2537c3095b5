import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readFlowFile } from '../src/commands/flow-file.js';

const dir = mkdtempSync(join(tmpdir(), 'ts-flow-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('reading a flow file', () => {
  it('refuses a document nested deeper than flows may be, as a problem rather than a crash', () => {
    const deep = `tasks:\n  - id: a\n    executor: noop\n    config: ${'['.repeat(10_000)}${']'.repeat(10_000)}\n`;
    expect(() => readFlowFile(file('deep.yaml', deep))).toThrow(/nested/);
    expect(() => readFlowFile(file('deep.json', JSON.stringify({ tasks: [{ id: 'a', executor: 'noop' }] }).replace('"noop"}', `"noop","config":${'['.repeat(10_000)}${']'.repeat(10_000)}}`)))).toThrow(/nested/);
  });

  it('applies a queue override and checks the result', () => {
    const { body, taskIds } = readFlowFile(file('ok.yaml', 'tasks:\n  - id: a\n    executor: noop\n'), 'ci');
    expect(JSON.parse(body)).toMatchObject({ queue: 'ci' });
    expect(taskIds).toEqual(['a']);
    expect(() => readFlowFile(file('ok2.yaml', 'tasks:\n  - id: a\n    executor: noop\n'), 'not a queue!')).toThrow(/queue/);
  });
});
