// The quick-start demo: a local endpoint stands in for the deploy API that examples/ci-pipeline.json
// calls, then the flow runs through the embedded stack (nats-server child + all five services).
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const port = 8787;

const deployApi = createServer((req, res) => {
  let body = '';
  req.on('data', (chunk) => (body += chunk));
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ deployed: true, request: body ? JSON.parse(body) : null, idempotency_key: req.headers['idempotency-key'] ?? null }));
  });
});

deployApi.once('error', (error) => {
  if (error.code === 'EADDRINUSE') console.error(`error: port ${port} is in use; the demo's stand-in deploy endpoint needs it. Stop whatever listens there and run the demo again.`);
  else console.error(`error: ${error.message}`);
  process.exit(2);
});

let cli;

// Ctrl-C at the terminal reaches the CLI as well, which stops its stack and exits 130: wait for it
// rather than return to the prompt while it is still stopping. Signals sent to the demo alone are passed on.
const interrupted = (signal) => process.exit(128 + constants.signals[signal]);
process.on('SIGINT', () => cli ?? interrupted('SIGINT'));
for (const signal of ['SIGTERM', 'SIGHUP']) process.on(signal, () => (cli ? cli.kill(signal) : interrupted(signal)));

deployApi.listen(port, '127.0.0.1', () => {
  cli = spawn(process.execPath, [join(root, 'cli', 'bin', 'taskstream.js'), 'run', join('examples', 'ci-pipeline.json')], { cwd: root, stdio: 'inherit' });
  cli.on('exit', (code) => {
    deployApi.close();
    process.exit(code ?? 1);
  });
});
