import { spawn } from 'node:child_process';
import type { ShellConfig } from '@taskstream/domain';
import { StepError } from './step-error.js';
import { lastLines, Tail } from './tail.js';
import type { StepContext } from './types.js';

const OUTPUT_LIMIT = 64 * 1024;
const KILL_GRACE_MS = 2_000;

/**
 * Runs `command` through /bin/sh -c (as Tasked does) or `args` without a shell, in its own process
 * group so a timeout or cancel stops everything it started. Succeeds on exit code 0.
 */
export function runShell(ctx: StepContext, baseEnv: NodeJS.ProcessEnv): Promise<unknown> {
  const config = ctx.spec.config as ShellConfig;
  const [file, args] = config.command !== undefined ? ['/bin/sh', ['-c', config.command]] : [config.args![0]!, config.args!.slice(1)];
  const env = {
    ...baseEnv,
    ...config.env,
    TASKSTREAM_FLOW_ID: ctx.flowId,
    TASKSTREAM_TASK_ID: ctx.taskId,
    TASKSTREAM_ATTEMPT: String(ctx.attempt),
    TASKSTREAM_IDEMPOTENCY_KEY: ctx.idempotencyKey,
  };
  return new Promise((resolve, reject) => {
    const stdout = new Tail(OUTPUT_LIMIT);
    const stderr = new Tail(OUTPUT_LIMIT);
    const child = spawn(file, args, { cwd: config.cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (c: Buffer) => stdout.push(c));
    child.stderr.on('data', (c: Buffer) => stderr.push(c));
    let killTimer: NodeJS.Timeout | undefined;
    const stop = () => {
      if (child.pid === undefined || child.exitCode !== null) return;
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        // already gone
      }
      killTimer = setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
      }, KILL_GRACE_MS);
    };
    if (ctx.signal.aborted) stop();
    ctx.signal.addEventListener('abort', stop, { once: true });
    child.once('error', (error: NodeJS.ErrnoException) => {
      ctx.signal.removeEventListener('abort', stop);
      const hint = error.code === 'ENOENT' ? (config.cwd ? ` (does the program exist, and the directory "${config.cwd}"?)` : ' (is the program installed and on PATH?)') : '';
      reject(new StepError({ message: `could not start "${file}": ${error.message}${hint}`, code: 'SPAWN', retryable: false }));
    });
    child.once('close', (code, signal) => {
      ctx.signal.removeEventListener('abort', stop);
      if (killTimer) clearTimeout(killTimer);
      const out = stdout.toString();
      const err = stderr.toString();
      if (code === 0) {
        resolve({ exit_code: 0, stdout: out, stderr: err });
        return;
      }
      const tail = lastLines(err || out, 5);
      const how = code !== null ? `exited with code ${code}` : `was killed by ${signal}`;
      reject(
        new StepError({
          message: `command ${how}${tail ? `: ${tail}` : ''}`,
          code: 'EXIT_CODE',
          retryable: true,
          ...(code !== null && { exit_code: code }),
          ...(signal !== null && { signal }),
          stdout_tail: lastLines(out, 20),
          stderr_tail: lastLines(err, 20),
        }),
      );
    });
  });
}
