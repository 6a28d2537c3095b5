import {
  collectReferences,
  injectShellReferences,
  resolveReferences,
  type PathSegment,
  type ReferenceProblem,
  type ReferenceScope,
  type RefRoot,
} from '../expressions/index.js';
import type { TaskSpec } from '../flow/definition.js';
import type { ArtifactBinding } from './artifacts.js';
import { EXECUTOR_CONFIGS, isExecutorName } from '../flow/executors.js';

/*
 * A task's references are resolved in two places, each string exactly once, so a value never has
 * its text read again as references (an output holding "${secrets.DB}" stays that text):
 * - the planner, when the task becomes ready, resolves strings whose references it can resolve
 *   (tasks, flow, params) and records the result in task.ready;
 * - a string that also names `${task.…}`, `${secrets.…}` or `${tasks.<id>.artifacts.<name>}` is
 *   left whole for the executor, which resolves all of its references in one pass at each attempt,
 *   from the values the planner put in `bindings`. Secrets never reach an event. An artifact
 *   becomes the path of the attempt's local copy, which only the executor knows: the planner
 *   checks that the task stored it (else REFERENCE_ERROR, listing what it stored) and binds the
 *   object, size and digest the executor fetches and checks.
 */

export const PLANNER_ROOTS: ReadonlySet<RefRoot> = new Set<RefRoot>(['tasks', 'flow', 'params']);
const RUN_TIME_ROOTS: ReadonlySet<RefRoot> = new Set<RefRoot>(['task', 'secrets', 'artifacts']);
const ALL_ROOTS: ReadonlySet<RefRoot> = new Set<RefRoot>(['tasks', 'flow', 'params', 'task', 'secrets', 'artifacts']);
/** Artifacts a task stored, named in a message about a missing one. */
const ARTIFACTS_LISTED = 20;

type Path = PathSegment[];
type Resolved = { ok: true; spec: TaskSpec } | { ok: false; code: 'REFERENCE_ERROR' | 'CONFIG_INVALID'; message: string };

const COMMAND: Path = ['config', 'command'];
const samePath = (a: Path, b: Path) => a.length === b.length && a.every((s, i) => s === b[i]);
const NAMED_PROBLEMS = 5;

/** Paths (from the spec: ['config', ...] or ['input', ...]) of the strings that name run-time references (task, secrets, artifacts). */
export function runTimeStrings(spec: TaskSpec): Path[] {
  const paths: Path[] = [];
  for (const field of ['config', 'input'] as const) {
    const value = spec[field];
    if (value === undefined) continue;
    for (const { at, reference } of collectReferences(value).found) {
      const path = [field, ...at];
      if (RUN_TIME_ROOTS.has(reference.root) && !paths.some((p) => samePath(p, path))) paths.push(path);
    }
  }
  return paths;
}

/**
 * The planner's part: `spec` as task.ready records it. Strings left for the executor are kept
 * as written and listed in `run_time_strings`, with the outputs and params they name in `bindings`.
 */
export function resolveForReady(spec: TaskSpec, scope: ReferenceScope): Resolved {
  const runTime = runTimeStrings(spec);
  let work: { config: unknown; input?: unknown } = { config: spec.config, ...(spec.input !== undefined && { input: spec.input }) };
  for (const path of runTime) work = setAt(work, path, '') as typeof work;

  let injectedEnv: Record<string, string> | undefined;
  let command: string | undefined;
  const original = spec.config.command;
  if (spec.executor === 'shell' && typeof original === 'string' && !runTime.some((p) => samePath(p, COMMAND))) {
    const injected = injectShellReferences(original, scope, PLANNER_ROOTS);
    if (!injected.ok) return referenceFailure(injected.problems, COMMAND);
    if (Object.keys(injected.env).length > 0) {
      injectedEnv = injected.env;
      command = injected.command;
      work = setAt(work, COMMAND, '') as typeof work;
    }
  }
  const resolved = resolveReferences(work, scope, PLANNER_ROOTS);
  if (!resolved.ok) return referenceFailure(resolved.problems, []);
  let result = resolved.value as typeof work;
  if (command !== undefined) {
    result = setAt(result, COMMAND, command) as typeof work;
    const env = { ...((result.config as { env?: Record<string, unknown> }).env ?? {}), ...injectedEnv };
    result = setAt(result, ['config', 'env'], env) as typeof work;
  }
  for (const path of runTime) result = setAt(result, path, getAt(spec, path)) as typeof work;

  let config = result.config as Record<string, unknown>;
  const changed = resolved.resolved > 0 || command !== undefined;
  if (changed && runTime.length === 0) {
    // Resolved values meet the executor's schema only now; with strings still to resolve, the executor checks.
    const checked = checkConfig(spec.executor, config);
    if (!checked.ok) return checked;
    config = checked.config;
  }
  const ready: TaskSpec = { ...spec, config, ...(result.input !== undefined && { input: result.input }) };
  if (runTime.length > 0) {
    ready.run_time_strings = runTime;
    const tasks: NonNullable<TaskSpec['bindings']>['tasks'] = { ...ready.bindings?.tasks };
    const missing: ReferenceProblem[] = [];
    for (const path of runTime) {
      for (const { at, reference } of collectReferences(getAt(spec, path)).found) {
        const id = reference.taskId;
        if (id === undefined) continue;
        if (reference.root === 'artifacts') {
          const bound = bindArtifact(scope, id, String(reference.path[0]));
          if (typeof bound === 'string') missing.push({ at: [...path, ...at], reference: reference.text, message: `${reference.text}: ${bound}` });
          else tasks[id] = { ...tasks[id], artifacts: { ...tasks[id]?.artifacts, [String(reference.path[0])]: bound } };
          continue;
        }
        if (reference.root !== 'tasks') continue;
        const found = scope.outputs?.(id);
        if (found?.found) tasks[id] = { ...tasks[id], output: found.output };
      }
    }
    if (missing.length > 0) return referenceFailure(missing, []);
    ready.bindings = { tasks, params: scope.params ?? {}, flow: { id: scope.flowId ?? '' } };
  }
  return { ok: true, spec: ready };
}

/** What the task stored under `name`, as a binding, or why there is nothing to bind. */
function bindArtifact(scope: ReferenceScope, taskId: string, name: string): ArtifactBinding | string {
  const stored = scope.artifacts?.(taskId) ?? {};
  const artifact = Object.hasOwn(stored, name) ? stored[name] : undefined;
  if (artifact !== undefined) return { object: artifact.object, bytes: artifact.bytes, sha256: artifact.sha256 };
  const names = Object.keys(stored).sort();
  if (names.length === 0) {
    return `task "${taskId}" stored no artifacts; a shell step stores the files it leaves in the directory $TASKSTREAM_ARTIFACTS names, when it succeeds`;
  }
  const shown = names.slice(0, ARTIFACTS_LISTED).join(', ');
  return `task "${taskId}" stored no artifact "${name}"; it stored ${shown}${names.length > ARTIFACTS_LISTED ? `, … ${names.length - ARTIFACTS_LISTED} more` : ''}`;
}

/** The names of the secrets an attempt needs. */
export function secretNamesOf(spec: TaskSpec): string[] {
  const names = new Set<string>();
  for (const path of spec.run_time_strings ?? []) {
    for (const { reference } of collectReferences(getAt(spec, path)).found) if (reference.root === 'secrets') names.add(String(reference.path[0]));
  }
  return [...names];
}

/**
 * The executor's part: the spec one attempt runs, each listed string resolved in one pass;
 * `artifactPath` says where the attempt's copy of each bound artifact is.
 */
export function resolveForAttempt(
  spec: TaskSpec,
  taskId: string,
  attempt: number,
  secrets: (name: string) => string | undefined,
  artifactPath?: (taskId: string, name: string) => string | undefined,
): Resolved {
  const paths = spec.run_time_strings ?? [];
  if (paths.length === 0) return { ok: true, spec };
  const bindings = spec.bindings;
  const scope: ReferenceScope = {
    flowId: bindings?.flow.id,
    taskId,
    attempt,
    params: bindings?.params ?? {},
    outputs: (id) => (bindings !== undefined && Object.hasOwn(bindings.tasks, id) && 'output' in bindings.tasks[id]! ? { found: true, output: bindings.tasks[id]!.output } : { found: false }),
    secrets,
    ...(artifactPath !== undefined && { artifactPath }),
  };
  let work: { config: unknown; input?: unknown } = { config: spec.config, ...(spec.input !== undefined && { input: spec.input }) };
  let injectedEnv: Record<string, string> | undefined;
  for (const path of paths) {
    const text = getAt(spec, path);
    if (spec.executor === 'shell' && samePath(path, COMMAND) && typeof text === 'string') {
      const taken = Object.keys((spec.config.env as Record<string, unknown> | undefined) ?? {}).filter((name) => name.startsWith('TS_REF_') || name.startsWith('TS_SECRET_')).length;
      const injected = injectShellReferences(text, scope, ALL_ROOTS, taken + 1);
      if (!injected.ok) return referenceFailure(injected.problems, path);
      injectedEnv = injected.env;
      work = setAt(work, path, injected.command) as typeof work;
      continue;
    }
    const resolved = resolveReferences(text, scope, ALL_ROOTS);
    if (!resolved.ok) return referenceFailure(resolved.problems, path);
    work = setAt(work, path, resolved.value) as typeof work;
  }
  // The command's variables join the env as resolved above (never resolved themselves).
  if (injectedEnv !== undefined) work = setAt(work, ['config', 'env'], { ...((work.config as { env?: Record<string, unknown> }).env ?? {}), ...injectedEnv }) as typeof work;
  const checked = checkConfig(spec.executor, work.config as Record<string, unknown>);
  if (!checked.ok) return checked;
  const { run_time_strings: _done, ...rest } = spec;
  return { ok: true, spec: { ...rest, config: checked.config, ...(work.input !== undefined && { input: work.input }) } };
}

function checkConfig(executor: string, config: Record<string, unknown>): { ok: true; config: Record<string, unknown> } | Extract<Resolved, { ok: false }> {
  if (!isExecutorName(executor)) return { ok: true, config };
  const parsed = EXECUTOR_CONFIGS[executor].safeParse(config);
  if (parsed.success) return { ok: true, config: parsed.data as Record<string, unknown> };
  // Fields and rules only, never values: a value may hold a secret.
  const lines = parsed.error.issues.map((issue) => `${formatPath(['config', ...(issue.path as PathSegment[])])}: ${issue.message}`);
  return { ok: false, code: 'CONFIG_INVALID', message: `the config after resolving its references is not valid for the ${executor} executor: ${summarise(lines)}` };
}

function referenceFailure(problems: readonly ReferenceProblem[], prefix: Path): Extract<Resolved, { ok: false }> {
  const lines = problems.map((p) => `${formatPath([...prefix, ...p.at])}: ${p.message}`);
  return { ok: false, code: 'REFERENCE_ERROR', message: `a reference could not be resolved: ${summarise(lines)}` };
}

function summarise(lines: string[]): string {
  const named = lines.slice(0, NAMED_PROBLEMS).join('; ');
  return lines.length > NAMED_PROBLEMS ? `${named}; and ${lines.length - NAMED_PROBLEMS} more` : named;
}

function formatPath(path: Path): string {
  return path.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : `.${s}`)).join('');
}

function getAt(value: unknown, path: Path): unknown {
  let node = value;
  for (const segment of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<PathSegment, unknown>)[segment];
  }
  return node;
}

/** `value` with the leaf at `path` replaced, copying only the containers along the path. */
function setAt(value: unknown, path: Path, leaf: unknown): unknown {
  if (path.length === 0) return leaf;
  const [head, ...rest] = path;
  if (Array.isArray(value)) {
    const copy = value.slice();
    copy[head as number] = setAt(value[head as number], rest, leaf);
    return copy;
  }
  const record = (value ?? {}) as Record<string, unknown>;
  const copy: Record<string, unknown> = { ...record };
  Object.defineProperty(copy, String(head), { value: setAt(record[String(head)], rest, leaf), enumerable: true, writable: true, configurable: true });
  return copy;
}
