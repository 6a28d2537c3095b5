import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { artifactObjectName, type TaskSpec, type WorkItem } from '@taskstream/domain';
import type { StoredArtifact } from '@taskstream/nats';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_ARTIFACT_LIMITS, type ArtifactLimits, type Artifacts } from '../src/artifacts.js';
import { AttemptRunner, type AttemptDeps } from '../src/attempt-runner.js';
import { InfrastructureError } from '../src/errors.js';
import type { TaskEvent } from '../src/recorder.js';
import { createSteps, StepError } from '../src/steps/index.js';

/*
 * Shell steps' artifacts through the attempt runner and a real shell, over a store kept in memory
 * (the object store itself, on a real server, is exercised by test/e2e/artifacts.test.ts).
 */

const FLOW = '01JAAAAAAAAAAAAAAAAAAAAAAA';
const base = mkdtempSync(join(tmpdir(), 'artifacts-test-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

const sha = (text: string) => createHash('sha256').update(text).digest('hex');

class MemoryStore {
  readonly objects = new Map<string, Buffer>();
  failPuts = false;
  async put(object: string, data: ReadableStream<Uint8Array>): Promise<StoredArtifact> {
    if (this.failPuts) throw new Error('no responders');
    const chunks: Uint8Array[] = [];
    for await (const chunk of data as unknown as AsyncIterable<Uint8Array>) chunks.push(chunk);
    const bytes = Buffer.concat(chunks);
    this.objects.set(object, bytes);
    return { object, bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
  }
  async get(object: string) {
    const bytes = this.objects.get(object);
    if (bytes === undefined) return null;
    return { object, bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'), data: new Blob([bytes]).stream() };
  }
  async objectsOf(flowId: string): Promise<StoredArtifact[]> {
    return [...this.objects].filter(([name]) => name.startsWith(`${flowId}/`)).map(([object, bytes]) => ({ object, bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') }));
  }
}

function attempt(spec: Partial<TaskSpec>, options: { limits?: Partial<ArtifactLimits>; store?: MemoryStore; taskId?: string } = {}) {
  const store = options.store ?? new MemoryStore();
  const taskId = options.taskId ?? 'extract';
  const recorded: TaskEvent[] = [];
  const artifacts: Artifacts = { store, limits: { ...DEFAULT_ARTIFACT_LIMITS, ...options.limits }, baseDir: base };
  const deps: AttemptDeps = {
    config: { executorId: 'x', durableRetryAfterMs: 1_000, env: {} },
    recorder: {
      append: async (_item, event) => {
        recorded.push(event);
        return { duplicate: false };
      },
      hide: () => undefined,
      budget: () => 100_000,
    },
    stops: { reasonFor: () => undefined, storedStop: async () => undefined, knownStop: async () => undefined },
    readSecret: async () => undefined,
    artifacts,
  };
  const item: WorkItem = {
    version: 1,
    flow_id: FLOW,
    task_id: taskId,
    spec: { id: taskId, depends_on: [], queue: 'default', priority: 0, executor: 'shell', config: {}, ...spec },
    idempotency_key: `${FLOW}:${taskId}`,
    dispatched_at: new Date(0).toISOString(),
  };
  const runner = new AttemptRunner(deps, item, createSteps({ shellEnabled: true }).shell!, new AbortController(), { after: 0, unspent: 0, delayMs: 0 });
  return { runner, store, recorded, stored: () => recorded.filter((e) => e.type === 'task.artifact_stored').map((e) => (e as { data: unknown }).data) };
}

const failure = async (run: Promise<unknown>) => {
  const error = await run.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(StepError);
  return (error as StepError).detail;
};

describe("a shell step's artifacts", () => {
  it('are the files it leaves in $TASKSTREAM_ARTIFACTS (and $TASKED_ARTIFACTS), each stored and recorded before the step counts as done', async () => {
    const { runner, store, recorded, stored } = attempt({
      config: { command: 'mkdir -p "$TASKSTREAM_ARTIFACTS/out" && printf rows > "$TASKSTREAM_ARTIFACTS/out/rows.csv" && printf hi > "$TASKED_ARTIFACTS/a b.txt" && echo "$TASKSTREAM_ARTIFACTS"' },
    });
    const output = (await runner.run()) as { stdout: string };
    expect(stored()).toEqual([
      { name: 'a b.txt', bytes: 2, sha256: sha('hi'), object: artifactObjectName(FLOW, 'extract', 1, 'a b.txt') },
      { name: 'out/rows.csv', bytes: 4, sha256: sha('rows'), object: artifactObjectName(FLOW, 'extract', 1, 'out/rows.csv') },
    ]);
    expect(store.objects.get(`${FLOW}/extract/1/out/rows.csv`)!.toString()).toBe('rows');
    expect(recorded.map((e) => e.type)).toEqual(['task.started', 'task.artifact_stored', 'task.artifact_stored']);
    // The attempt's directory is gone once it ended.
    const dir = output.stdout.trim();
    expect(dir.startsWith(base)).toBe(true);
    expect(existsSync(dir)).toBe(false);
  });

  it('over the size of a file fail the attempt for good, naming the file, its size and the limit; nothing is stored', async () => {
    const { runner, store, stored } = attempt({ config: { command: 'printf small > "$TASKSTREAM_ARTIFACTS/ok.txt"; head -c 2048 /dev/zero > "$TASKSTREAM_ARTIFACTS/big.bin"' }, retries: 2 }, { limits: { maxFileBytes: 1024 } });
    const error = await failure(runner.run());
    expect(error).toMatchObject({ code: 'ARTIFACT_TOO_LARGE', retryable: false });
    expect(error.message).toContain('"big.bin" is 2048 bytes, over the limit of 1024 bytes per file (TASKSTREAM_ARTIFACT_MAX_FILE_BYTES)');
    expect(runner.attempt).toBe(1);
    expect(stored()).toEqual([]);
    expect(store.objects.size).toBe(0);
  });

  it('are regular files only: a symbolic link is refused, never followed', async () => {
    const { runner } = attempt({ config: { command: 'ln -s /etc/passwd "$TASKSTREAM_ARTIFACTS/passwd"' } });
    const error = await failure(runner.run());
    expect(error).toMatchObject({ code: 'ARTIFACT_NOT_A_FILE', retryable: false });
    expect(error.message).toContain('"passwd" is a symbolic link');
  });

  it('are none when the step removed its directory, and refused when it put a link in its place', async () => {
    const removed = attempt({ config: { command: 'rm -r "$TASKSTREAM_ARTIFACTS"' } });
    await removed.runner.run();
    expect(removed.stored()).toEqual([]);
    const linked = attempt({ config: { command: 'rmdir "$TASKSTREAM_ARTIFACTS" && ln -s /etc "$TASKSTREAM_ARTIFACTS"' } });
    expect(await failure(linked.runner.run())).toMatchObject({ code: 'ARTIFACT_NOT_A_FILE', retryable: false });
  });

  it('are bounded in number per attempt and in bytes per flow', async () => {
    const many = attempt({ config: { command: 'for i in 1 2 3 4; do touch "$TASKSTREAM_ARTIFACTS/f$i"; done' } }, { limits: { maxFiles: 3 } });
    expect(await failure(many.runner.run())).toMatchObject({ code: 'TOO_MANY_ARTIFACTS', retryable: false });

    const store = new MemoryStore();
    store.objects.set(`${FLOW}/earlier/1/x.bin`, Buffer.alloc(900));
    const flow = attempt({ config: { command: 'head -c 200 /dev/zero > "$TASKSTREAM_ARTIFACTS/y.bin"' } }, { store, limits: { maxFlowBytes: 1000 } });
    const error = await failure(flow.runner.run());
    expect(error).toMatchObject({ code: 'FLOW_ARTIFACTS_TOO_LARGE', retryable: false });
    expect(error.message).toContain('over the limit of 1000 bytes of artifacts per flow (TASKSTREAM_ARTIFACT_MAX_FLOW_BYTES)');
  });

  it('that cannot be stored hand the work item back: the store, not the step, failed', async () => {
    const store = new MemoryStore();
    store.failPuts = true;
    const { runner } = attempt({ config: { command: 'touch "$TASKSTREAM_ARTIFACTS/x"' } }, { store });
    await expect(runner.run()).rejects.toBeInstanceOf(InfrastructureError);
  });
});

describe('artifacts a later task reads', () => {
  const reading = (object: string, bytes: number, digest: string): Partial<TaskSpec> => ({
    config: { command: 'cat "${tasks.extract.artifacts.out/rows.csv}"' },
    run_time_strings: [['config', 'command']],
    bindings: { tasks: { extract: { artifacts: { 'out/rows.csv': { object, bytes, sha256: digest } } } }, params: {}, flow: { id: FLOW } },
  });

  it('are fetched before the step runs and reach it as a local path', async () => {
    const store = new MemoryStore();
    const object = artifactObjectName(FLOW, 'extract', 1, 'out/rows.csv');
    store.objects.set(object, Buffer.from('a,b\n1,2\n'));
    const { runner } = attempt(reading(object, 8, sha('a,b\n1,2\n')), { store, taskId: 'load' });
    expect(((await runner.run()) as { stdout: string }).stdout).toBe('a,b\n1,2\n');
    expect(readdirSync(base)).toEqual([]);
  });

  it('that are gone from the store, or changed, fail the task for good', async () => {
    const missing = attempt(reading(`${FLOW}/extract/1/out/rows.csv`, 8, sha('x')), { taskId: 'load' });
    expect(await failure(missing.runner.run())).toMatchObject({ code: 'ARTIFACT_MISSING', retryable: false });

    const store = new MemoryStore();
    store.objects.set(`${FLOW}/extract/1/out/rows.csv`, Buffer.from('changed'));
    const changed = attempt(reading(`${FLOW}/extract/1/out/rows.csv`, 8, sha('a,b\n1,2\n')), { store, taskId: 'load' });
    expect(await failure(changed.runner.run())).toMatchObject({ code: 'ARTIFACT_CORRUPT', retryable: false });
  });
});
