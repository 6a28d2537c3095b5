import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { artifactInputsOf, artifactNameProblem, artifactObjectName, MAX_ARTIFACT_DEPTH, type TaskSpec, type WorkItem } from '@taskstream/domain';
import { ArtifactStore, type StoredArtifact } from '@taskstream/nats';
import type { ServiceContext } from '@taskstream/runtime';
import { InfrastructureError } from './errors.js';
import type { Recorder } from './recorder.js';
import { StepError } from './steps/index.js';

/** How much a shell step may store: per file, files per attempt, bytes per flow (every attempt's files count). */
export interface ArtifactLimits {
  maxFileBytes: number;
  maxFiles: number;
  maxFlowBytes: number;
}

export const DEFAULT_ARTIFACT_LIMITS: ArtifactLimits = { maxFileBytes: 100 * 1024 * 1024, maxFiles: 100, maxFlowBytes: 1024 * 1024 * 1024 };

/** What attempts need to store and fetch artifacts. */
export interface Artifacts {
  store: Pick<ArtifactStore, 'put' | 'get' | 'objectsOf'>;
  limits: ArtifactLimits;
  /** Where attempts' directories are made (the system's temporary directory by default). */
  baseDir?: string;
}

export async function openArtifacts(ctx: ServiceContext, limits: Partial<ArtifactLimits>, baseDir?: string): Promise<Artifacts> {
  return { store: await ArtifactStore.open(ctx.js, ctx.topo), limits: { ...DEFAULT_ARTIFACT_LIMITS, ...limits }, ...(baseDir !== undefined && { baseDir }) };
}

/** A file found in an attempt's artifacts directory. */
export interface FoundFile {
  name: string;
  path: string;
  bytes: number;
}

/**
 * The artifacts store did not answer (or refused): not the step's fault, so the attempt is not
 * recorded as failed and the work item goes back to JetStream, to run again from the log.
 */
export class ArtifactsUnavailable extends InfrastructureError {
  override name = 'ArtifactsUnavailable';
}

const MIB = 1024 * 1024;
const size = (bytes: number) => (bytes >= MIB ? `${(bytes / MIB).toFixed(1)} MiB (${bytes} bytes)` : `${bytes} bytes`);
const refuse = (code: string, message: string) => new StepError({ message, code, retryable: false });

/**
 * The directories of one attempt of a shell step, under the executor's temporary directory, made
 * for the attempt alone (mode 0700) and removed when it ends, whatever happened: `out`, exported to
 * the step as TASKSTREAM_ARTIFACTS (and Tasked's TASKED_ARTIFACTS), and `in`, where the artifacts
 * its references name are fetched.
 */
export class AttemptFiles {
  private readonly fetched = new Map<string, string>();

  private constructor(
    readonly root: string,
    private readonly artifacts: Artifacts,
  ) {}

  get out(): string {
    return join(this.root, 'out');
  }

  static async create(artifacts: Artifacts): Promise<AttemptFiles> {
    const root = await mkdtemp(join(artifacts.baseDir ?? tmpdir(), 'taskstream-attempt-'));
    await mkdir(join(root, 'out'), { mode: 0o700 });
    await mkdir(join(root, 'in'), { mode: 0o700 });
    return new AttemptFiles(root, artifacts);
  }

  async remove(): Promise<void> {
    await rm(this.root, { recursive: true, force: true, maxRetries: 3 });
  }

  /** Where the attempt's copy of a task's artifact is, once fetched. */
  readonly pathOf = (taskId: string, name: string): string | undefined => this.fetched.get(`${taskId}\0${name}`);

  /**
   * Fetches every artifact the task's references name (the planner bound them in task.ready) into
   * `in/<task>/<name>`, checking each against the size and digest its event recorded.
   */
  async fetchInputs(spec: TaskSpec, signal?: AbortSignal): Promise<void> {
    for (const input of artifactInputsOf(spec)) {
      if (artifactNameProblem(input.name) !== undefined) throw refuse('REFERENCE_ERROR', `artifact ${JSON.stringify(input.name)} of task "${input.task}" has a name no file may have`);
      const dir = join(this.root, 'in', directoryFor(input.task));
      const path = join(dir, input.name);
      await mkdir(join(path, '..'), { recursive: true, mode: 0o700 });
      let found;
      try {
        found = await this.artifacts.store.get(input.object);
      } catch (error) {
        throw new ArtifactsUnavailable((error as Error).message);
      }
      if (found === null) {
        throw refuse('ARTIFACT_MISSING', `artifact "${input.name}" of task "${input.task}" is no longer in the artifacts store (object "${input.object}"); it was deleted or expired: run the task that stores it again`);
      }
      if (found.sha256 !== input.sha256 || found.bytes !== input.bytes) {
        throw refuse('ARTIFACT_CORRUPT', `artifact "${input.name}" of task "${input.task}" does not match what its task stored (${input.bytes} bytes, SHA-256 ${input.sha256}); the object "${input.object}" was changed`);
      }
      try {
        // Within the attempt's time: its timeout or cancel stops a fetch that hangs.
        await pipeline(Readable.fromWeb(found.data as import('node:stream/web').ReadableStream<Uint8Array>), createWriteStream(path, { flags: 'wx', mode: 0o600 }), ...(signal ? [{ signal }] : []));
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        throw new ArtifactsUnavailable(`could not fetch artifact "${input.name}" of task "${input.task}": ${(error as Error).message}`);
      }
      this.fetched.set(`${input.task}\0${input.name}`, path);
    }
  }

  /**
   * The files the step left in `out`, checked before anything is stored: regular files only (a
   * symbolic link is never followed: it could point anywhere the executor may read), valid names,
   * at most `maxFiles` of at most `maxFileBytes` each. A refusal names the file, its size and the
   * limit, and fails the attempt for good: running the step again would leave the same files.
   */
  async collect(hidden: readonly string[] = []): Promise<FoundFile[]> {
    const { maxFiles, maxFileBytes } = this.artifacts.limits;
    const found: FoundFile[] = [];
    const walk = async (dir: string, prefix: string, depth: number): Promise<void> => {
      const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      for (const entry of entries) {
        const name = prefix + entry.name;
        const path = join(dir, entry.name);
        const problem = artifactNameProblem(name);
        if (problem !== undefined) throw refuse('ARTIFACT_NAME_INVALID', `the artifact ${JSON.stringify(name)} ${problem}; rename it in $TASKSTREAM_ARTIFACTS`);
        if (hidden.some((secret) => secret.length >= 3 && name.includes(secret))) {
          throw refuse('ARTIFACT_NAME_INVALID', `an artifact's name holds the value of a secret the task uses; names are recorded in events and shown, so name the file otherwise`);
        }
        const stats = await lstat(path);
        if (stats.isDirectory()) {
          if (depth + 1 >= MAX_ARTIFACT_DEPTH) throw refuse('ARTIFACT_NAME_INVALID', `the directory "${name}" in $TASKSTREAM_ARTIFACTS is nested deeper than ${MAX_ARTIFACT_DEPTH - 1} levels; store its files higher up`);
          await walk(path, `${name}/`, depth + 1);
          continue;
        }
        if (!stats.isFile()) {
          const what = stats.isSymbolicLink() ? 'a symbolic link' : 'not a regular file';
          throw refuse('ARTIFACT_NOT_A_FILE', `the artifact "${name}" is ${what}; only regular files are stored: copy the file itself into $TASKSTREAM_ARTIFACTS`);
        }
        if (stats.size > maxFileBytes) {
          throw refuse('ARTIFACT_TOO_LARGE', `the artifact "${name}" is ${size(stats.size)}, over the limit of ${size(maxFileBytes)} per file (TASKSTREAM_ARTIFACT_MAX_FILE_BYTES); compress or split it, or keep large data in storage of its own and store a reference to it`);
        }
        found.push({ name, path, bytes: stats.size });
        if (found.length > maxFiles) {
          throw refuse('TOO_MANY_ARTIFACTS', `the step left more than ${maxFiles} files in $TASKSTREAM_ARTIFACTS, the limit per attempt (TASKSTREAM_ARTIFACT_MAX_FILES); archive them into one (tar) or store fewer`);
        }
      }
    };
    // The step may have removed its directory, or put a link in its place: never followed either.
    const root = await lstat(this.out).catch((error: NodeJS.ErrnoException) => (error.code === 'ENOENT' ? undefined : Promise.reject(error)));
    if (root === undefined) return found;
    if (!root.isDirectory()) throw refuse('ARTIFACT_NOT_A_FILE', '$TASKSTREAM_ARTIFACTS was replaced by something other than a directory (a symbolic link?); leave the directory in place and write the files into it');
    await walk(this.out, '', 0);
    return found;
  }

  /**
   * Stores the files, each as one object of this attempt, and records each with task.artifact_stored
   * (msgID by attempt and name, so a repeat is stored once), before the attempt's success is
   * recorded. Refuses, before storing anything, files that would take the flow past `maxFlowBytes`.
   */
  async store(item: WorkItem, attempt: number, files: readonly FoundFile[], recorder: Pick<Recorder, 'append'>): Promise<void> {
    if (files.length === 0) return;
    const { maxFlowBytes } = this.artifacts.limits;
    let stored: StoredArtifact[];
    try {
      stored = await this.artifacts.store.objectsOf(item.flow_id);
    } catch (error) {
      throw new ArtifactsUnavailable(`could not read the artifacts flow ${item.flow_id} stored: ${(error as Error).message}`);
    }
    const before = stored.reduce((sum, o) => sum + o.bytes, 0);
    const adding = files.reduce((sum, f) => sum + f.bytes, 0);
    if (before + adding > maxFlowBytes) {
      throw refuse(
        'FLOW_ARTIFACTS_TOO_LARGE',
        `the step's ${files.length} artifact${files.length === 1 ? '' : 's'} (${size(adding)}) would take flow ${item.flow_id} to ${size(before + adding)}, over the limit of ${size(maxFlowBytes)} of artifacts per flow (TASKSTREAM_ARTIFACT_MAX_FLOW_BYTES); store less, or keep large data in storage of its own`,
      );
    }
    for (const file of files) {
      const object = artifactObjectName(item.flow_id, item.task_id, attempt, file.name);
      let put: StoredArtifact;
      try {
        put = await this.artifacts.store.put(object, fileStream(file));
      } catch (error) {
        throw new ArtifactsUnavailable((error as Error).message);
      }
      await recorder.append(item, { type: 'task.artifact_stored', attempt, data: { name: file.name, bytes: put.bytes, sha256: put.sha256, object } }, `${attempt}:artifact:${file.name}`);
    }
  }
}

/** The file's bytes up to the size it had when it was checked: a file still growing is not read past it. */
function fileStream(file: FoundFile): ReadableStream<Uint8Array> {
  if (file.bytes === 0) return new ReadableStream({ start: (c) => c.close() });
  return Readable.toWeb(createReadStream(file.path, { start: 0, end: file.bytes - 1 })) as unknown as ReadableStream<Uint8Array>;
}

/** A directory name for a task's fetched artifacts: its id when that is a plain file name, else a digest of it. */
function directoryFor(taskId: string): string {
  return /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$/.test(taskId) ? taskId : `task-${createHash('sha256').update(taskId).digest('hex').slice(0, 16)}`;
}

/** The limits an executor's options set, over DEFAULT_ARTIFACT_LIMITS. */
export function artifactLimitsOf(options: { artifactMaxFileBytes?: number; artifactMaxFiles?: number; artifactMaxFlowBytes?: number }): Partial<ArtifactLimits> {
  return {
    ...(options.artifactMaxFileBytes !== undefined && { maxFileBytes: options.artifactMaxFileBytes }),
    ...(options.artifactMaxFiles !== undefined && { maxFiles: options.artifactMaxFiles }),
    ...(options.artifactMaxFlowBytes !== undefined && { maxFlowBytes: options.artifactMaxFlowBytes }),
  };
}
