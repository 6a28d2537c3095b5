import { lstat, readFile } from 'node:fs/promises';
import { MAX_SECRET_BYTES, SecretStore } from '@taskstream/nats';
import { DEFAULT_WEBHOOK_SECRET, resolveForAttempt, type QueueSecretSource, type TaskSpec } from '@taskstream/domain';
import type { ServiceContext } from '@taskstream/runtime';
import { InfrastructureError } from './errors.js';
import { StepError } from './steps/index.js';

export type SecretReader = (name: string) => Promise<string | undefined>;

/** Where `${secrets.NAME}` is read when the queue does not name it: `given`, or the secrets bucket. */
export async function openSecretReader(ctx: ServiceContext, given: SecretReader | undefined): Promise<SecretReader> {
  if (given !== undefined) return given;
  const store = await SecretStore.open(ctx.js, ctx.topo);
  return (name) => store.get(name);
}

/**
 * Where the task's secrets are read: on this host for those its queue names, else `readStored`,
 * whose failure is the infrastructure's, so no attempt is spent on it.
 */
export function taskSecretReader(spec: TaskSpec, env: NodeJS.ProcessEnv, readStored: SecretReader): SecretReader {
  return async (name) => {
    const onHost = spec.queue_secrets?.[name];
    if (onHost !== undefined) return readQueueSecret(name, onHost, env);
    try {
      return await readStored(name);
    } catch (error) {
      throw new InfrastructureError(`could not read secret "${name}": ${(error as Error).message}`);
    }
  };
}

/**
 * Reads a secret the task's queue names (Tasked's queue `secrets`) on this host: an environment
 * variable of the executor process, or a regular file (trimmed), never through a symlink or "..".
 * A variable or file that does not exist fails the task, naming it.
 */
export async function readQueueSecret(name: string, source: QueueSecretSource, env: NodeJS.ProcessEnv): Promise<string> {
  const missing = (where: string) =>
    new StepError({ message: `secret "${name}": the queue reads it from ${where}, which does not exist on this executor's host`, code: 'SECRET_NOT_FOUND', retryable: false });
  if ('env' in source) {
    const value = env[source.env];
    if (value === undefined) throw missing(`environment variable ${source.env}`);
    return value;
  }
  const refuse = (why: string) => new StepError({ message: `secret "${name}": the queue's file ${JSON.stringify(source.file)} ${why}`, code: 'SECRET_UNREADABLE', retryable: false });
  if (!source.file.startsWith('/') || source.file.split('/').includes('..')) throw refuse('must be an absolute path without ".."');
  const stats = await lstat(source.file).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw refuse(`cannot be read (${error.code ?? error.message})`);
  });
  if (stats === undefined) throw missing(`file ${JSON.stringify(source.file)}`);
  if (stats.isSymbolicLink()) throw refuse('is a symbolic link; point the queue at the file itself');
  if (!stats.isFile()) throw refuse('is not a regular file');
  if (stats.size > MAX_SECRET_BYTES) throw refuse(`is ${stats.size} bytes, over the ${MAX_SECRET_BYTES}-byte limit of a secret`);
  return (await readFile(source.file, 'utf8')).trim();
}

/**
 * Reads every secret a task needs; a secret that is not set fails the task (not retryable), naming
 * it. The operator's webhook signing key is never a step's: a flow that could read it could sign
 * completion webhooks for any other flow.
 */
export async function loadSecrets(names: readonly string[], read: (name: string) => Promise<string | undefined>): Promise<Map<string, string>> {
  const values = new Map<string, string>();
  for (const name of names) {
    if (name === DEFAULT_WEBHOOK_SECRET) {
      throw new StepError({
        message: `secret "${name}" signs every flow's completion webhooks and no step may use it; give the step a secret of its own`,
        code: 'SECRET_RESERVED',
        retryable: false,
      });
    }
    const value = await read(name);
    if (value === undefined) {
      throw new StepError({
        message: `secret "${name}" is not set; set it with \`taskstream secret set ${name}\` (or PUT /api/v1/secrets/${name}) and run the task again`,
        code: 'SECRET_NOT_FOUND',
        retryable: false,
      });
    }
    values.set(name, value);
  }
  return values;
}

/**
 * The spec one attempt runs: `${task.…}`, `${secrets.…}` and `${tasks.<id>.artifacts.<name>}` (the
 * path `artifactPath` gives) resolved, shell commands through environment variables.
 */
export function specForAttempt(spec: TaskSpec, taskId: string, attempt: number, secrets: ReadonlyMap<string, string>, artifactPath?: (taskId: string, name: string) => string | undefined): TaskSpec {
  const resolved = resolveForAttempt(spec, taskId, attempt, (name) => secrets.get(name), artifactPath);
  if (!resolved.ok) throw new StepError({ message: resolved.message, code: resolved.code, retryable: false });
  return resolved.spec;
}

/** Shorter values are not redacted: replacing every "a" would destroy the output and hide nothing. */
const MIN_REDACTED_LENGTH = 3;
export const REDACTED = '[redacted]';

/**
 * `value` with every occurrence of a secret's value replaced, in every string at any depth (keys
 * too). Applied to whatever a task records (output, errors), so a step echoing a secret does not
 * put it into the history.
 */
export function redact<T>(value: T, secrets: readonly string[]): T {
  const hidden = secrets.filter((s) => s.length >= MIN_REDACTED_LENGTH).sort((a, b) => b.length - a.length);
  if (hidden.length === 0) return value;
  const text = (s: string) => hidden.reduce((out, secret) => out.split(secret).join(REDACTED), s);
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return text(v);
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, inner]) => [text(k), walk(inner)]));
    return v;
  };
  return walk(value) as T;
}
