import type { Problem } from '../flow/validate.js';

/**
 * A trigger's params: any JSON, whose strings may hold `${trigger.body.<path>}` and
 * `${trigger.headers.<name>}` references, resolved against each delivery. A string that is exactly
 * one reference becomes the value with its type; inside other text a value is rendered as text.
 * Paths are written as flows write theirs: `.name`, `[0]`, `["odd key"]`.
 */

export interface TriggerRequest {
  /** The body: parsed JSON, form fields, or text. */
  body: unknown;
  /** Header names in lower case. */
  headers: Readonly<Record<string, string>>;
}

type Part = string | number;
interface Reference {
  text: string;
  root: 'body' | 'headers';
  path: Part[];
}

const START = '${trigger.';
/** Path parts after the root, and references in one string. */
const MAX_PARTS = 32;
const MAX_REFERENCES = 20;
/** Strings are walked at most this deep inside a param's value. */
const MAX_DEPTH = 16;

type Parsed = { ok: true; pieces: Array<string | Reference> } | { ok: false; message: string };

/** Splits a string into text and references, or says what is malformed. */
function parse(source: string): Parsed {
  const pieces: Array<string | Reference> = [];
  let at = 0;
  for (;;) {
    const start = source.indexOf(START, at);
    if (start === -1) break;
    if (start > at) pieces.push(source.slice(at, start));
    const end = closing(source, start + START.length);
    if (end === -1) return { ok: false, message: `${source.slice(start, start + 40)}… has no closing "}"` };
    const text = source.slice(start, end + 1);
    const reference = readReference(text);
    if (typeof reference === 'string') return { ok: false, message: reference };
    pieces.push(reference);
    if (pieces.filter((p) => typeof p !== 'string').length > MAX_REFERENCES) return { ok: false, message: `holds more than ${MAX_REFERENCES} references` };
    at = end + 1;
  }
  if (at < source.length) pieces.push(source.slice(at));
  return { ok: true, pieces };
}

/** Where the reference that starts before `from` ends: the first "}" outside a quoted key, or -1. */
function closing(source: string, from: number): number {
  for (let i = from; i < source.length; i++) {
    const c = source[i];
    if (c === '}') return i;
    if ((c === '"' || c === "'") && source[i - 1] === '[') {
      for (i++; i < source.length && source[i] !== c; i++) if (source[i] === '\\') i++;
    }
  }
  return -1;
}

function readReference(text: string): Reference | string {
  const inner = text.slice(START.length, -1);
  const root = /^(body|headers)/.exec(inner)?.[1] as 'body' | 'headers' | undefined;
  if (root === undefined) return `${text}: a trigger reference starts with \${trigger.body} or \${trigger.headers.<name>}`;
  const path: Part[] = [];
  let rest = inner.slice(root.length);
  while (rest !== '') {
    let m: RegExpExecArray | null;
    if ((m = /^\.([A-Za-z0-9_-]+)/.exec(rest))) path.push(/^(0|[1-9][0-9]*)$/.test(m[1]!) && root === 'body' ? Number(m[1]) : m[1]!);
    else if ((m = /^\[(0|[1-9][0-9]*)\]/.exec(rest))) path.push(Number(m[1]));
    else if ((m = /^\[("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')\]/.exec(rest))) {
      const quoted = m[1]!;
      path.push(quoted.startsWith('"') ? (JSON.parse(quoted) as string) : quoted.slice(1, -1).replace(/\\(.)/g, '$1'));
    } else return `${text}: cannot read the path at ${JSON.stringify(rest.slice(0, 20))}; write .name, [0] or ["odd key"]`;
    rest = rest.slice(m[0].length);
    if (path.length > MAX_PARTS) return `${text}: a path has at most ${MAX_PARTS} parts`;
  }
  if (root === 'headers' && (path.length !== 1 || typeof path[0] !== 'string')) return `${text}: name one header, as \${trigger.headers.x-github-event}`;
  return { text, root, path };
}

/** Problems of a trigger's params mapping, with their paths inside `params`. */
export function checkMapping(params: Record<string, unknown>): Array<{ at: Part[]; message: string }> {
  const problems: Array<{ at: Part[]; message: string }> = [];
  walk(params, [], 0, (value, at) => {
    if (typeof value !== 'string') return;
    const parsed = parse(value);
    if (!parsed.ok) problems.push({ at, message: parsed.message });
  }, (at) => problems.push({ at, message: `is nested more than ${MAX_DEPTH} levels deep; flatten it` }));
  return problems;
}

function walk(value: unknown, at: Part[], depth: number, visit: (value: unknown, at: Part[]) => void, tooDeep: (at: Part[]) => void): void {
  if (depth > MAX_DEPTH) return tooDeep(at);
  if (Array.isArray(value)) value.forEach((item, i) => walk(item, [...at, i], depth + 1, visit, tooDeep));
  else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) walk(v, [...at, k], depth + 1, visit, tooDeep);
  else visit(value, at);
}

const MISSING = Symbol('missing');

function lookUp(reference: Reference, request: TriggerRequest): unknown {
  if (reference.root === 'headers') {
    const name = String(reference.path[0]).toLowerCase();
    return Object.hasOwn(request.headers, name) ? request.headers[name] : MISSING;
  }
  let value: unknown = request.body;
  for (const part of reference.path) {
    if (Array.isArray(value) && typeof part === 'number') value = part < value.length ? value[part] : MISSING;
    else if (value !== null && typeof value === 'object' && !Array.isArray(value) && Object.hasOwn(value, String(part))) value = (value as Record<string, unknown>)[String(part)];
    else value = MISSING;
    if (value === MISSING) return MISSING;
  }
  return value;
}

const asText = (value: unknown) => (typeof value === 'string' ? value : JSON.stringify(value));

/**
 * The params of a delivery: the mapping with its references resolved. A param that is exactly one
 * reference to something the delivery lacks is left out (the template's schema then applies its
 * default, or says the param is required); a missing value inside text is a problem.
 */
export function mapTriggerParams(mapping: Record<string, unknown>, request: TriggerRequest): { ok: true; params: Record<string, unknown> } | { ok: false; problems: Problem[] } {
  const problems: Problem[] = [];
  const resolve = (value: unknown, path: string, depth: number): unknown => {
    if (depth > MAX_DEPTH) return value;
    if (Array.isArray(value)) return value.map((item, i) => resolve(item, `${path}[${i}]`, depth + 1)).filter((v) => v !== MISSING);
    if (value !== null && typeof value === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) {
        const r = resolve(v, `${path}.${k}`, depth + 1);
        if (r !== MISSING) Object.defineProperty(out, k, { value: r, enumerable: true, writable: true, configurable: true });
      }
      return out;
    }
    if (typeof value !== 'string') return value;
    const parsed = parse(value);
    if (!parsed.ok) {
      problems.push({ path, message: parsed.message });
      return MISSING;
    }
    const [only] = parsed.pieces;
    if (parsed.pieces.length === 1 && typeof only !== 'string' && only !== undefined) return lookUp(only, request);
    let text = '';
    for (const piece of parsed.pieces) {
      if (typeof piece === 'string') text += piece;
      else {
        const found = lookUp(piece, request);
        if (found === MISSING) {
          problems.push({ path, message: `${piece.text}: the delivery has no such ${piece.root === 'headers' ? 'header' : 'field in its body'}` });
          return MISSING;
        }
        text += asText(found);
      }
    }
    return text;
  };
  const params: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(mapping)) {
    const resolved = resolve(value, `params.${name}`, 0);
    if (resolved !== MISSING) Object.defineProperty(params, name, { value: resolved, enumerable: true, writable: true, configurable: true });
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, params };
}
