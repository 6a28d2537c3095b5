/**
 * `${...}` references inside flow values, written as in Tasked: `${tasks.<id>.output.<path>}`,
 * `${flow.id}`, `${task.id}`, `${task.attempt}`, `${params.<path>}` and `${secrets.<NAME>}`; and
 * `${tasks.<id>.artifacts.<name>}`, a file the task stored, which becomes a local path (root
 * 'artifacts', resolved by the executor once it has fetched the file).
 *
 * Finding, collecting and resolving them is pure: every value a reference can read arrives in a
 * {@link ReferenceScope}. Resolved values are never scanned again, so text that arrives through a
 * reference (a task's output, a param) cannot itself expand into further references.
 */

import { artifactNameProblem, type ArtifactBinding } from '../work/artifacts.js';

export type RefRoot = 'tasks' | 'flow' | 'task' | 'params' | 'secrets' | 'artifacts';
export type PathSegment = string | number;

export interface Reference {
  /** The whole `${...}` text as written. */
  text: string;
  root: RefRoot;
  /** For roots 'tasks' and 'artifacts': the task id. */
  taskId?: string;
  /** The path after the root (for tasks: after `.output`), e.g. ['body', 0, 'id']; for artifacts: [name]. */
  path: PathSegment[];
  /** Offset of `${` in the string. */
  start: number;
  /** Offset just after the closing `}`. */
  end: number;
}

export interface ReferenceProblem {
  /** The JSON path to the string holding the reference ([] for a lone string or a command). */
  at: PathSegment[];
  /** The reference text (shortened when very long). */
  reference: string;
  message: string;
}

export interface ReferenceScope {
  flowId?: string;
  taskId?: string;
  attempt?: number;
  /** The flow's params object. */
  params?: unknown;
  outputs?: (taskId: string) => { found: true; output: unknown } | { found: false };
  secrets?: (name: string) => string | undefined;
  /** The files each task stored, by name (for the planner, which checks and binds the ones named). */
  artifacts?: (taskId: string) => Readonly<Record<string, ArtifactBinding>> | undefined;
  /** Where this attempt's copy of a task's artifact is (for the executor, once it fetched them). */
  artifactPath?: (taskId: string, name: string) => string | undefined;
}

export type ResolveOutcome = { ok: true; value: unknown; resolved: number } | { ok: false; problems: ReferenceProblem[] };

export type ShellInjection = { ok: true; command: string; env: Record<string, string> } | { ok: false; problems: ReferenceProblem[] };

/** References one string may hold; beyond this the string is a problem. */
export const MAX_REFERENCES_PER_STRING = 100;
/** Path segments after a reference's root (for tasks: after `.output`). */
export const MAX_REFERENCE_PATH_SEGMENTS = 32;
/** Problems one call reports; the rest are counted in a last problem. */
export const MAX_REFERENCE_PROBLEMS = 100;
/** Environment variable prefixes injectShellReferences uses; a task must not set variables with them. */
export const RESERVED_ENV_PREFIXES = ['TS_REF_', 'TS_SECRET_', 'TS_ITEM_'] as const;

/** The roots a reference is written with (an artifact's is written `${tasks.<id>.artifacts.…}`). */
type WrittenRoot = Exclude<RefRoot, 'artifacts'>;
const ROOTS: readonly WrittenRoot[] = ['tasks', 'flow', 'task', 'params', 'secrets'];
/** A bare (unquoted) task id, object key or param name. */
const BARE = /^[A-Za-z0-9_-]+$/;
const SECRET_NAME = /^[A-Za-z0-9_.-]+$/;
/** An artifact name written bare, after `.artifacts.`: other names are written `["..."]`. */
const BARE_ARTIFACT = /^[A-Za-z0-9._/-]+$/;
const CANONICAL_INDEX = /^(0|[1-9][0-9]{0,14})$/;
/** Values nested deeper than this are refused rather than walked (flows are far shallower). */
const MAX_WALK_DEPTH = 1000;
/** How much of a long reference a message quotes. */
const MAX_QUOTED = 200;
const FIELDS_LISTED = 20;

// ---------------------------------------------------------------------------------------------
// Finding references
// ---------------------------------------------------------------------------------------------

interface ScanProblem {
  reference: string;
  message: string;
  /** The root the malformed reference names; absent for a problem of the whole string. */
  root?: RefRoot;
}

interface Scan {
  references: Reference[];
  problems: ScanProblem[];
}

function quoteRef(text: string): string {
  return text.length <= MAX_QUOTED ? text : `${text.slice(0, MAX_QUOTED)}…`;
}

/** The root a reference starting at `from` (just after `${`) names, if the text there is `<root>.` or `<root>[`. */
function rootAt(text: string, from: number): WrittenRoot | undefined {
  for (const root of ROOTS) {
    if (text.startsWith(root, from)) {
      const next = text[from + root.length];
      if (next === '.' || next === '[') return root;
    }
  }
  return undefined;
}

/** The offset of the `}` closing a reference body that starts at `from`, skipping quoted strings; -1 if none. */
function closingBrace(text: string, from: number): number {
  let quote: string | undefined;
  for (let i = from; i < text.length; i++) {
    const c = text[i];
    if (quote !== undefined) {
      if (c === '\\') i++;
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === '}') {
      return i;
    }
  }
  return -1;
}

type Parsed = { ok: true; root: RefRoot; taskId?: string; path: PathSegment[] } | { ok: false; message: string };

interface Segment {
  value: PathSegment;
  bracket: boolean;
}

/** Splits `.name`, `.0`, `[0]`, `["key"]` and `['key']` segments; `from` points at the first `.` or `[`. */
function segments(body: string, from: number): { ok: true; segments: Segment[] } | { ok: false; message: string } {
  const out: Segment[] = [];
  let p = from;
  while (p < body.length) {
    const c = body[p];
    if (c === '.') {
      let q = p + 1;
      while (q < body.length && /[A-Za-z0-9_-]/.test(body[q]!)) q++;
      const name = body.slice(p + 1, q);
      if (name === '') {
        const found = q < body.length ? `"${body[q]}"` : 'the end';
        return { ok: false, message: `a name must follow "." but found ${found}; quote keys with other characters as ["key"]` };
      }
      out.push({ value: CANONICAL_INDEX.test(name) ? Number(name) : name, bracket: false });
      p = q;
    } else if (c === '[') {
      const open = body[p + 1];
      if (open === '"' || open === "'") {
        let key = '';
        let q = p + 2;
        for (; q < body.length && body[q] !== open; q++) {
          if (body[q] === '\\' && q + 1 < body.length) q++;
          key += body[q];
        }
        if (body[q] !== open || body[q + 1] !== ']') return { ok: false, message: `a quoted key must end with ${open}]` };
        out.push({ value: key, bracket: true });
        p = q + 2;
      } else {
        const close = body.indexOf(']', p);
        const inside = close === -1 ? body.slice(p + 1) : body.slice(p + 1, close);
        if (close === -1 || !CANONICAL_INDEX.test(inside)) {
          return { ok: false, message: `[${inside}${close === -1 ? '' : ']'} must be a list index such as [0] or a quoted key such as ["${inside.replace(/["\\]/g, '')}"]` };
        }
        out.push({ value: Number(inside), bracket: true });
        p = close + 1;
      }
    } else {
      return { ok: false, message: `unexpected "${c}"; a reference is a path of names, [index] and ["key"] parts, like tasks.<id>.output.items[0].id` };
    }
    if (out.length > MAX_REFERENCE_PATH_SEGMENTS + 2) break;
  }
  return { ok: true, segments: out };
}

/** Renders a path as a reference would write it: `.name`, `[0]`, `["odd key"]`. */
function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (BARE.test(segment) && !CANONICAL_INDEX.test(segment)) out += `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

function tooLong(path: readonly PathSegment[]): string | undefined {
  return path.length > MAX_REFERENCE_PATH_SEGMENTS
    ? `its path has more than ${MAX_REFERENCE_PATH_SEGMENTS} parts; read a shallower value and pass it on`
    : undefined;
}

function parseBody(body: string, root: WrittenRoot): Parsed {
  const rest = root.length;
  if (root === 'secrets') {
    const name = body.slice(rest + 1);
    if (body[rest] !== '.' || !SECRET_NAME.test(name)) {
      return { ok: false, message: 'a secret reference must read secrets.<NAME>, where NAME has only letters, digits, "_", "-" and ".", with nothing after it' };
    }
    return { ok: true, root, path: [name] };
  }
  if (root === 'tasks') {
    const artifact = artifactReference(body, rest);
    if (artifact !== undefined) return artifact;
  }
  const split = segments(body, rest);
  if (!split.ok) return split;
  const segs = split.segments;
  switch (root) {
    case 'tasks': {
      const id = segs[0];
      if (id === undefined || typeof id.value === 'number' && id.bracket || id.value === '') {
        return { ok: false, message: 'a task reference must read tasks.<id>.output… with a task id such as tasks.build.output or tasks["build.linux"].output' };
      }
      const taskId = String(id.value);
      const shown = `tasks${formatPath([taskId])}`;
      if (segs[1]?.value !== 'output') {
          // `tasks.a.status` most likely meant `tasks.a.output.status`; `tasks.a.outputs.x` meant `tasks.a.output.x`.
        const after = segs.slice(1).map((s) => s.value);
        const meant = after[0] === 'outputs' || after[0] === 'result' ? after.slice(1) : after;
        return { ok: false, message: `a task reference must read tasks.<id>.output…; write \${${shown}.output${formatPath(meant)}} to read the output of "${taskId}"` };
      }
      const path = segs.slice(2).map((s) => s.value);
      const problem = tooLong(path);
      if (problem) return { ok: false, message: problem };
      return { ok: true, root, taskId, path };
    }
    case 'flow': {
      if (segs.length !== 1 || segs[0]!.value !== 'id') return { ok: false, message: 'the only flow reference is ${flow.id}' };
      return { ok: true, root, path: ['id'] };
    }
    case 'task': {
      const name = segs[0]?.value;
      if (segs.length !== 1 || (name !== 'id' && name !== 'attempt')) return { ok: false, message: 'the task references are ${task.id} and ${task.attempt}' };
      return { ok: true, root, path: [name] };
    }
    case 'params': {
      const path = segs.map((s) => s.value);
      const problem = tooLong(path);
      if (problem) return { ok: false, message: problem };
      if (path.length === 0) return { ok: false, message: 'a param reference must name a param, as in ${params.region}' };
      return { ok: true, root, path };
    }
  }
}

/** A quoted key `["..."]` or `['...']` starting at `from`: its text and the offset after `]`. */
function quotedKey(body: string, from: number): { key: string; end: number } | undefined {
  const open = body[from + 1];
  if (body[from] !== '[' || (open !== '"' && open !== "'")) return undefined;
  let key = '';
  let q = from + 2;
  for (; q < body.length && body[q] !== open; q++) {
    if (body[q] === '\\' && q + 1 < body.length) q++;
    key += body[q];
  }
  return body[q] === open && body[q + 1] === ']' ? { key, end: q + 2 } : undefined;
}

/**
 * `tasks.<id>.artifacts.<name>` or `tasks.<id>.artifacts["<name>"]` (from `from`, just after
 * `tasks`), a file the task stored; undefined when the body reads anything else after the id.
 */
function artifactReference(body: string, from: number): Parsed | undefined {
  let id: string;
  let end: number;
  if (body[from] === '.') {
    end = from + 1;
    while (end < body.length && /[A-Za-z0-9_-]/.test(body[end]!)) end++;
    id = body.slice(from + 1, end);
    if (id === '') return undefined;
  } else {
    const quoted = quotedKey(body, from);
    if (quoted === undefined) return undefined;
    ({ key: id, end } = quoted);
  }
  if (!body.startsWith('.artifacts', end)) return undefined;
  const after = end + '.artifacts'.length;
  const shown = `tasks${formatPath([id])}.artifacts`;
  let name: string;
  if (after === body.length) {
    return { ok: false, message: `name the file: \${${shown}.<name>}, such as \${${shown}.report.csv}` };
  } else if (body[after] === '.') {
    name = body.slice(after + 1);
    if (!BARE_ARTIFACT.test(name)) return { ok: false, message: `an artifact name with characters other than letters, digits, ".", "_", "-" and "/" is written in quotes: \${${shown}["<name>"]}` };
  } else {
    const quoted = quotedKey(body, after);
    if (quoted === undefined || quoted.end !== body.length) {
      if (body[after] === '[' && quoted === undefined) return { ok: false, message: `a quoted artifact name must end with its quote and "]", as in \${${shown}["my report.pdf"]}` };
      if (body[after] === '[') return { ok: false, message: `nothing may follow the artifact's name: \${${shown}["<name>"]} is a file's local path` };
      return undefined;
    }
    name = quoted.key;
  }
  const problem = artifactNameProblem(name);
  if (problem !== undefined) return { ok: false, message: `the artifact name ${JSON.stringify(name)} ${problem}` };
  return { ok: true, root: 'artifacts', taskId: id, path: [name] };
}

function scan(text: string): Scan {
  const references: Reference[] = [];
  const problems: ScanProblem[] = [];
  let count = 0;
  let i = text.indexOf('${');
  while (i !== -1) {
    const root = rootAt(text, i + 2);
    if (root === undefined) {
      const spaced = /^\s+(tasks|flow|task|params|secrets)[.[]/.exec(text.slice(i + 2, i + 2 + 16));
      if (spaced) {
        const shown = quoteRef(text.slice(i, Math.min(text.length, i + 40)));
        problems.push({ reference: shown, root: spaced[1] as RefRoot, message: `${shown}: a reference has no spaces after "\${"; write \${${spaced[1]}… instead` });
      }
      i = text.indexOf('${', i + 2);
      continue;
    }
    if (++count > MAX_REFERENCES_PER_STRING) {
      problems.push({ reference: '', message: `a string holds more than ${MAX_REFERENCES_PER_STRING} references; split it or build the value in a task` });
      break;
    }
    const close = closingBrace(text, i + 2);
    if (close === -1) {
      const shown = quoteRef(text.slice(i, Math.min(text.length, i + 60)));
      problems.push({ reference: shown, root, message: `${shown} is not closed: add "}" after the reference (a quote inside it must be closed too)` });
      break;
    }
    const whole = text.slice(i, close + 1);
    const parsed = parseBody(text.slice(i + 2, close), root);
    if (parsed.ok) {
      const reference: Reference = { text: whole, root: parsed.root, path: parsed.path, start: i, end: close + 1 };
      if (parsed.taskId !== undefined) reference.taskId = parsed.taskId;
      references.push(reference);
    } else {
      problems.push({ reference: quoteRef(whole), root, message: `${quoteRef(whole)}: ${parsed.message}` });
    }
    i = text.indexOf('${', close + 1);
  }
  return { references, problems };
}

/**
 * Finds references in one string. Only `${tasks.`, `${flow.`, `${task.`, `${params.`, `${secrets.`
 * (and the bracket forms `${tasks[` and `${params[`) start a reference; any other `${...}` (e.g. a
 * shell `${HOME}`) is plain text and is left alone.
 */
export function findReferences(text: string): { references: Reference[]; problems: string[] } {
  const { references, problems } = scan(text);
  return { references, problems: problems.map((p) => p.message) };
}

// ---------------------------------------------------------------------------------------------
// Walking JSON values
// ---------------------------------------------------------------------------------------------

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

class Problems {
  readonly list: ReferenceProblem[] = [];
  private dropped = 0;
  add(problem: ReferenceProblem): void {
    if (this.list.length < MAX_REFERENCE_PROBLEMS) this.list.push(problem);
    else this.dropped++;
  }
  get empty(): boolean {
    return this.list.length === 0;
  }
  done(): ReferenceProblem[] {
    if (this.dropped > 0) this.list.push({ at: [], reference: '', message: `${this.dropped} more reference problems are not shown` });
    return this.list;
  }
}

function tooDeep(at: PathSegment[]): ReferenceProblem {
  return { at: at.slice(0, 8), reference: '', message: `the value is nested more than ${MAX_WALK_DEPTH} levels deep` };
}

/**
 * Every reference inside a JSON value (strings at any depth; object keys are never interpolated),
 * with the JSON path to the string holding it.
 */
export function collectReferences(value: unknown): {
  found: Array<{ at: PathSegment[]; reference: Reference }>;
  problems: Array<{ at: PathSegment[]; message: string }>;
} {
  const found: Array<{ at: PathSegment[]; reference: Reference }> = [];
  const problems = new Problems();
  const walk = (node: unknown, at: PathSegment[]): void => {
    if (typeof node === 'string') {
      if (!node.includes('${')) return;
      const scanned = scan(node);
      for (const reference of scanned.references) found.push({ at, reference });
      for (const p of scanned.problems) problems.add({ at, reference: p.reference, message: p.message });
    } else if (at.length >= MAX_WALK_DEPTH) {
      if (typeof node === 'object' && node !== null) problems.add(tooDeep(at));
    } else if (Array.isArray(node)) {
      node.forEach((item, index) => walk(item, [...at, index]));
    } else if (isRecord(node)) {
      for (const key of Object.keys(node)) walk(node[key], [...at, key]);
    }
  };
  walk(value, []);
  return { found, problems: problems.done().map(({ at, message }) => ({ at, message })) };
}

// ---------------------------------------------------------------------------------------------
// Resolving
// ---------------------------------------------------------------------------------------------

type Lookup = { ok: true; value: unknown } | { ok: false; message: string };

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `a list of ${value.length} item${value.length === 1 ? '' : 's'}`;
  switch (typeof value) {
    case 'string':
      return 'a string';
    case 'number':
      return 'a number';
    case 'boolean':
      return 'a boolean';
    case 'object':
      return 'an object';
    default:
      return `a ${typeof value} value`;
  }
}

function fieldList(value: Record<string, unknown>): string {
  const keys = Object.keys(value).filter((k) => value[k] !== undefined);
  if (keys.length === 0) return 'it has no fields';
  const shown = keys.slice(0, FIELDS_LISTED).join(', ');
  return `fields: ${shown}${keys.length > FIELDS_LISTED ? `, … ${keys.length - FIELDS_LISTED} more` : ''}`;
}

/** Follows `path` into `base`; `label` names the base for a person (`output of "fetch"`, `params`). */
function follow(base: unknown, path: readonly PathSegment[], label: string): Lookup {
  let current = base;
  for (let k = 0; k < path.length; k++) {
    const segment = path[k]!;
    const where = k === 0 ? label : `${label} at ${formatPath(path.slice(0, k)).replace(/^\./, '')}`;
    if (Array.isArray(current)) {
      if (typeof segment !== 'number') {
        return { ok: false, message: `${where} is ${describe(current)}, not an object, so it has no field "${segment}"; read an item by its index, such as [0]` };
      }
      if (segment >= current.length) {
        const range = current.length === 0 ? 'it is empty' : `indexes 0 to ${current.length - 1}`;
        return { ok: false, message: `${where} has ${current.length} item${current.length === 1 ? '' : 's'} (${range}); index ${segment} is out of range` };
      }
      current = current[segment];
    } else if (isRecord(current)) {
      const key = String(segment);
      if (!Object.hasOwn(current, key) || current[key] === undefined) {
        return { ok: false, message: `${where} has no field "${key}" (${fieldList(current)})` };
      }
      current = current[key];
    } else {
      const wanted = typeof segment === 'number' ? `index ${segment}` : `field "${segment}"`;
      return { ok: false, message: `${where} is ${describe(current)}, so it has no ${wanted}` };
    }
  }
  if (current === undefined) return { ok: false, message: `${label} has no value` };
  return { ok: true, value: current };
}

function lookup(reference: Reference, scope: ReferenceScope): Lookup {
  switch (reference.root) {
    case 'tasks': {
      const id = reference.taskId!;
      const found = scope.outputs?.(id);
      if (!found || !found.found) {
        return { ok: false, message: `no output of task "${id}" is available here; a task can read only the outputs of tasks it depends on (directly or through others)` };
      }
      return follow(found.output, reference.path, `output of "${id}"`);
    }
    case 'params': {
      if (scope.params === undefined || scope.params === null) return { ok: false, message: `this flow has no params; pass them when submitting it` };
      return follow(scope.params, reference.path, 'params');
    }
    case 'flow':
      return scope.flowId === undefined ? { ok: false, message: 'the flow id is not known here' } : { ok: true, value: scope.flowId };
    case 'task':
      if (reference.path[0] === 'attempt') {
        return scope.attempt === undefined ? { ok: false, message: 'the attempt number is not known here' } : { ok: true, value: scope.attempt };
      }
      return scope.taskId === undefined ? { ok: false, message: 'the task id is not known here' } : { ok: true, value: scope.taskId };
    case 'secrets': {
      const name = String(reference.path[0]);
      const secret = scope.secrets?.(name);
      return secret === undefined ? { ok: false, message: `no secret named "${name}" is available; check its name and that it is stored` } : { ok: true, value: secret };
    }
    case 'artifacts': {
      const id = reference.taskId!;
      const name = String(reference.path[0]);
      const path = scope.artifactPath?.(id, name);
      return path === undefined ? { ok: false, message: `artifact "${name}" of task "${id}" was not fetched for this attempt` } : { ok: true, value: path };
    }
  }
}

/** A value as text: strings raw, everything else compact JSON. */
function asText(value: unknown): { ok: true; text: string } | { ok: false; message: string } {
  if (typeof value === 'string') return { ok: true, text: value };
  try {
    return { ok: true, text: JSON.stringify(value) ?? 'null' };
  } catch {
    return { ok: false, message: 'the value cannot be written as JSON text' };
  }
}

/** The malformed references a pass over `roots` must report: those naming one of them, and problems of the whole string when there is any root to resolve. */
function relevant(problems: ScanProblem[], roots: ReadonlySet<RefRoot>): ScanProblem[] {
  return problems.filter((p) => (p.root === undefined ? roots.size > 0 : roots.has(p.root)));
}

/** Resolves one string's references; memo keeps one lookup (and one rendering) per reference text. */
class Resolver {
  resolved = 0;
  private readonly values = new Map<string, Lookup>();
  private readonly texts = new Map<string, ReturnType<typeof asText>>();

  constructor(
    private readonly scope: ReferenceScope,
    private readonly roots: ReadonlySet<RefRoot>,
    readonly problems: Problems,
  ) {}

  value(reference: Reference): Lookup {
    let found = this.values.get(reference.text);
    if (!found) {
      found = lookup(reference, this.scope);
      this.values.set(reference.text, found);
    }
    return found;
  }

  text(reference: Reference): ReturnType<typeof asText> {
    let found = this.texts.get(reference.text);
    if (!found) {
      const value = this.value(reference);
      found = value.ok ? asText(value.value) : value;
      this.texts.set(reference.text, found);
    }
    return found;
  }

  fail(at: PathSegment[], reference: Reference, message: string): void {
    this.problems.add({ at, reference: quoteRef(reference.text), message: `${quoteRef(reference.text)}: ${message}` });
  }

  string(text: string, at: PathSegment[]): unknown {
    if (!text.includes('${')) return text;
    const scanned = scan(text);
    const broken = relevant(scanned.problems, this.roots);
    for (const p of broken) this.problems.add({ at, reference: p.reference, message: p.message });
    const mine = scanned.references.filter((r) => this.roots.has(r.root));
    if (mine.length === 0 || broken.length > 0) return text;
    const only = mine[0]!;
    if (scanned.references.length === 1 && only.start === 0 && only.end === text.length) {
      const found = this.value(only);
      if (!found.ok) {
        this.fail(at, only, found.message);
        return text;
      }
      this.resolved++;
      return found.value;
    }
    const parts: string[] = [];
    let last = 0;
    for (const reference of mine) {
      const rendered = this.text(reference);
      if (!rendered.ok) {
        this.fail(at, reference, rendered.message);
        continue;
      }
      this.resolved++;
      parts.push(text.slice(last, reference.start), rendered.text);
      last = reference.end;
    }
    parts.push(text.slice(last));
    return parts.join('');
  }
}

function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * Resolves the references whose root is in `roots`; others (well formed or not) are left verbatim, so the planner can
 * resolve tasks/flow/params and leave `${task.…}` and `${secrets.X}` for the executor (see work/resolve-spec.ts).
 *
 * Rules (Tasked's): a string that is exactly one reference becomes the referenced JSON value with its
 * type (object, number, array, null, boolean); a reference inside other text is rendered as text
 * (strings raw, everything else compact JSON, null → "null").
 *
 * Differences from Tasked (on purpose): a reference that cannot be resolved (no such task in scope,
 * path missing in the output, index out of range, unknown param, unknown secret) is an error naming
 * the reference and what exists at the deepest point reached, never an empty string or the literal
 * text. A malformed reference with a root in `roots` is an error too.
 *
 * Unchanged parts of `value` are shared with the result, not copied; with no root to resolve the
 * result is `value` itself.
 */
export function resolveReferences(value: unknown, scope: ReferenceScope, roots: ReadonlySet<RefRoot>): ResolveOutcome {
  const resolver = new Resolver(scope, roots, new Problems());
  const walk = (node: unknown, at: PathSegment[]): unknown => {
    if (typeof node === 'string') return resolver.string(node, at);
    if (typeof node !== 'object' || node === null) return node;
    if (at.length >= MAX_WALK_DEPTH) {
      resolver.problems.add(tooDeep(at));
      return node;
    }
    if (Array.isArray(node)) {
      let copy: unknown[] | undefined;
      node.forEach((item, index) => {
        const next = walk(item, [...at, index]);
        if (next !== item) (copy ??= node.slice())[index] = next;
      });
      return copy ?? node;
    }
    if (!isRecord(node)) return node;
    let copy: Record<string, unknown> | undefined;
    for (const key of Object.keys(node)) {
      const item = node[key];
      const next = walk(item, [...at, key]);
      if (next !== item) setOwn((copy ??= { ...node }), key, next);
    }
    return copy ?? node;
  };
  const result = walk(value, []);
  if (!resolver.problems.empty) return { ok: false, problems: resolver.problems.done() };
  return { ok: true, value: result, resolved: resolver.resolved };
}

/**
 * For a shell `command` string: every reference with a root in `roots` is replaced by
 * `${<prefix><n>}` (n = startAt, startAt + 1, … in order of appearance, one counter for both
 * prefixes; the same reference text gets the same variable) and its value, as text, is returned in
 * `env`, so the shell never parses the value as syntax. The prefix is `TS_REF_` for non-secret roots
 * and `TS_SECRET_` for secrets. References with other roots are left verbatim.
 *
 * The shell expands `${TS_REF_n}` like any variable: unquoted it is split into words and globbed,
 * and inside single quotes it is not expanded at all; write the reference in double quotes to pass
 * the value as one word.
 */
export function injectShellReferences(command: string, scope: ReferenceScope, roots: ReadonlySet<RefRoot>, startAt = 1): ShellInjection {
  const problems = new Problems();
  const scanned = scan(command);
  for (const p of relevant(scanned.problems, roots)) problems.add({ at: [], reference: p.reference, message: p.message });
  if (!problems.empty) return { ok: false, problems: problems.done() };
  const resolver = new Resolver(scope, roots, problems);
  const names = new Map<string, string>();
  const env: Record<string, string> = {};
  const parts: string[] = [];
  let next = Math.max(1, Math.floor(startAt));
  let last = 0;
  for (const reference of scanned.references) {
    if (!roots.has(reference.root)) continue;
    let name = names.get(reference.text);
    if (name === undefined) {
      const rendered = resolver.text(reference);
      if (!rendered.ok) {
        resolver.fail([], reference, rendered.message);
        continue;
      }
      if (rendered.text.includes('\0')) {
        resolver.fail([], reference, 'the value holds a NUL character, which an environment variable cannot carry');
        continue;
      }
      name = `${reference.root === 'secrets' ? 'TS_SECRET_' : 'TS_REF_'}${next++}`;
      names.set(reference.text, name);
      env[name] = rendered.text;
    }
    parts.push(command.slice(last, reference.start), `\${${name}}`);
    last = reference.end;
  }
  if (!problems.empty) return { ok: false, problems: problems.done() };
  parts.push(command.slice(last));
  return { ok: true, command: parts.join(''), env };
}

// ---------------------------------------------------------------------------------------------
// A map's item (`${<as>}`, `${<as>.field}`): references with a name of the flow's choosing
// ---------------------------------------------------------------------------------------------

/** One `${<name>…}` in a text: where it is, and the path after the name. */
export interface NamedReference {
  text: string;
  start: number;
  end: number;
  path: PathSegment[];
}

/**
 * The `${<name>}`, `${<name>.field}`, `${<name>[0]}` and `${<name>["key"]}` references in `text`,
 * written with the same path syntax as other references, and the malformed ones as problems.
 * A `${` followed by another name is not one of them.
 */
export function findNamedReferences(text: string, name: string): { references: NamedReference[]; problems: string[] } {
  const references: NamedReference[] = [];
  const problems: string[] = [];
  let i = text.indexOf('${');
  while (i !== -1) {
    const from = i + 2;
    const next = text[from + name.length];
    if (!text.startsWith(name, from) || (next !== '.' && next !== '[' && next !== '}')) {
      i = text.indexOf('${', from);
      continue;
    }
    const close = closingBrace(text, from);
    if (close === -1) {
      problems.push(`${quoteRef(text.slice(i))}: a reference must end with "}"`);
      break;
    }
    const whole = text.slice(i, close + 1);
    const parsed = segments(text.slice(from, close), name.length);
    if (!parsed.ok) problems.push(`${quoteRef(whole)}: ${parsed.message}`);
    else if (parsed.segments.length > MAX_REFERENCE_PATH_SEGMENTS) problems.push(`${quoteRef(whole)}: ${tooLong(parsed.segments.map((s) => s.value))}`);
    else references.push({ text: whole, start: i, end: close + 1, path: parsed.segments.map((s) => s.value) });
    i = text.indexOf('${', close + 1);
  }
  return { references, problems };
}

/** The part of `base` that `path` names, or why there is none (`label` names `base` in the message). */
export function followPath(base: unknown, path: readonly PathSegment[], label: string): { ok: true; value: unknown } | { ok: false; message: string } {
  return follow(base, path, label);
}

/** A value as a reference inside other text renders it: strings raw, everything else compact JSON. */
export function referenceText(value: unknown): { ok: true; text: string } | { ok: false; message: string } {
  return asText(value);
}
