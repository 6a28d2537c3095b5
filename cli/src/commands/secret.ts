import { GatewayClient } from '../client.js';
import { UserError } from '../user-error.js';

interface SecretInfo {
  name: string;
  updated_at: string;
}

interface ServerOptions {
  server: string;
}

const secretPath = (name: string) => `/api/v1/secrets/${encodeURIComponent(name)}`;

/**
 * Everything stdin holds, as UTF-8 text, without one trailing newline (the one `echo` or a file's
 * last line adds). Reading the value here keeps it out of the shell's history and the process list.
 */
async function readStdin(name: string): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write(`value of secret ${name} (then Enter and Ctrl-D):\n`);
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
  } catch {
    throw new UserError(`the value of secret ${name} on stdin is not UTF-8 text`, 'secrets are text; encode binary values, e.g. with base64');
  }
  const value = text.replace(/\r?\n$/, '');
  if (value === '') throw new UserError(`no value for secret ${name} arrived on stdin`, `pipe it in, e.g. printf %s "$TOKEN" | taskstream secret set ${name}`);
  return value;
}

/** The PUT, answered and refused like every other request of GatewayClient. */
async function put(client: GatewayClient, path: string, body: unknown): Promise<SecretInfo> {
  return (await client.putWithStatus<SecretInfo>(path, body)).body;
}

/** `taskstream secret set NAME [VALUE]`: the value from the argument, or from stdin when omitted or "-". */
export async function setSecret(name: string, value: string | undefined, options: ServerOptions): Promise<void> {
  const secret = value === undefined || value === '-' ? await readStdin(name) : value;
  const stored = await put(new GatewayClient(options.server), secretPath(name), { value: secret });
  console.log(`secret ${stored.name} set at ${stored.updated_at}`);
}

export async function listSecrets(options: ServerOptions & { json?: boolean }): Promise<void> {
  const { secrets } = JSON.parse(await new GatewayClient(options.server).text('/api/v1/secrets')) as { secrets: SecretInfo[] };
  if (options.json) return console.log(JSON.stringify(secrets, null, 2));
  if (secrets.length === 0) console.log('no secrets');
  const width = Math.max(0, ...secrets.map((s) => s.name.length));
  for (const s of secrets) console.log(`${s.name.padEnd(width)}  ${s.updated_at}`);
}

export async function deleteSecret(name: string, options: ServerOptions): Promise<void> {
  await new GatewayClient(options.server).remove(secretPath(name));
  console.log(`secret ${name} deleted`);
}
