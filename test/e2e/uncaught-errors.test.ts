import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../support/stack.js';

/** Runs `body` in a fresh Node process that set up a service's handling of uncaught errors. */
function runWithHandlers(body: string) {
  const script = `import { createLogger, exitOnUncaughtErrors } from '@taskstream/runtime';\nexitOnUncaughtErrors(createLogger('planner'));\n${body}`;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 20_000 });
  const lines = child.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  return { status: child.status, lines, stderr: child.stderr };
}

describe('a service process meeting an error nothing caught', () => {
  it('logs a rejection nothing handled as one fatal JSON line with its stack, and exits 1', () => {
    const { status, lines, stderr } = runWithHandlers(`setTimeout(() => {}, 10_000); Promise.reject(new Error('the bucket vanished'));`);
    expect(status, stderr).toBe(1);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 60, service: 'planner', msg: 'unhandled promise rejection: the bucket vanished; exiting' });
    expect(lines[0].err.stack).toContain('the bucket vanished');
    expect(stderr).toBe('');
  });

  it('does the same for an exception thrown outside any handler', () => {
    const { status, lines } = runWithHandlers(`setTimeout(() => { throw new TypeError('no such field'); }, 10);`);
    expect(status).toBe(1);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 60, msg: 'uncaught exception: no such field; exiting' });
    expect(lines[0].err.type).toBe('TypeError');
  });

  it('exits 1 even for a thrown value that cannot be printed', () => {
    const { status, lines } = runWithHandlers(`setTimeout(() => {}, 10_000); Promise.reject(Object.create(null));`);
    expect(status).toBe(1);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 60, msg: 'unhandled promise rejection: a thrown value that cannot be printed; exiting' });
  });

  it('leaves a process that handles its errors running', () => {
    const { status, lines } = runWithHandlers(`Promise.reject(new Error('handled')).catch(() => {}); setTimeout(() => process.exit(0), 200);`);
    expect(status).toBe(0);
    expect(lines).toEqual([]);
  });
});
