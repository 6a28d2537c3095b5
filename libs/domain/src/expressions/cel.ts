/**
 * CEL expressions for task conditions and transform steps, on @marcbachmann/cel-js.
 *
 * An expression sees `tasks` (task id → `{ output }`), `params`, `flow` (`{ id }`) and, in a
 * transform, `input`. Tasked's conditions (Rhai) keep working for what they commonly use: field
 * access, `tasks["check-1"]`, comparisons, `&&`, `||`, `!`, and the string methods `contains`,
 * `starts_with`, `ends_with` and `len` (also `len` on lists and maps), registered beside CEL's own
 * `startsWith`, `endsWith` and `size`.
 *
 * Numbers. JSON values enter CEL with whole numbers (within ±(2^53 − 1)) as CEL ints and all others
 * as doubles, so `exit_code == 0`, `count + 1` and `ratio > 1.5` all work; comparing an int with a
 * double works too, arithmetic mixing them needs `double(...)` or `int(...)`. Results come back as
 * JSON: a CEL int becomes a number when it is within ±(2^53 − 1) and is an error beyond (JSON
 * numbers past that are not exact, and silently rounding an id or a counter is worse than failing);
 * the message says to convert with `double(...)` or `string(...)`. Bytes become base64 text,
 * timestamps RFC 3339 text and durations CEL's duration text, as in CEL's JSON mapping.
 *
 * Bounds. A source is at most MAX_EXPRESSION_LENGTH characters, parses to at most MAX_AST_NODES
 * nodes nested at most MAX_AST_DEPTH deep (the library's own limits), and holds no comprehension
 * macro (`all`, `exists`, `exists_one`, `map`, `filter`) inside more than one other, so the work of
 * an evaluation is bounded by the expression and the size of the data it is given (which callers
 * bound). `matches()` is not available: a regular expression can take exponential time on a short
 * pattern, so bounding its length would not bound its cost.
 *
 * Pure: compiled programs are cached by source in a bounded map; nothing else is kept.
 */
import { Environment, serialize, type ASTNode, type ParseResult } from '@marcbachmann/cel-js';
import { Duration, UnsignedInt } from '@marcbachmann/cel-js/evaluator';
import { RecentMap } from '../limits/recent.js';

export type ExpressionKind = 'condition' | 'transform' | 'match';

export interface ExpressionBindings {
  tasks: Record<string, { output: unknown }>;
  params: unknown;
  flow: { id: string };
  input?: unknown;
  /** A signal's payload, for a wait task's `match`. */
  signal?: unknown;
}

export type ExpressionCheck = { ok: true; taskRefs: string[] } | { ok: false; message: string; line?: number; column?: number };
export type ExpressionValue = { ok: true; value: unknown } | { ok: false; message: string };
export type ConditionValue = { ok: true; value: boolean } | { ok: false; message: string };

export const MAX_EXPRESSION_LENGTH = 4096;
export const MAX_AST_NODES = 1000;
export const MAX_AST_DEPTH = 64;
/** Comprehension macros one inside another: `items.filter(i, i.tags.exists(t, t == "x"))` is two. */
export const MAX_MACRO_NESTING = 2;
/** Compiled programs kept; the least recently used is dropped beyond this. */
export const EXPRESSION_CACHE_SIZE = 1000;
/** Values nested deeper than this are refused on the way in and out of CEL. */
const MAX_VALUE_DEPTH = 1000;

const COMPREHENSIONS = new Set(['all', 'exists', 'exists_one', 'map', 'filter']);
const VARIABLES: Record<ExpressionKind, readonly string[]> = {
  condition: ['tasks', 'params', 'flow'],
  transform: ['tasks', 'params', 'flow', 'input'],
  match: ['signal', 'tasks', 'params', 'flow'],
};

// ---------------------------------------------------------------------------------------------
// Environments
// ---------------------------------------------------------------------------------------------

function codePoints(text: string): bigint {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0xd800 || c > 0xdbff || i + 1 >= text.length) n++;
    else {
      const d = text.charCodeAt(i + 1);
      n++;
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
  }
  return BigInt(n);
}

function mapSize(value: unknown): bigint {
  if (value instanceof Map) return BigInt(value.size);
  return BigInt(Object.keys(value as object).length);
}

let environments: Record<ExpressionKind, Environment> | undefined;

function environmentFor(kind: ExpressionKind): Environment {
  if (!environments) {
    const base = new Environment({
      homogeneousAggregateLiterals: false,
      limits: { maxAstNodes: MAX_AST_NODES, maxDepth: MAX_AST_DEPTH, maxListElements: 1000, maxMapEntries: 1000, maxCallArguments: 32 },
    })
      .registerFunction('string.starts_with(string): bool', (s: string, prefix: string) => s.startsWith(prefix))
      .registerFunction('string.ends_with(string): bool', (s: string, suffix: string) => s.endsWith(suffix))
      .registerFunction('string.len(): int', (s: string) => codePoints(s))
      .registerFunction('list.len(): int', (l: unknown[]) => BigInt(l.length))
      .registerFunction('map.len(): int', (m: unknown) => mapSize(m))
      .registerVariable('tasks', 'map<string, dyn>')
      .registerVariable('params', 'dyn')
      .registerVariable('flow', 'map<string, string>');
    environments = { condition: base.clone(), transform: base.clone().registerVariable('input', 'dyn'), match: base.clone().registerVariable('signal', 'dyn') };
  }
  return environments[kind];
}

// ---------------------------------------------------------------------------------------------
// Compiling
// ---------------------------------------------------------------------------------------------

interface Failure {
  message: string;
  offset?: number;
}

type Compiled = { ok: true; program: ParseResult; taskRefs: string[] } | ({ ok: false } & Failure);

const cache = new RecentMap<string, Compiled>(EXPRESSION_CACHE_SIZE);

function position(source: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  const end = Math.min(Math.max(0, offset), source.length);
  for (let i = 0; i < end; i++) {
    if (source.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: end - lineStart + 1 };
}

function where(source: string, offset: number | undefined): string {
  if (offset === undefined) return '';
  const { line, column } = position(source, offset);
  return source.includes('\n') ? ` (line ${line}, column ${column})` : ` (column ${column})`;
}

function list(names: readonly string[]): string {
  return names.length <= 1 ? names.join('') : `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
}

/** The library's error as a sentence and the offset it points at. */
function failureOf(error: unknown, kind: ExpressionKind): Failure {
  const e = (typeof error === 'object' && error !== null ? error : {}) as { summary?: unknown; message?: unknown; code?: unknown; range?: { start?: unknown } };
  let message = typeof e.summary === 'string' ? e.summary : typeof e.message === 'string' ? e.message : String(error);
  const offset = typeof e.range?.start === 'number' ? e.range.start : undefined;
  const limit = e.code === 'limit_exceeded' ? /^Exceeded (\w+) \((\d+)\)/.exec(message) : null;
  if (limit) message = `${LIMIT_TEXT[limit[1]!] ?? `exceeds ${limit[1]} of`} ${limit[2]}; split it or compute parts of it in earlier tasks`;
  if (e.code === 'unknown_variable') message = `${message}; a ${kind} can read ${list(VARIABLES[kind])}`;
  if (/\bint\b.*\bdouble\b|\bdouble\b.*\bint\b/.test(message) && /overload/.test(message)) {
    message = `${message}; whole JSON numbers are ints and others doubles here, so convert one side with double(...) or int(...)`;
  }
  return offset === undefined ? { message } : { message, offset };
}

const LIMIT_TEXT: Record<string, string> = {
  maxAstNodes: 'the expression has more parts (names, operators, literals) than the limit of',
  maxDepth: 'the expression nests calls, fields, indexes or brackets deeper than the limit of',
  maxListElements: 'a list literal has more items than the limit of',
  maxMapEntries: 'a map literal has more entries than the limit of',
  maxCallArguments: 'a call has more arguments than the limit of',
};

type Node = { op: string; args: unknown; start: number };

function isNode(value: unknown): value is Node {
  return typeof value === 'object' && value !== null && 'op' in value && 'args' in value;
}

function isId(value: unknown, name?: string): value is Node & { args: string } {
  return isNode(value) && value.op === 'id' && (name === undefined || value.args === name);
}

/** Walks the parsed AST: the task ids read through `tasks.<id>` / `tasks["<id>"]`, or why the expression is refused. */
function analyse(ast: ASTNode, kind: ExpressionKind): { ok: true; taskRefs: string[] } | ({ ok: false } & Failure) {
  /** Task id → offset of its first read, so taskRefs come in source order. */
  const refs = new Map<string, number>();
  const addRef = (id: string, at: number) => {
    if ((refs.get(id) ?? Infinity) > at) refs.set(id, at);
  };
  const stack: Array<{ node: Node; nesting: number }> = [{ node: ast as unknown as Node, nesting: 0 }];
  const variables = VARIABLES[kind];
  while (stack.length > 0) {
    const { node, nesting } = stack.pop()!;
    const push = (child: unknown, depth = nesting) => {
      if (isNode(child)) stack.push({ node: child, nesting: depth });
    };
    const args = node.args;
    switch (node.op) {
      case 'value':
        break;
      case 'id':
        if (args === 'tasks') {
          return { ok: false, offset: node.start, message: 'tasks can only be read one task at a time, as tasks.<id> or tasks["<id>"] with the id written out, so the flow knows which tasks the expression depends on' };
        }
        break;
      case '.':
      case '.?': {
        const [left, name] = args as [unknown, string];
        if (isId(left, 'tasks')) addRef(name, node.start);
        else if (name !== 'output' && isTaskAccess(left)) return notOutput(node);
        else push(left);
        break;
      }
      case '[]':
      case '[?]': {
        const [left, index] = args as [unknown, unknown];
        if (isId(left, 'tasks') && isNode(index) && index.op === 'value' && typeof index.args === 'string') {
          addRef(index.args, node.start);
        } else if (isTaskAccess(left) && !(isNode(index) && index.op === 'value' && index.args === 'output')) {
          return notOutput(node);
        } else {
          push(left);
          push(index);
        }
        break;
      }
      case 'call': {
        const [name, callArgs] = args as [string, unknown[]];
        if (name === 'matches') return { ok: false, offset: node.start, message: noRegex };
        for (const a of callArgs) push(a);
        break;
      }
      case 'rcall': {
        const [name, receiver, callArgs] = args as [string, unknown, unknown[]];
        if (name === 'matches') return { ok: false, offset: node.start, message: noRegex };
        const comprehension = COMPREHENSIONS.has(name) && isId(callArgs[0]);
        const binds = name === 'bind' && isId(receiver, 'cel') && isId(callArgs[0]);
        if (comprehension || binds) {
          const variable = (callArgs[0] as Node & { args: string }).args;
          if (variables.includes(variable) || variable === 'tasks') {
            return { ok: false, offset: node.start, message: `${name}() must not name its variable ${variable}, which would hide the ${variable} the expression reads; pick another name` };
          }
        }
        if (comprehension && nesting >= MAX_MACRO_NESTING) {
          return { ok: false, offset: node.start, message: `${name}() is nested inside ${nesting} other list macros; at most ${MAX_MACRO_NESTING} may be nested, so compute the inner part in an earlier task` };
        }
        if (!binds) push(receiver);
        for (const a of callArgs.slice(comprehension || binds ? 1 : 0)) push(a, comprehension ? nesting + 1 : nesting);
        break;
      }
      case 'list':
        for (const a of args as unknown[]) push(a);
        break;
      case 'map':
        for (const [k, v] of args as Array<[unknown, unknown]>) {
          push(k);
          push(v);
        }
        break;
      default:
        if (Array.isArray(args)) for (const a of args) push(a);
        else push(args);
    }
  }
  return { ok: true, taskRefs: [...refs].sort((a, b) => a[1] - b[1]).map(([id]) => id) };
}

/** `tasks.<id>` or `tasks["<id>"]`. */
function isTaskAccess(node: unknown): boolean {
  // A literal's args is its value (1n, true, null): only a field or index access has a left side to read.
  if (!isNode(node) || (node.op !== '.' && node.op !== '[]')) return false;
  const [left] = node.args as [unknown];
  return isId(left, 'tasks');
}

function notOutput(node: Node): { ok: false } & Failure {
  return { ok: false, offset: node.start, message: 'a task is read as tasks.<id>.output (then any field of the output), as in tasks.build.output.exit_code' };
}

const noRegex = 'matches() is not available: a regular expression can take exponential time; use contains, startsWith (starts_with) or endsWith (ends_with)';

function compile(source: string, kind: ExpressionKind): Compiled {
  const key = `${kind}\u0000${source}`;
  const cached = cache.get(key);
  if (cached) {
    // Used again: the most recent now.
    cache.set(key, cached);
    return cached;
  }
  const compiled = compileUncached(source, kind);
  cache.set(key, compiled);
  return compiled;
}

function compileUncached(source: string, kind: ExpressionKind): Compiled {
  let program: ParseResult;
  try {
    program = environmentFor(kind).parse(source);
  } catch (error) {
    return { ok: false, ...failureOf(error, kind) };
  }
  const analysed = analyse(program.ast, kind);
  if (!analysed.ok) return analysed;
  let checked: ReturnType<ParseResult['check']>;
  try {
    checked = program.check();
  } catch (error) {
    return { ok: false, ...failureOf(error, kind) };
  }
  if (!checked.valid) return { ok: false, ...failureOf(checked.error, kind) };
  if ((kind === 'condition' || kind === 'match') && checked.type !== 'bool' && checked.type !== 'dyn') {
    return { ok: false, offset: 0, message: `${kind} must evaluate to true or false, got ${checked.type ?? 'another type'}` };
  }
  return { ok: true, program, taskRefs: analysed.taskRefs };
}

function refuseLength(source: unknown): string | undefined {
  if (typeof source !== 'string') return 'the expression must be a string';
  if (source.trim() === '') return 'the expression is empty';
  if (source.length > MAX_EXPRESSION_LENGTH) return `the expression is ${source.length} characters long, more than ${MAX_EXPRESSION_LENGTH}; compute parts of it in earlier tasks`;
  return undefined;
}

/**
 * Parses and type-checks an expression once (the result is cached); a problem carries the 1-based
 * line and column it points at when the library reports one. `taskRefs` lists the task ids the
 * expression reads through `tasks.<id>` or `tasks["<id>"]`, in order of first appearance; reading
 * `tasks` any other way (a computed id, the whole map) is refused so that list is complete.
 */
export function checkExpression(source: string, kind: ExpressionKind): ExpressionCheck {
  const refused = refuseLength(source);
  if (refused) return { ok: false, message: refused };
  const compiled = compile(source, kind);
  if (compiled.ok) return { ok: true, taskRefs: [...compiled.taskRefs] };
  if (compiled.offset === undefined) return { ok: false, message: compiled.message };
  return { ok: false, message: compiled.message, ...position(source, compiled.offset) };
}

// ---------------------------------------------------------------------------------------------
// Values in and out
// ---------------------------------------------------------------------------------------------

class ValueError extends Error {}

/** A JSON value as CEL sees it: whole numbers as ints, objects without a prototype (so no inherited names). */
function toCel(value: unknown, depth = 0): unknown {
  if (depth > MAX_VALUE_DEPTH) throw new ValueError(`a value is nested more than ${MAX_VALUE_DEPTH} levels deep`);
  switch (typeof value) {
    case 'string':
    case 'boolean':
    case 'bigint':
      return value;
    case 'number':
      if (!Number.isFinite(value)) throw new ValueError(`a value holds the number ${value}, which JSON cannot carry`);
      return Number.isSafeInteger(value) ? BigInt(value) : value;
    case 'undefined':
      return null;
    case 'object': {
      if (value === null) return null;
      if (Array.isArray(value)) return value.map((item) => toCel(item, depth + 1));
      const out: Record<string, unknown> = Object.create(null);
      for (const key of Object.keys(value)) {
        const item = (value as Record<string, unknown>)[key];
        if (item !== undefined) out[key] = toCel(item, depth + 1);
      }
      return out;
    }
    default:
      throw new ValueError(`a value of type ${typeof value} is not JSON`);
  }
}

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

function base64(bytes: Uint8Array): string {
  const parts: string[] = [];
  for (let i = 0; i < bytes.length; i += 3) {
    const a = bytes[i]!;
    const b = bytes[i + 1];
    const c = bytes[i + 2];
    const n = (a << 16) | ((b ?? 0) << 8) | (c ?? 0);
    parts.push(BASE64[(n >> 18) & 63]!, BASE64[(n >> 12) & 63]!, b === undefined ? '=' : BASE64[(n >> 6) & 63]!, c === undefined ? '=' : BASE64[n & 63]!);
  }
  return parts.join('');
}

function safeInteger(value: bigint): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new ValueError(`the result holds the integer ${value}, beyond what a JSON number carries exactly (±(2^53 − 1)); convert it with double(...) or string(...)`);
  }
  return Number(value);
}

function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** CEL's result as JSON: ints as numbers, maps as objects, bytes/timestamps/durations as text. */
function toJson(value: unknown, depth = 0): unknown {
  if (depth > MAX_VALUE_DEPTH) throw new ValueError(`the result is nested more than ${MAX_VALUE_DEPTH} levels deep`);
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'bigint':
      return safeInteger(value);
    case 'number':
      if (!Number.isFinite(value)) throw new ValueError(`the result holds the number ${value}, which JSON cannot carry`);
      return value === 0 ? 0 : value;
    case 'object': {
      if (value === null) return null;
      if (Array.isArray(value)) return value.map((item) => toJson(item, depth + 1));
      if (value instanceof Set) return [...value].map((item) => toJson(item, depth + 1));
      if (value instanceof Uint8Array) return base64(value);
      if (value instanceof Date) {
        if (Number.isNaN(value.getTime())) throw new ValueError('the result holds an invalid timestamp');
        return value.toISOString();
      }
      if (value instanceof Duration) return String(value);
      if (value instanceof UnsignedInt) return safeInteger(value.valueOf());
      const out: Record<string, unknown> = {};
      if (value instanceof Map) {
        for (const [key, item] of value) {
          if (typeof key === 'object' || typeof key === 'undefined') throw new ValueError('the result holds a map with a key that is not a string, number or boolean');
          setOwn(out, String(key), toJson(item, depth + 1));
        }
        return out;
      }
      const proto: unknown = Object.getPrototypeOf(value);
      if (proto === Object.prototype || proto === null) {
        for (const key of Object.keys(value)) setOwn(out, key, toJson((value as Record<string, unknown>)[key], depth + 1));
        return out;
      }
      throw new ValueError(`the result holds a value of type ${celType(value)}, which has no JSON form`);
    }
    default:
      throw new ValueError(`the result holds a value of type ${celType(value)}, which has no JSON form`);
  }
}

/** The CEL name of a runtime value's type, for messages. */
function celType(value: unknown): string {
  switch (typeof value) {
    case 'bigint':
      return 'int';
    case 'number':
      return 'double';
    case 'string':
      return 'string';
    case 'boolean':
      return 'bool';
    case 'object':
      if (value === null) return 'null';
      if (Array.isArray(value) || value instanceof Set) return 'list';
      if (value instanceof Uint8Array) return 'bytes';
      if (value instanceof Date) return 'timestamp';
      if (value instanceof Duration) return 'duration';
      if (value instanceof UnsignedInt) return 'uint';
      if (value instanceof Map) return 'map';
      {
        const proto: unknown = Object.getPrototypeOf(value);
        if (proto === Object.prototype || proto === null) return 'map';
      }
      return (value as object).constructor?.name || 'object';
    default:
      return typeof value;
  }
}

// ---------------------------------------------------------------------------------------------
// Evaluating
// ---------------------------------------------------------------------------------------------

/** A runtime error as a sentence: which value lacked which key, where in the source. */
function runtimeMessage(error: unknown, source: string, kind: ExpressionKind): string {
  const failure = failureOf(error, kind);
  const e = error as { code?: unknown; node?: unknown };
  const node = e.node;
  if ((e.code === 'no_such_key' || e.code === 'index_out_of_bounds') && isNode(node) && (node.op === '.' || node.op === '[]')) {
    const [left, key] = node.args as [unknown, unknown];
    if (isId(left, 'tasks')) {
      const id = typeof key === 'string' ? key : isNode(key) && typeof key.args === 'string' ? key.args : '?';
      return `no output of task "${id}" is available; an expression can read only the outputs of tasks this task depends on${where(source, node.start)}`;
    }
    let shown = 'the value';
    try {
      if (isNode(left)) shown = serialize(left as ASTNode);
    } catch {
      // keep the generic name
    }
    const detail = failure.message.replace(/^No such key: /, '');
    if (e.code === 'no_such_key') return `${shown} has no field "${detail}"${where(source, failure.offset)}`;
    return `${shown}: ${detail}${where(source, failure.offset)}`;
  }
  return `${failure.message}${where(source, failure.offset)}`;
}

function run(source: string, bindings: ExpressionBindings, kind: ExpressionKind): { ok: true; raw: unknown } | { ok: false; message: string } {
  const refused = refuseLength(source);
  if (refused) return { ok: false, message: refused };
  const compiled = compile(source, kind);
  if (!compiled.ok) return { ok: false, message: `${compiled.message}${where(source, compiled.offset)}` };
  let context: Record<string, unknown>;
  try {
    const tasks: Record<string, unknown> = Object.create(null);
    const given = bindings.tasks ?? {};
    for (const id of compiled.taskRefs) {
      if (!Object.hasOwn(given, id)) continue;
      const task: Record<string, unknown> = Object.create(null);
      task.output = toCel(given[id]?.output ?? null);
      tasks[id] = task;
    }
    const flow: Record<string, unknown> = Object.create(null);
    flow.id = String(bindings.flow?.id ?? '');
    context = { tasks, params: toCel(bindings.params ?? null), flow };
    if (kind === 'transform' && bindings.input !== undefined) context.input = toCel(bindings.input);
    if (kind === 'match') context.signal = toCel(bindings.signal ?? null);
  } catch (error) {
    return { ok: false, message: error instanceof ValueError ? error.message : `the expression's data could not be prepared: ${String(error)}` };
  }
  try {
    const raw: unknown = compiled.program(context);
    if (raw instanceof Promise) return { ok: false, message: 'the expression did not finish synchronously' };
    return { ok: true, raw };
  } catch (error) {
    if (kind === 'transform' && bindings.input === undefined && (error as { code?: unknown }).code === 'unknown_variable') {
      return { ok: false, message: `this transform has no input to read${where(source, failureOf(error, kind).offset)}` };
    }
    return { ok: false, message: runtimeMessage(error, source, kind) };
  }
}

/**
 * Evaluates a transform expression (it may read `input`) against JSON bindings. The value is JSON:
 * no BigInt, Map, Set or byte arrays (see the module comment for how they convert). Never throws.
 */
export function evaluateExpression(source: string, bindings: ExpressionBindings): ExpressionValue {
  const result = run(source, bindings, 'transform');
  if (!result.ok) return result;
  try {
    return { ok: true, value: toJson(result.raw) };
  } catch (error) {
    return { ok: false, message: error instanceof ValueError ? error.message : `the result could not be converted to JSON: ${String(error)}` };
  }
}

/** Evaluates a wait task's `match` against a signal's payload: true or false, anything else is an error. Never throws. */
export function evaluateMatch(source: string, bindings: ExpressionBindings): ConditionValue {
  const result = run(source, bindings, 'match');
  if (!result.ok) return result;
  if (typeof result.raw !== 'boolean') return { ok: false, message: `match must evaluate to true or false, got ${celType(result.raw)}` };
  return { ok: true, value: result.raw };
}

/** Evaluates a condition: true or false, anything else is an error. Never throws. */
export function evaluateCondition(source: string, bindings: ExpressionBindings): ConditionValue {
  const result = run(source, bindings, 'condition');
  if (!result.ok) return result;
  if (typeof result.raw !== 'boolean') return { ok: false, message: `condition must evaluate to true or false, got ${celType(result.raw)}` };
  return { ok: true, value: result.raw };
}
