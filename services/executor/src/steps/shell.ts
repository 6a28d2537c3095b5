import { spawn } from 'node:child_process';
import type { ShellConfig } from '@taskstream/domain';
import { setLongTimeout } from '../timers.js';
import { StepError } from './step-error.js';
import { lastLines, Tail } from './tail.js';
import type { StepContext } from './types.js';

const OUTPUT_LIMIT = 64 * 1024;

export interface ShellLimits {
  /** After SIGTERM, how long the step's processes get before SIGKILL. */
  killGraceMs: number;
  /**
   * After the command itself exits, how long processes it left running may keep its output open
   * before they are killed and the step ends.
   */
  drainMs: number;
}

export const DEFAULT_SHELL_LIMITS: ShellLimits = { killGraceMs: 2_000, drainMs: 200 };

/** PATH when the executor's own environment has none. */
export const DEFAULT_PATH = '/usr/local/bin:/usr/bin:/bin';

/** A config `env` value or `args` item as the text a process gets: text as it is, anything else as compact JSON. */
export function asText(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/**
 * The environment a step runs with, and nothing else of the executor's (its credentials among
 * them): as Tasked, only `PATH` (taken from `pathFrom`, the executor's environment, or
 * DEFAULT_PATH when it has none) and the config's `env`, which may replace PATH; then Taskstream's
 * own variables, which the config cannot replace: TASKSTREAM_FLOW_ID, TASKSTREAM_TASK_ID,
 * TASKSTREAM_ATTEMPT (1 for the first attempt) and TASKSTREAM_IDEMPOTENCY_KEY (the same for every
 * attempt of the task). No HOME, USER or locale: a command that needs one sets it in `env`.
 */
export function stepEnvironment(ctx: StepContext, configEnv: ShellConfig['env'], pathFrom: NodeJS.ProcessEnv): Record<string, string> {
  const env: Record<string, string> = { PATH: pathFrom.PATH || DEFAULT_PATH };
  for (const [name, value] of Object.entries(configEnv ?? {})) env[name] = asText(value);
  return {
    ...env,
    TASKSTREAM_FLOW_ID: ctx.flowId,
    TASKSTREAM_TASK_ID: ctx.taskId,
    TASKSTREAM_ATTEMPT: String(ctx.attempt),
    TASKSTREAM_IDEMPOTENCY_KEY: ctx.idempotencyKey,
  };
}

/**
 * Runs `command` through /bin/sh -c (as Tasked does) or `args` without a shell, in the environment
 * stepEnvironment builds (PATH from `pathFrom`). Succeeds on exit code 0.
 *
 * The command leads its own process group, and the group is what gets stopped: on timeout or
 * cancel every process in it gets SIGTERM, then SIGKILL once `killGraceMs` has passed, whatever
 * has happened meanwhile (a process ignoring SIGTERM may have closed its output or outlived the
 * leader). The step ends when the leader has exited and either its output pipes closed or the
 * group was killed. A leader that exits on its own ends the step: processes it left in the
 * background get `drainMs` to finish writing, then the group is killed, so that nothing a step
 * started outlives it. Only a process that leaves the group (setsid) escapes.
 */
export function runShell(ctx: StepContext, pathFrom: NodeJS.ProcessEnv, limits: ShellLimits = DEFAULT_SHELL_LIMITS): Promise<unknown> {
  const config = ctx.spec.config as ShellConfig;
  const argv = config.args?.map(asText);
  const [file, args] = config.command !== undefined ? ['/bin/sh', ['-c', config.command]] : [argv![0]!, argv!.slice(1)];
  const env = stepEnvironment(ctx, config.env, pathFrom);
  if (ctx.signal.aborted) return Promise.reject(ctx.signal.reason);
  return new Promise((resolve, reject) => {
    const stdout = new Tail(OUTPUT_LIMIT);
    const stderr = new Tail(OUTPUT_LIMIT);
    let child: ReturnType<typeof spawnPiped>;
    try {
      child = spawnPiped(file, args, config.cwd, env);
    } catch (error) {
      // A NUL character in the command, an argument or the environment: no attempt can start it.
      reject(new StepError({ message: `could not start "${file}": ${(error as Error).message}`, code: 'SPAWN', retryable: false }));
      return;
    }
    const group = child.pid;
    child.stdout.on('data', (c: Buffer) => stdout.push(c));
    child.stderr.on('data', (c: Buffer) => stderr.push(c));

    let leader: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let openPipes = 2;
    let stopping = false;
    let killed = false;
    let drained = false;
    let drainTimer: NodeJS.Timeout | undefined;
    let ended = false;

    const signalGroup = (signal: NodeJS.Signals) => {
      if (group === undefined) return;
      try {
        process.kill(-group, signal);
      } catch {
        // the group has no process left
      }
    };
    const stop = () => {
      if (stopping) return;
      stopping = true;
      signalGroup('SIGTERM');
      // Never cleared: a process that ignored SIGTERM may hold no pipe and outlive the leader.
      setLongTimeout(() => {
        signalGroup('SIGKILL');
        killed = true;
        end();
      }, limits.killGraceMs);
    };

    const end = () => {
      if (ended || leader === undefined || (openPipes > 0 && !killed && !drained)) return;
      ended = true;
      clearTimeout(drainTimer);
      ctx.signal.removeEventListener('abort', stop);
      if (!stopping) signalGroup('SIGKILL');
      // A process that left the group may still hold the pipes; its output is not the step's.
      child.stdout.destroy();
      child.stderr.destroy();
      const { code, signal } = leader;
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
    };

    for (const pipe of [child.stdout, child.stderr]) {
      pipe.once('close', () => {
        openPipes--;
        end();
      });
    }
    ctx.signal.addEventListener('abort', stop, { once: true });
    child.once('error', (error: NodeJS.ErrnoException) => {
      if (ended) return;
      ended = true;
      ctx.signal.removeEventListener('abort', stop);
      const hint = error.code === 'ENOENT' ? (config.cwd ? ` (does the program exist, and the directory "${config.cwd}"?)` : ' (is the program installed and on PATH?)') : '';
      reject(new StepError({ message: `could not start "${file}": ${error.message}${hint}`, code: 'SPAWN', retryable: false }));
    });
    child.once('exit', (code, signal) => {
      leader = { code, signal };
      if (!stopping) {
        drainTimer = setTimeout(() => {
          drained = true;
          end();
        }, limits.drainMs);
      }
      end();
    });
  });
}

function spawnPiped(file: string, args: string[], cwd: string | undefined, env: Record<string, string>) {
  return spawn(file, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
}
