import { CST, Parser, parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { MAX_ID_LENGTH } from '../ids.js';
import { DEFAULT_MAP_CONCURRENCY, DEFAULT_QUEUE, FlowInput, TaskInput, type FlowDefinition, type TaskSpec, type Webhooks } from './definition.js';
import { collectReferences, findNamedReferences, findReferences, RESERVED_ENV_PREFIXES } from '../expressions/index.js';
import { EXECUTOR_CONFIGS, isExecutorName, spawnInner, unknownExecutorMessage, WAITING_EXECUTORS, type DelayConfig } from './executors.js';
import { findCycles } from './graph.js';
import { checkReferences } from './references-check.js';
import { MAX_NESTING_DEPTH, MAX_PROBLEMS, MAX_PROBLEMS_BYTES } from './limits.js';

/** One thing wrong with a submitted flow: where (a JSON path such as `tasks[2].depends_on[0]`) and what to do. */
export interface Problem {
  path: string;
  message: string;
}

/** `warnings` name the fields Taskstream ignored (also recorded, as text, in `flow.warnings`). */
export type FlowParseResult = { ok: true; flow: FlowDefinition; warnings: Problem[] } | { ok: false; problems: Problem[] };

type Segment = string | number;

/** User text repeated in a path or a message is cut to this many characters. */
const QUOTED_CHARS = 64;
const MAX_PATH_CHARS = 200;
const MAX_MESSAGE_CHARS = 500;
/** Kept free in MAX_PROBLEMS_BYTES for the closing "and N more problems". */
const SUMMARY_BYTES = 200;
/**
 * Unknown dependencies that get a search for the closest ids. Each search reads every id, so a
 * fixed number of them keeps validation linear; later ones name a few ids instead.
 */
const SUGGESTION_SEARCHES = 5;
const SUGGESTIONS = 3;
const IDS_LISTED = 3;

/** Issues keep the value they judged, so a field of the wrong type is not mistaken for a missing one. */
const WITH_INPUT = { reportInput: true };

const tooDeep = `is nested more than ${MAX_NESTING_DEPTH} levels deep (counting from the top of the flow); flatten it or pass the data another way`;

function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max - 1;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return `${text.slice(0, end)}…`;
}

const quote = (text: string) => JSON.stringify(clip(text, QUOTED_CHARS));

function utf8Bytes(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else {
      const name = clip(String(part), QUOTED_CHARS);
      out += out === '' ? name : `.${name}`;
    }
  }
  return out === '' ? '$' : out;
}

/**
 * The problems found so far, listed up to MAX_PROBLEMS and MAX_PROBLEMS_BYTES and counted beyond,
 * so that neither a huge flow nor a pathological one can make the answer large.
 */
class Problems {
  private readonly listed: Problem[] = [];
  private bytes = 2;
  private unlisted = 0;

  /** Whether the next problem will be listed: costly detail is worth computing only then. */
  get listing(): boolean {
    return this.unlisted === 0 && this.listed.length < MAX_PROBLEMS;
  }

  get none(): boolean {
    return this.listed.length === 0 && this.unlisted === 0;
  }

  add(path: string | ReadonlyArray<PropertyKey>, message: string): void {
    if (!this.listing) {
      this.unlisted++;
      return;
    }
    const problem = { path: clip(typeof path === 'string' ? path : formatPath(path), MAX_PATH_CHARS), message: clip(message, MAX_MESSAGE_CHARS) };
    const bytes = utf8Bytes(JSON.stringify(problem)) + 1;
    if (this.bytes + bytes > MAX_PROBLEMS_BYTES - SUMMARY_BYTES) {
      this.unlisted++;
      return;
    }
    this.listed.push(problem);
    this.bytes += bytes;
  }

  /** One problem per field: for a number past its bound, "not a whole number" would only repeat it. */
  addZod(error: z.ZodError, prefix: ReadonlyArray<PropertyKey> = []): void {
    const seen = new Set<string>();
    for (const issue of error.issues) {
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys) this.add([...prefix, ...issue.path, key], `unknown field ${quote(key)}; remove it or check its spelling`);
        continue;
      }
      const path = formatPath([...prefix, ...issue.path]);
      if (seen.has(path)) continue;
      seen.add(path);
      const message =
        issue.code === 'invalid_type' && issue.input === undefined
          ? 'is required'
          : issue.code === 'invalid_key'
            ? (issue.issues[0]?.message ?? issue.message)
            : issue.message;
      this.add(path, message);
    }
  }

  result(): { ok: false; problems: Problem[] } {
    if (this.unlisted === 0) return { ok: false, problems: this.listed };
    const more = `and ${this.unlisted} more problem${this.unlisted === 1 ? '' : 's'}, not listed; fix these and validate again to see them`;
    return { ok: false, problems: [...this.listed, { path: '$', message: more }] };
  }
}

/** The field a deeply nested value belongs to: `tasks[3].config`, or a flow field such as `labels`. */
function fieldOf(path: readonly Segment[]): Segment[] {
  if (path[0] === 'tasks' && typeof path[1] === 'number') return path.slice(0, 3);
  return typeof path[0] === 'string' ? path.slice(0, 1) : [];
}

interface Visit<T> {
  node: T;
  depth: number;
  parent?: Visit<T>;
  key?: Segment;
}

function pathOf<T>(visit: Visit<T>): Segment[] {
  const path: Segment[] = [];
  for (let at: Visit<T> | undefined = visit; at?.parent; at = at.parent) path.push(at.key!);
  return path.reverse();
}

/**
 * What schemas cannot be trusted to see: nesting beyond MAX_NESTING_DEPTH (reported once per field)
 * and numbers JSON cannot carry. Walked with an explicit stack, so no depth overflows it; a value
 * reached again through a YAML alias is walked again only if reached deeper, which also ends a
 * self-referencing alias at the depth limit.
 */
function checkStructure(root: unknown, problems: Problems): void {
  const deepest = new Map<object, number>();
  const reported = new Set<string>();
  const stack: Array<Visit<unknown> & { again?: boolean }> = [{ node: root, depth: 1 }];
  while (stack.length > 0) {
    const visit = stack.pop()!;
    const value = visit.node;
    if (typeof value === 'number') {
      if (!Number.isFinite(value) && !visit.again) problems.add(pathOf(visit), 'must be a finite number; JSON has no Infinity or NaN');
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    if (visit.depth > MAX_NESTING_DEPTH) {
      reportTooDeep(visit, reported, problems);
      continue;
    }
    const earlier = deepest.get(value);
    if (earlier !== undefined && earlier >= visit.depth) continue;
    deepest.set(value, visit.depth);
    const again = earlier !== undefined;
    const depth = visit.depth + 1;
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push({ node: value[i], depth, parent: visit, key: i, again });
    } else {
      const keys = Object.keys(value);
      for (let i = keys.length - 1; i >= 0; i--) stack.push({ node: (value as Record<string, unknown>)[keys[i]!], depth, parent: visit, key: keys[i]!, again });
    }
  }
}

/** One problem per field however many values under it are too deep. */
function reportTooDeep<T>(visit: Visit<T>, reported: Set<string>, problems: Problems): void {
  const field = formatPath(fieldOf(pathOf(visit)));
  if (reported.has(field)) return;
  reported.add(field);
  problems.add(field, tooDeep);
}

/**
 * The YAML parser's syntax tree is built without recursion, but turning it into values recurses
 * (and deep enough input can take the process down rather than throw), so nesting is measured on
 * the tree first.
 */
function checkYamlNesting(text: string, problems: Problems): void {
  const reported = new Set<string>();
  for (const top of new Parser().parse(text)) {
    if (top.type !== 'document' || top.value === undefined) continue;
    const stack: Array<Visit<CST.Token>> = [{ node: top.value, depth: 1 }];
    while (stack.length > 0) {
      const visit = stack.pop()!;
      const token = visit.node;
      if (!CST.isCollection(token)) continue;
      if (visit.depth > MAX_NESTING_DEPTH) {
        reportTooDeep(visit, reported, problems);
        continue;
      }
      const isMap = token.type === 'block-map' || (token.type === 'flow-collection' && token.start.source === '{');
      const depth = visit.depth + 1;
      for (let i = token.items.length - 1; i >= 0; i--) {
        const item = token.items[i]!;
        const key = isMap ? (CST.resolveAsScalar(item.key, false, () => {})?.value ?? '?') : i;
        if (item.value) stack.push({ node: item.value, depth, parent: visit, key });
        if (item.key) stack.push({ node: item.key, depth, parent: visit, key: '?' });
      }
    }
  }
}

/**
 * Parses flow text (JSON or YAML). Syntax errors are reported as one problem with the position the
 * parser gives, so the user can find the typo.
 */
export function parseFlowText(text: string, format: 'json' | 'yaml' | 'auto' = 'auto'): FlowParseResult {
  const asJson = format === 'json' || (format === 'auto' && /^\s*[[{]/.test(text));
  if (!asJson) {
    const problems = new Problems();
    checkYamlNesting(text, problems);
    if (!problems.none) return problems.result();
  }
  let data: unknown;
  try {
    data = asJson ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    const problems = new Problems();
    problems.add('$', `not valid ${asJson ? 'JSON' : 'YAML'}: ${(error as Error).message}`);
    return problems.result();
  }
  return validateFlow(data);
}

/** Validates a parsed flow and reports every problem at once (within the bounds of Problems). */
export function validateFlow(input: unknown): FlowParseResult {
  const problems = new Problems();
  checkStructure(input, problems);
  if (!problems.none) return problems.result();

  const flowResult = FlowInput.safeParse(input, WITH_INPUT);
  if (!flowResult.success) {
    problems.addZod(flowResult.error);
    const rawTasks = (input as { tasks?: unknown } | null)?.tasks;
    if (!Array.isArray(rawTasks)) return problems.result();
  }
  const flowFields = flowResult.success ? flowResult.data : undefined;
  const warnings = new Warnings();
  warnings.unknownFields(input, FLOW_FIELDS, [], FLOW_FIELD_NOTES);
  const rawTasks = (flowFields?.tasks ?? (input as { tasks: unknown[] }).tasks) as unknown[];
  const flowQueue = flowFields?.queue ?? DEFAULT_QUEUE;

  const tasks: TaskSpec[] = [];
  const firstIndexOf = new Map<string, number>();
  rawTasks.forEach((raw, index) => {
    const parsed = TaskInput.safeParse(raw, WITH_INPUT);
    if (!parsed.success) {
      problems.addZod(parsed.error, ['tasks', index]);
      return;
    }
    const task = parsed.data;
    warnings.unknownFields(raw, TASK_FIELDS, ['tasks', index], TASK_FIELD_NOTES);
    const previous = firstIndexOf.get(task.id);
    if (previous !== undefined) {
      problems.add(['tasks', index, 'id'], `duplicate task id ${quote(task.id)} (also used by tasks[${previous}]); give every task its own id`);
      return;
    }
    firstIndexOf.set(task.id, index);
    const queue = task.queue ?? flowQueue;

    let config: Record<string, unknown> = {};
    if (!isExecutorName(task.executor)) {
      problems.add(['tasks', index, 'executor'], unknownExecutorMessage(task.executor));
    } else {
      const given = task.config ?? {};
      const configResult = EXECUTOR_CONFIGS[task.executor].safeParse(given, WITH_INPUT);
      if (configResult.success) config = configResult.data as Record<string, unknown>;
      else {
        // A value that is a reference is judged once resolved, by the planner; the rest now.
        const item = task.map?.as ?? (task.map !== undefined ? 'item' : undefined);
        const judged = configResult.error.issues.filter((issue) => !holdsReference(given, issue.path) && !holdsItem(given, issue.path, item));
        if (judged.length > 0) problems.addZod({ issues: judged } as z.ZodError, ['tasks', index, 'config']);
        else config = given as Record<string, unknown>;
      }
      checkReservedEnv(given, ['tasks', index, 'config'], problems);
      if (configResult.success && task.executor === 'delay') {
        // As Tasked does, but at submission: a delay its timeout would cut short can only fail.
        const ownTimeout = task.timeout_secs;
        const timeout = ownTimeout ?? (queue === flowQueue ? flowFields?.queue_config?.timeout_secs : undefined);
        const given = task.config as { seconds?: number };
        const field = given.seconds !== undefined ? 'seconds' : 'ms';
        const waitSecs = given.seconds ?? (configResult.data as DelayConfig).ms / 1000;
        if (timeout !== undefined && waitSecs > timeout) {
          const [whose, setting] = ownTimeout !== undefined ? ["the task's", 'timeout_secs'] : ["the queue's", 'queue_config.timeout_secs'];
          problems.add(['tasks', index, 'config', field], `delay of ${waitSecs}s exceeds ${whose} timeout of ${timeout}s; shorten the delay or raise ${setting}`);
        }
      }
      if (task.executor === 'approval') approvalProblems(given, ['tasks', index, 'config'], problems);
      if (task.executor === 'trigger') childFlowProblems(given, ['tasks', index, 'config', 'flow'], problems);
    }
    if (task.map !== undefined) mapProblems(task, index, problems);
    if (task.executor === 'spawn') spawnInnerProblems(config, index, problems);
    // Tasked's clients send `spawn_output: []` on every task: only a promise is refused elsewhere.
    if (task.spawn_output !== undefined && task.spawn_output.length > 0 && task.executor !== 'spawn') problems.add(['tasks', index, 'spawn_output'], 'only a spawn task promises outputs; remove spawn_output or make the task a spawn');

    tasks.push({
      id: task.id,
      ...(task.name !== undefined && { name: task.name }),
      ...(task.description !== undefined && { description: task.description }),
      executor: task.executor,
      config,
      depends_on: [...new Set(task.depends_on ?? [])],
      ...(task.retries !== undefined && { retries: task.retries }),
      ...(task.timeout_secs !== undefined && { timeout_secs: task.timeout_secs }),
      ...(task.backoff !== undefined && { backoff: task.backoff }),
      queue,
      priority: task.priority ?? 0,
      ...(task.concurrency_key !== undefined && { concurrency_key: task.concurrency_key }),
      ...(task.input !== undefined && { input: task.input }),
      ...(task.condition !== undefined && { condition: task.condition }),
      ...(task.trigger_rule !== undefined && { trigger_rule: task.trigger_rule }),
      ...(task.map !== undefined && { map: { items: task.map.items, as: task.map.as ?? 'item', concurrency: task.map.concurrency ?? DEFAULT_MAP_CONCURRENCY } }),
      ...(task.spawn_output !== undefined && task.spawn_output.length > 0 && { spawn_output: [...new Set(task.spawn_output)] }),
    });
  });

  // Dependencies can only be judged against the ids that parsed.
  const known = new Set(tasks.map((t) => t.id));
  const declaredIds = rawTaskIds(rawTasks);
  const hints = new DependencyHints([...known]);
  const byId = new Map(tasks.map((t) => [t.id, t]));
  for (const task of tasks) {
    const index = firstIndexOf.get(task.id)!;
    const declared = (rawTasks[index] as { depends_on?: string[] }).depends_on ?? [];
    declared.forEach((dep, depIndex) => {
      const path = ['tasks', index, 'depends_on', depIndex];
      const promise = declaredIds.has(dep) ? undefined : promisedBy(dep, byId);
      if (dep === task.id) {
        problems.add(path, `task ${quote(task.id)} depends on itself; remove it from its depends_on`);
      } else if (promise !== undefined) {
        const generator = promise.generator;
        if (generator.executor !== 'spawn') problems.add(path, `task ${quote(task.id)} depends on ${quote(dep)}, which is not a task in this flow; only a spawn task's promised outputs ("<spawn id>/<name>") may be named before they exist`);
        else if (!(generator.spawn_output ?? []).includes(promise.name)) {
          problems.add(path, `task ${quote(task.id)} depends on ${quote(dep)}, which spawn task ${quote(generator.id)} does not promise; add ${quote(promise.name)} to its spawn_output`);
        }
      } else if (!declaredIds.has(dep)) {
        const hint = problems.listing ? `; ${hints.for(dep)}` : '';
        problems.add(path, `task ${quote(task.id)} depends on ${quote(dep)}, which is not a task in this flow${hint}`);
      }
    });
  }

  // A promised output ("<spawn id>/<name>") comes after its spawn task: a cycle through it is a cycle.
  const graph = new Map(tasks.map((t) => [t.id, t.depends_on.map((d) => (known.has(d) ? d : (promisedBy(d, byId)?.generator.id ?? d))).filter((d) => known.has(d) && d !== t.id)]));
  for (const cycle of findCycles(graph)) {
    problems.add(['tasks', firstIndexOf.get(cycle[0]!)!, 'depends_on'], `dependency cycle ${describeCycle(cycle)}; a flow must be acyclic, so remove one of these dependencies`);
  }

  if (problems.none) checkReferences(tasks, (id) => firstIndexOf.get(id)!, flowFields?.params, (path, message) => problems.add(path, message));

  if (!problems.none) return problems.result();
  return {
    ok: true,
    flow: {
      ...(flowFields?.name !== undefined && { name: flowFields.name }),
      ...(flowFields?.description !== undefined && { description: flowFields.description }),
      queue: flowQueue,
      ...(flowFields?.labels !== undefined && { labels: flowFields.labels }),
      ...(flowFields?.timeout_secs !== undefined && { timeout_secs: flowFields.timeout_secs }),
      ...(flowFields?.queue_config !== undefined && { queue_config: flowFields.queue_config }),
      ...(flowFields?.fail_fast !== undefined && { fail_fast: flowFields.fail_fast }),
      ...(flowFields?.params !== undefined && { params: flowFields.params }),
      ...webhooksOf(flowFields?.webhooks),
      ...(warnings.list.length > 0 && { warnings: warnings.list.map((w) => `${w.path}: ${w.message}`) }),
      tasks,
    },
    warnings: warnings.list,
  };
}

const FLOW_FIELDS = new Set(Object.keys(FlowInput.shape));
const TASK_FIELDS = new Set(Object.keys(TaskInput.shape));
/** What Taskstream does instead, for fields Tasked knows and Taskstream does not. */
const FLOW_FIELD_NOTES: Record<string, string> = {};
const TASK_FIELD_NOTES: Record<string, string> = {};
const MAX_WARNINGS = 20;

/** Fields a submission carries that Taskstream ignores, as Tasked ignores unknown fields, but never silently. */
class Warnings {
  readonly list: Problem[] = [];
  private unlisted = 0;

  unknownFields(raw: unknown, known: ReadonlySet<string>, at: ReadonlyArray<PropertyKey>, notes: Record<string, string>): void {
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return;
    for (const key of Object.keys(raw)) {
      if (known.has(key)) continue;
      const note = Object.hasOwn(notes, key) ? `: ${notes[key]}` : '; remove it or check its spelling';
      this.add({ path: clip(formatPath([...at, key]), MAX_PATH_CHARS), message: clip(`unknown field ${quote(key)} ignored${note}`, MAX_MESSAGE_CHARS) });
    }
  }

  private add(warning: Problem): void {
    if (this.list.length < MAX_WARNINGS) this.list.push(warning);
    else if (this.unlisted++ === 0) this.list.push({ path: '$', message: 'and more unknown fields, not listed' });
  }
}

/** The webhooks as the definition records them: nulls (Tasked's "none") dropped; none at all when there is no URL to call. */
function webhooksOf(given: z.infer<typeof FlowInput>['webhooks']): { webhooks?: Webhooks } {
  if (given === undefined || ((given.on_complete ?? undefined) === undefined && (given.on_failure ?? undefined) === undefined)) return {};
  return {
    webhooks: {
      ...(typeof given.on_complete === 'string' && { on_complete: given.on_complete }),
      ...(typeof given.on_failure === 'string' && { on_failure: given.on_failure }),
      ...(given.secret !== undefined && { secret: given.secret }),
    },
  };
}

/**
 * An approval's message is stored in its task's output and shown to approvers, and no executor
 * resolves it: run-time references (`${secrets.…}`, `${task.…}`) can neither be resolved nor kept
 * out of the history, so they are refused here rather than shown as written.
 */
function approvalProblems(config: unknown, at: Segment[], problems: Problems): void {
  const message = (config as { message?: unknown } | null)?.message;
  if (typeof message !== 'string') return;
  for (const reference of findReferences(message).references) {
    if (reference.root === 'secrets' || reference.root === 'task') {
      problems.add([...at, 'message'], `an approval message cannot name \${${reference.root}.…}: it is shown to approvers and stored in the task's output; name upstream outputs (\${tasks.<id>.output…}) or params instead`);
      return;
    }
  }
}

/**
 * A child flow written out in a trigger task is validated as a submission would be, so its
 * problems are found now rather than when the task runs; one given as a `${...}` reference is
 * validated when the task starts.
 */
function childFlowProblems(config: unknown, at: Segment[], problems: Problems): void {
  const flow = (config as { flow?: unknown } | null)?.flow;
  if (flow === null || typeof flow !== 'object' || Array.isArray(flow)) return;
  const result = validateFlow(flow);
  if (result.ok) return;
  for (const problem of result.problems) problems.add(`${formatPath(at)}${problem.path === '$' ? '' : problem.path.startsWith('[') ? problem.path : `.${problem.path}`}`, problem.message);
}

/**
 * A map task: not one that waits instead of running a step (it would wait once per item), and its
 * `${<as>…}` references written like other references.
 */
function mapProblems(task: z.infer<typeof TaskInput>, index: number, problems: Problems): void {
  if ((WAITING_EXECUTORS as readonly string[]).includes(task.executor)) {
    problems.add(['tasks', index, 'map'], `a ${task.executor} task cannot be a map task; map a task that runs a step (${'shell, http, noop, delay, transform'}) and depend on it`);
    return;
  }
  const as = task.map?.as ?? 'item';
  for (const field of ['config', 'input'] as const) {
    const value = task[field];
    if (value === undefined) continue;
    const walk = (node: unknown, at: Segment[]): void => {
      if (typeof node === 'string') {
        for (const problem of findNamedReferences(node, as).problems) problems.add(['tasks', index, field, ...at], problem);
      } else if (Array.isArray(node)) node.forEach((item, i) => walk(item, [...at, i]));
      else if (node !== null && typeof node === 'object') for (const key of Object.keys(node)) walk((node as Record<string, unknown>)[key], [...at, key]);
    };
    if (collectReferences(value).problems.length === 0) walk(value, []);
  }
}

/** Whether the value at `path` in `config` is a string holding a map's `${<as>…}`, which becomes the item (with its type) for each instance. */
function holdsItem(config: unknown, path: ReadonlyArray<PropertyKey>, as: string | undefined): boolean {
  if (as === undefined) return false;
  let value: unknown = config;
  for (const part of path) {
    if (value === null || typeof value !== 'object') return false;
    value = (value as Record<PropertyKey, unknown>)[part];
  }
  return typeof value === 'string' && findNamedReferences(value, as).references.length > 0;
}

/** The spawn task (and the name) that `dep` names as `<spawn id>/<name>`, the longest such id in the flow; none otherwise. */
export function promisedBy(dep: string, tasks: ReadonlyMap<string, TaskSpec>): { generator: TaskSpec; name: string } | undefined {
  let found: { generator: TaskSpec; name: string } | undefined;
  for (let slash = dep.indexOf('/'); slash > 0; slash = dep.indexOf('/', slash + 1)) {
    const generator = tasks.get(dep.slice(0, slash));
    if (generator !== undefined && slash + 1 < dep.length) found = { generator, name: dep.slice(slash + 1) };
  }
  return found;
}

/** A spawn task's inner step: its config checked against the inner executor's (values that are references once resolved). */
function spawnInnerProblems(config: Record<string, unknown>, index: number, problems: Problems): void {
  if (Object.keys(config).length === 0) return;
  const inner = spawnInner(config);
  if (!isExecutorName(inner.executor)) return;
  const at: Segment[] = typeof config.executor === 'string' ? ['tasks', index, 'config', 'config'] : ['tasks', index, 'config'];
  // Only a shell task's own command passes references through the environment; here they would be shell text.
  if (inner.executor === 'shell' && typeof inner.config.command === 'string' && findReferences(inner.config.command).references.length > 0) {
    problems.add([...at, 'command'], "a spawn's shell command cannot hold references (they would be spliced into shell text); pass them in env, such as \"env\": {\"BUILD\": \"${tasks.build.output.stdout}\"}, and read $BUILD");
  }
  const result = EXECUTOR_CONFIGS[inner.executor].safeParse(inner.config, WITH_INPUT);
  if (result.success) return;
  const judged = result.error.issues.filter((issue) => !holdsReference(inner.config, issue.path));
  if (judged.length > 0) problems.addZod({ issues: judged } as z.ZodError, at);
}

/** Whether the value at `path` in `config` is a string holding a reference. */
function holdsReference(config: unknown, path: ReadonlyArray<PropertyKey>): boolean {
  let value: unknown = config;
  for (const part of path) {
    if (value === null || typeof value !== 'object') return false;
    value = (value as Record<PropertyKey, unknown>)[part];
  }
  return typeof value === 'string' && findReferences(value).references.length > 0;
}

/** Environment names the engine sets for references may not be set by hand. */
function checkReservedEnv(config: unknown, at: ReadonlyArray<PropertyKey>, problems: Problems): void {
  const env = (config as { env?: unknown } | null)?.env;
  if (env === null || typeof env !== 'object') return;
  for (const name of Object.keys(env)) {
    const prefix = RESERVED_ENV_PREFIXES.find((p) => name.startsWith(p));
    if (prefix !== undefined) problems.add([...at, 'env', name], `names starting with ${prefix} are set by Taskstream for references; rename the variable`);
  }
}

function rawTaskIds(rawTasks: unknown[]): Set<string> {
  const ids = new Set<string>();
  for (const raw of rawTasks) {
    const id = (raw as { id?: unknown } | null)?.id;
    if (typeof id === 'string') ids.add(id);
  }
  return ids;
}

/** A closed path `[a, b, …, a]`, shortened to its first and last few ids when long. */
function describeCycle(cycle: readonly string[]): string {
  const length = cycle.length - 1;
  const ids = cycle.map((id) => clip(id, QUOTED_CHARS));
  if (length <= 8) return ids.join(' -> ');
  return `${[...ids.slice(0, 5), '…', ...ids.slice(-3)].join(' -> ')} (${length} tasks)`;
}

/** What to say after "which is not a task in this flow". */
class DependencyHints {
  private searches = 0;
  private lowered: string[] | undefined;
  private readonly summary: string;

  constructor(private readonly ids: readonly string[]) {
    const shown = ids.slice(0, IDS_LISTED + 2).map((id) => clip(id, QUOTED_CHARS));
    this.summary =
      ids.length === 0
        ? 'no task in it has a valid id yet'
        : ids.length <= IDS_LISTED + 2
          ? `known ids: ${shown.join(', ')}`
          : `known ids include ${shown.slice(0, IDS_LISTED).join(', ')}, … (${ids.length} in all)`;
  }

  for(unknown: string): string {
    if (this.searches < SUGGESTION_SEARCHES && this.ids.length > 0) {
      this.searches++;
      this.lowered ??= this.ids.map((id) => id.toLowerCase());
      const close = closestIds(unknown, this.ids, this.lowered);
      if (close.length > 0) return `did you mean ${close.map(quote).join(' or ')}?`;
    }
    return this.summary;
  }
}

/** Up to SUGGESTIONS ids within a small edit distance of `unknown`, closest first, ties in declaration order. */
function closestIds(unknown: string, ids: readonly string[], lowered: readonly string[]): string[] {
  if (unknown.length > MAX_ID_LENGTH + 2) return [];
  const target = unknown.toLowerCase();
  const limit = Math.min(2, Math.max(1, Math.floor(target.length / 3)));
  const best: Array<{ id: string; distance: number }> = [];
  for (let i = 0; i < ids.length; i++) {
    const bound = best.length === SUGGESTIONS ? best[SUGGESTIONS - 1]!.distance - 1 : limit;
    if (bound < 0) break;
    const distance = editDistanceWithin(target, lowered[i]!, bound);
    if (distance > bound) continue;
    let at = best.length;
    while (at > 0 && best[at - 1]!.distance > distance) at--;
    best.splice(at, 0, { id: ids[i]!, distance });
    if (best.length > SUGGESTIONS) best.pop();
  }
  return best.map((b) => b.id);
}

/**
 * Edit distance with adjacent swaps (optimal string alignment) if it is at most `bound`, else
 * `bound + 1`. Only a band of width 2·bound+1 is computed, so a check costs O(length · bound).
 */
function editDistanceWithin(a: string, b: string, bound: number): number {
  const over = bound + 1;
  if (Math.abs(a.length - b.length) > bound) return over;
  const width = b.length + 1;
  let before = new Array<number>(width).fill(over);
  let previous = new Array<number>(width);
  let current = new Array<number>(width).fill(over);
  for (let j = 0; j < width; j++) previous[j] = Math.min(j, over);
  for (let i = 1; i <= a.length; i++) {
    const from = Math.max(1, i - bound);
    const to = Math.min(b.length, i + bound);
    current[from - 1] = from === 1 ? Math.min(i, over) : over;
    let rowMin = current[from - 1]!;
    for (let j = from; j <= to; j++) {
      const same = a.charCodeAt(i - 1) === b.charCodeAt(j - 1);
      let d = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (same ? 0 : 1));
      if (i > 1 && j > 1 && a.charCodeAt(i - 1) === b.charCodeAt(j - 2) && a.charCodeAt(i - 2) === b.charCodeAt(j - 1)) d = Math.min(d, before[j - 2]! + 1);
      current[j] = Math.min(d, over);
      if (current[j]! < rowMin) rowMin = current[j]!;
    }
    if (to < b.length) current[to + 1] = over;
    if (rowMin > bound) return over;
    [before, previous, current] = [previous, current, before];
  }
  return previous[b.length]!;
}
