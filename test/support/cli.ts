import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './stack.js';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the built `taskstream` command to its end. The settings a developer's shell may hold
 * (gateway URL, API key, NATS URL and credentials) are cleared, so a test sees only what it gives
 * in `env`; standard input is closed unless `stdin` is given.
 */
export function runCli(args: string[], options: { env?: Record<string, string>; cwd?: string; stdin?: string } = {}): Promise<CliResult> {
  const clean = { TASKSTREAM_URL: '', TASKSTREAM_API_KEY: '', TASKSTREAM_NATS_URL: '', TASKSTREAM_NATS_USER: '', TASKSTREAM_NATS_PASSWORD: '', TASKSTREAM_NATS_CREDS: '' };
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, 'cli', 'bin', 'taskstream.js'), ...args], { cwd: options.cwd ?? ROOT, env: { ...process.env, ...clean, ...options.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    // 'close', not 'exit': the output pipes are read to their end.
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.stdin ?? '');
  });
}
