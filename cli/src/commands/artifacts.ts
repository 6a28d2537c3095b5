import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { pipeline } from 'node:stream/promises';
import { TaskstreamError } from '@taskstream/client';
import { userErrorOf, type GatewayClient } from '../client.js';
import { UserError } from '../user-error.js';

export interface ArtifactsOptions {
  /** Download this artifact instead of listing. */
  get?: string;
  /** Only this task's artifacts; needed to download a name several tasks stored. */
  task?: string;
  /** With --get: write here ("-" for standard output); by default the name's last part, in the current directory. */
  output?: string;
}

interface Listed {
  name: string;
  task: string;
  bytes: number;
  sha256: string;
  attempt: number;
}

/** The artifact's path in a URL: each part percent-encoded, the "/" between them kept. */
const namePath = (name: string) => name.split('/').map(encodeURIComponent).join('/');

/**
 * `taskstream artifacts FLOW`: the files the flow's steps stored, one a line (name, task, size,
 * SHA-256); with `--get NAME`, downloads one to `-o FILE` (or its own name), checked against its SHA-256.
 */
export async function artifactsCommand(client: GatewayClient, flowId: string, options: ArtifactsOptions): Promise<void> {
  const task = options.task !== undefined ? `?task=${encodeURIComponent(options.task)}` : '';
  if (options.get === undefined) {
    const { artifacts } = await client.get<{ artifacts: Listed[] }>(`/api/v1/flows/${encodeURIComponent(flowId)}/artifacts${task}`);
    if (artifacts.length === 0) {
      console.log(`Flow ${flowId} has no artifacts (a shell step stores the files it leaves in $TASKSTREAM_ARTIFACTS)`);
      return;
    }
    const width = Math.max(...artifacts.map((a) => a.name.length));
    const taskWidth = Math.max(...artifacts.map((a) => a.task.length));
    for (const a of artifacts) console.log(`${a.name.padEnd(width)}  ${a.task.padEnd(taskWidth)}  ${String(a.bytes).padStart(10)}  ${a.sha256}`);
    return;
  }
  await download(client, flowId, options.get, task, options.output);
}

async function download(client: GatewayClient, flowId: string, name: string, task: string, output: string | undefined): Promise<void> {
  let response: Response;
  try {
    response = await client.sdk.transport.raw({ method: 'GET', path: `/api/v1/flows/${encodeURIComponent(flowId)}/artifacts/${namePath(name)}${task}`, idempotent: true });
  } catch (error) {
    if (error instanceof TaskstreamError && error.code === 'ARTIFACT_AMBIGUOUS') throw new UserError(error.message, "add --task <id> to say which task's file", 2);
    throw userErrorOf(error, client.base);
  }
  if (response.body === null) throw new UserError(`the gateway answered ${response.status} without a body`, undefined, 3);
  const expected = (response.headers.get('etag') ?? '').replace(/"/g, '');
  const hash = createHash('sha256');
  const body = Readable.fromWeb(response.body as WebReadableStream<Uint8Array>);
  body.on('data', (chunk: Uint8Array) => hash.update(chunk));
  const mismatch = () => new UserError(`the download of "${name}" does not match its SHA-256 (${expected}); download it again`, undefined, 3);
  if (output === '-') {
    await pipeline(body, process.stdout, { end: false });
    if (hash.digest('hex') !== expected) throw mismatch();
    return;
  }
  const target = output ?? name.slice(name.lastIndexOf('/') + 1);
  // Written beside the target and renamed once whole and checked, so a broken download never leaves a file under its name.
  const partial = `${target}.partial`;
  try {
    await pipeline(body, createWriteStream(partial, { flags: 'w' }));
  } catch (error) {
    await rm(partial, { force: true });
    throw new UserError(`could not write ${target}: ${(error as Error).message}`);
  }
  if (hash.digest('hex') !== expected) {
    await rm(partial, { force: true });
    throw mismatch();
  }
  await rename(partial, target);
  console.error(`Wrote ${target} (${response.headers.get('content-length') ?? '?'} bytes, sha256 ${expected})`);
}
