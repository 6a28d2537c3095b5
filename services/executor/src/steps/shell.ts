import { spawn } from 'node:child_process';
import type { ShellConfig } from '@taskstream/domain';
import { traceCarrier } from '@taskstream/nats';
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
 * attempt of the task), TASKSTREAM_ARTIFACTS and Tasked's TASKED_ARTIFACTS (the attempt's
 * artifacts directory, when it has one: what the step leaves there is stored once it succeeded),
 * and when the task is traced TRACEPARENT (and TRACESTATE), the attempt's W3C trace context, so a
 * command that reports its own spans continues the flow's trace. No HOME, USER or locale: a
 * command that needs one sets it in `env`.
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
    ...(ctx.artifactsDir !== undefined && { TASKSTREAM_ARTIFACTS: ctx.artifactsDir, TASKED_ARTIFACTS: ctx.artifactsDir }),
    ...traceEnvironment(),
  };
}

function traceEnvironment(): Record<string, string> {
  const { traceparent, tracestate } = traceCarrier();
  return { ...(traceparent !== undefined && { TRACEPARENT: traceparent }), ...(tracestate !== undefined && tracestate !== '' && { TRACESTATE: tracestate }) };
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
  const [file, args] = commandLine(config);
  const env = stepEnvironment(ctx, config.env, pathFrom);
  if (ctx.signal.aborted) return Promise.reject(ctx.signal.reason);
  return new Promise((resolve, reject) => {
    let child: PipedChild;
    try {
      child = spawnPiped(file, args, config.cwd, env);
    } catch (error) {
      // A NUL character in the command, an argument or the environment: no attempt can start it.
      reject(new StepError({ message: `could not start "${file}": ${(error as Error).message}`, code: 'SPAWN', retryable: false }));
      return;
    }
    new GroupRun(child, ctx.signal, limits, { resolve, reject }, (error) => startError(file, config.cwd, error)).watch();
  });
}

/** The program and its arguments: `command` through /bin/sh -c, else `args` as they are. */
function commandLine(config: ShellConfig): [string, string[]] {
  if (config.command !== undefined) return ['/bin/sh', ['-c', config.command]];
  const argv = config.args!.map(asText);
  return [argv[0]!, argv.slice(1)];
}

function spawnPiped(file: string, args: string[], cwd: string | undefined, env: Record<string, string>) {
  return spawn(file, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
}

type PipedChild = ReturnType<typeof spawnPiped>;

/**
 * Process groups of steps not yet killed. Each leads a group of its own, which nothing ends when
 * this process exits: whatever way it exits (a second Ctrl-C, an error nothing caught, the end of a
 * shutdown whose grace a step outlived by ignoring SIGTERM), they get SIGKILL as it does.
 */
const liveGroups = new Set<number>();
let killGroupsAtExit = false;

function remember(group: number): void {
  liveGroups.add(group);
  if (killGroupsAtExit) return;
  killGroupsAtExit = true;
  process.once('exit', () => {
    for (const live of liveGroups) killGroup(live, 'SIGKILL');
  });
}

function killGroup(group: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-group, signal);
  } catch {
    // the group has no process left
  }
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * A started command and its process group, until the step ends as runShell describes: the step's
 * abort stops the group, and the run settles once the leader has exited and its output pipes
 * closed, its leftovers drained or the group was killed.
 */
class GroupRun {
  private readonly stdout = new Tail(OUTPUT_LIMIT);
  private readonly stderr = new Tail(OUTPUT_LIMIT);
  private readonly group: number | undefined;
  private leader: Exit | undefined;
  private openPipes = 2;
  private stopping = false;
  private killed = false;
  private drained = false;
  private drainTimer: NodeJS.Timeout | undefined;
  private ended = false;

  constructor(
    private readonly child: PipedChild,
    private readonly signal: AbortSignal,
    private readonly limits: ShellLimits,
    private readonly settle: { resolve: (output: unknown) => void; reject: (error: unknown) => void },
    private readonly startError: (error: NodeJS.ErrnoException) => StepError,
  ) {
    this.group = child.pid;
    if (this.group !== undefined) remember(this.group);
  }

  watch(): void {
    const { child } = this;
    child.stdout.on('data', (c: Buffer) => this.stdout.push(c));
    child.stderr.on('data', (c: Buffer) => this.stderr.push(c));
    for (const pipe of [child.stdout, child.stderr]) {
      pipe.once('close', () => {
        this.openPipes--;
        this.end();
      });
    }
    this.signal.addEventListener('abort', this.stop, { once: true });
    child.once('error', this.failedToStart);
    child.once('exit', this.exited);
  }

  private signalGroup(signal: NodeJS.Signals): void {
    if (this.group === undefined) return;
    killGroup(this.group, signal);
    if (signal === 'SIGKILL') liveGroups.delete(this.group);
  }

  private readonly stop = (): void => {
    if (this.stopping) return;
    this.stopping = true;
    this.signalGroup('SIGTERM');
    // Never cleared: a process that ignored SIGTERM may hold no pipe and outlive the leader.
    setLongTimeout(() => {
      this.signalGroup('SIGKILL');
      this.killed = true;
      this.end();
    }, this.limits.killGraceMs);
  };

  private readonly exited = (code: number | null, signal: NodeJS.Signals | null): void => {
    this.leader = { code, signal };
    if (!this.stopping) {
      this.drainTimer = setTimeout(() => {
        this.drained = true;
        this.end();
      }, this.limits.drainMs);
    }
    this.end();
  };

  private readonly failedToStart = (error: NodeJS.ErrnoException): void => {
    if (this.ended) return;
    this.ended = true;
    if (this.group !== undefined) liveGroups.delete(this.group);
    this.signal.removeEventListener('abort', this.stop);
    this.settle.reject(this.startError(error));
  };

  private end(): void {
    if (this.ended || this.leader === undefined || (this.openPipes > 0 && !this.killed && !this.drained)) return;
    this.ended = true;
    clearTimeout(this.drainTimer);
    this.signal.removeEventListener('abort', this.stop);
    if (!this.stopping) this.signalGroup('SIGKILL');
    // A process that left the group may still hold the pipes; its output is not the step's.
    this.child.stdout.destroy();
    this.child.stderr.destroy();
    const out = this.stdout.toString();
    const err = this.stderr.toString();
    if (this.leader.code === 0) this.settle.resolve({ exit_code: 0, stdout: out, stderr: err });
    else this.settle.reject(exitError(this.leader, out, err));
  }
}

function startError(file: string, cwd: string | undefined, error: NodeJS.ErrnoException): StepError {
  const hint = error.code === 'ENOENT' ? (cwd ? ` (does the program exist, and the directory "${cwd}"?)` : ' (is the program installed and on PATH?)') : '';
  return new StepError({ message: `could not start "${file}": ${error.message}${hint}`, code: 'SPAWN', retryable: false });
}

function exitError({ code, signal }: Exit, out: string, err: string): StepError {
  const tail = lastLines(err || out, 5);
  const how = code !== null ? `exited with code ${code}` : `was killed by ${signal}`;
  return new StepError({
    message: `command ${how}${tail ? `: ${tail}` : ''}`,
    code: 'EXIT_CODE',
    retryable: true,
    ...(code !== null && { exit_code: code }),
    ...(signal !== null && { signal }),
    stdout_tail: lastLines(out, 20),
    stderr_tail: lastLines(err, 20),
  });
}
