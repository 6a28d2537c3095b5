// Makes a fresh clone ready: checks Node, installs npm dependencies when missing or stale, and
// installs nats-server from Debian's packages when it is absent (as root) or says how to.
import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const say = (line) => process.stderr.write(`[bootstrap] ${line}\n`);

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 19)) {
  say(`Node ${process.versions.node} is too old: Taskstream needs Node 20.19 or later (20, 22 or 24 LTS). Install a newer Node and run this again.`);
  process.exit(1);
}

const lock = join(root, 'package-lock.json');
const installed = join(root, 'node_modules', '.package-lock.json');
if (!existsSync(installed) || (existsSync(lock) && statSync(lock).mtimeMs > statSync(installed).mtimeMs)) {
  say('installing npm dependencies (npm ci)...');
  let result = spawnSync('npm', [existsSync(lock) ? 'ci' : 'install', '--no-fund', '--no-audit'], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0 && existsSync(lock)) {
    // A registry that serves only this platform's optional packages makes npm ci reject the lock file.
    say('npm ci rejected the lock file; trying npm install...');
    result = spawnSync('npm', ['install', '--no-fund', '--no-audit'], { cwd: root, stdio: 'inherit' });
  }
  if (result.status !== 0) {
    say('npm could not install the dependencies; see its output above.');
    process.exit(result.status ?? 1);
  }
}

function findNatsServer() {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/bin'];
  if (process.env.NATS_SERVER_BIN) dirs.unshift(dirname(process.env.NATS_SERVER_BIN));
  for (const dir of dirs) {
    try {
      accessSync(join(dir, 'nats-server'), constants.X_OK);
      return join(dir, 'nats-server');
    } catch {
      // keep looking
    }
  }
  return undefined;
}

// Containers talk to a NATS cluster and need no local server: --no-nats skips the check.
if (!process.argv.includes('--no-nats') && !findNatsServer()) {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const hasApt = spawnSync('sh', ['-c', 'command -v apt-get'], { stdio: 'ignore' }).status === 0;
  if (isRoot && hasApt) {
    say('nats-server is missing; installing it from Debian packages (apt-get install nats-server)...');
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
    execFileSync('apt-get', ['install', '-y', '-qq', 'nats-server'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  } else {
    say('nats-server is not installed. Install it with `sudo apt-get install nats-server` (Debian/Ubuntu) or from the NATS releases, or set NATS_SERVER_BIN, then run this again.');
    process.exit(1);
  }
}
