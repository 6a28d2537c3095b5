import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

const INSTALL_HINT =
  'nats-server was not found on PATH or in /usr/sbin. Install it with `apt-get install nats-server` (Debian/Ubuntu), ' +
  'or download it from the NATS releases, or set NATS_SERVER_BIN to its path.';

/** Finds the nats-server binary: NATS_SERVER_BIN, then PATH, then /usr/sbin and /usr/local/bin. */
export function findNatsServer(): string {
  const candidates = [
    process.env.NATS_SERVER_BIN,
    ...(process.env.PATH ?? '').split(delimiter).map((dir) => join(dir, 'nats-server')),
    '/usr/sbin/nats-server',
    '/usr/local/bin/nats-server',
  ].filter((c): c is string => Boolean(c));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // keep looking
    }
  }
  throw new Error(INSTALL_HINT);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

async function waitForPort(port: number, timeoutMs: number, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`nats-server exited with ${child.exitCode ?? child.signalCode}:\n${output()}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = new Socket();
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
      socket.connect(port, '127.0.0.1');
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nats-server did not listen on port ${port} within ${timeoutMs} ms:\n${output()}`);
}

// Node cannot ask the kernel to signal a child when its parent dies (no PR_SET_PDEATHSIG), so a
// tiny shell holds the read end of a pipe from this process. However this process ends, even by
// SIGKILL, the pipe reaches end-of-file and the shell stops nats-server: TERM so JetStream closes its
// store cleanly, KILL if it is still there after five seconds.
const WATCHDOG = 'read _; kill -TERM "$1" 2>/dev/null || exit 0; for _ in 1 2 3 4 5; do sleep 1; kill -0 "$1" 2>/dev/null || exit 0; done; kill -KILL "$1"';

/** Ends `pid` when this process ends, however it ends. Kill the returned watchdog once `pid` has exited, so it never signals a reused pid. */
function endWithThisProcess(pid: number): ChildProcess {
  // Its own session: a terminal's Ctrl-C must not end the watchdog before this process has stopped.
  const watchdog = spawn('/bin/sh', ['-c', WATCHDOG, 'taskstream-watchdog', String(pid)], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
  watchdog.unref();
  (watchdog.stdin as unknown as Socket).unref();
  return watchdog;
}

export interface NatsServerOptions {
  port?: number;
  storeDir?: string;
  /** Extra command-line arguments (cluster settings, server name, `-c <config file>`). */
  args?: string[];
  /** Variables added to the server's environment, e.g. the passwords a configuration file names as `$VAR`. */
  env?: Record<string, string>;
}

/** One nats-server process with JetStream on loopback: the embedded default and the test harness. */
export class NatsServer {
  private child: ChildProcess | undefined;
  private log = '';
  readonly ownsStore: boolean;

  private constructor(
    readonly port: number,
    readonly storeDir: string,
    private readonly args: string[],
    ownsStore: boolean,
    private readonly env: Record<string, string> = {},
  ) {
    this.ownsStore = ownsStore;
  }

  static async start(options: NatsServerOptions = {}): Promise<NatsServer> {
    const port = options.port ?? (await freePort());
    const ownsStore = options.storeDir === undefined;
    const storeDir = options.storeDir ?? mkdtempSync(join(tmpdir(), 'taskstream-nats-'));
    const server = new NatsServer(port, storeDir, options.args ?? [], ownsStore, options.env);
    await server.launch();
    return server;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  private async launch(): Promise<void> {
    this.log = '';
    // Its own session, so a Ctrl-C at the terminal reaches only this process, which stops its
    // services while the server is still there to take their last writes, and the server after them.
    const child = spawn(findNatsServer(), ['-a', '127.0.0.1', '-p', String(this.port), '-js', '-sd', this.storeDir, ...this.args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      env: { ...process.env, ...this.env },
    });
    const collect = (chunk: Buffer) => {
      this.log = (this.log + chunk.toString()).slice(-8000);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    this.child = child;
    if (child.pid !== undefined) {
      const watchdog = endWithThisProcess(child.pid);
      watchdog.once('error', (error) => {
        collect(Buffer.from(`could not start the watchdog that ends nats-server with this process: ${error.message}\n`));
        child.kill('SIGKILL');
      });
      child.once('exit', () => watchdog.kill('SIGKILL'));
    }
    await waitForPort(this.port, 15_000, child, () => this.log);
  }

  /**
   * Kills the process (SIGKILL by default: a crash, not a shutdown). The store stays for a restart.
   * The signal is sent before this returns, so a caller about to exit need not wait.
   */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill(signal);
    });
  }

  async restart(): Promise<void> {
    await this.kill('SIGKILL');
    await this.launch();
  }

  /** Stops the server and removes a store directory it created. */
  async stop(): Promise<void> {
    await this.kill('SIGTERM');
    if (this.ownsStore) rmSync(this.storeDir, { recursive: true, force: true });
  }

  output(): string {
    return this.log;
  }
}
