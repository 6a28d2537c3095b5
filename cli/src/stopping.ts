import { constants } from 'node:os';
import { createLogger, exitOnUncaughtErrors, onStopSignal } from '@taskstream/runtime';
import type { Stack } from './embedded.js';

/** Long enough for running steps' grace and the services' hand-back; short enough for a person waiting at Ctrl-C. */
const STOP_BOUND_MS = 10_000;

export interface Interrupt {
  /** The stack to stop, once started. */
  stack?: Stack;
  /** Whether a signal has begun stopping the process. */
  readonly stopping: boolean;
}

/**
 * For the rest of the process's life, SIGINT or SIGTERM stops `stack` (if set by then) and exits
 * 128 + the signal's number, as a shell reports an interrupted command. A second Ctrl-C, or a stop
 * outlasting the bound, ends the steps' processes and nats-server and exits at once. An error
 * nothing caught (a bug) does the same after one fatal JSON line on standard error (standard output
 * may be a protocol: `taskstream mcp`), and exits 1.
 */
export function stopOnInterrupt(): Interrupt {
  let stopping = false;
  const interrupt: Interrupt = {
    get stopping() {
      return stopping;
    },
  };
  // The steps' processes run in process groups of their own and would outlive an exit that did not end them.
  exitOnUncaughtErrors(createLogger('taskstream', 'fatal', process.stderr), () => interrupt.stack?.abort());
  onStopSignal(
    async () => {
      stopping = true;
      await interrupt.stack?.stop();
    },
    {
      timeoutMs: STOP_BOUND_MS,
      exitCode: (signal) => 128 + constants.signals[signal as keyof typeof constants.signals],
      force: () => interrupt.stack?.abort(),
      report: (event) => {
        if (event === 'stopping') process.stderr.write('\nStopping... (press Ctrl-C again to exit at once)\n');
        else if (event === 'timed out') process.stderr.write(`Did not stop within ${STOP_BOUND_MS / 1000} s; ending running steps and nats-server and exiting.\n`);
        else process.stderr.write('Exiting at once; running steps and nats-server are ended, unfinished work runs again next time.\n');
      },
    },
  );
  return interrupt;
}
