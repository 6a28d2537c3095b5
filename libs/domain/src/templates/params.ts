import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { Problem } from '../flow/validate.js';
import { RecentMap } from '../limits/recent.js';
import { MAX_PARAM_PROBLEMS } from './limits.js';

/**
 * A template's `params_schema`: a JSON Schema (draft-07) for the params object of a run, compiled
 * once per distinct schema. Every error of a run's params is reported with its path.
 */

export type CompiledParams = { ok: true; declared: string[]; check: (params: Record<string, unknown>) => { params: Record<string, unknown>; problems: Problem[] } } | { ok: false; problems: Problem[] };

/** Compiled schemas by their text: a template's schema is compiled once, not at every run. */
const CACHED = 64;
const compiled = new RecentMap<string, CompiledParams>(CACHED);

/** Compiles a params schema, or says what is wrong with it (paths start at `params_schema`). */
export function compileParamsSchema(schema: Record<string, unknown>): CompiledParams {
  const text = JSON.stringify(schema);
  const hit = compiled.get(text);
  if (hit) return hit;
  const result = compile(schema);
  compiled.set(text, result);
  return result;
}

function compile(schema: Record<string, unknown>): CompiledParams {
  if (schema.type !== 'object') {
    return { ok: false, problems: [{ path: 'params_schema.type', message: 'must be "object": a run\'s params are an object of named values, e.g. {"type": "object", "properties": {"env": {"type": "string"}}, "required": ["env"]}' }] };
  }
  const properties = schema.properties;
  if (properties !== undefined && (properties === null || typeof properties !== 'object' || Array.isArray(properties))) {
    return { ok: false, problems: [{ path: 'params_schema.properties', message: 'must be an object mapping each param name to its schema' }] };
  }
  let validate: ValidateFunction;
  try {
    // A fresh instance per schema: Ajv caches every schema it compiled, which would grow without bound.
    const ajv = new Ajv({ allErrors: true, strict: true, useDefaults: true, coerceTypes: false, validateFormats: true, code: { regExp: guardedRegExp } });
    validate = ajv.compile(structuredClone(schema));
  } catch (error) {
    return { ok: false, problems: [{ path: 'params_schema', message: `is not a valid JSON Schema (draft-07): ${(error as Error).message.slice(0, 300)}; fix it (formats are not checked: use "pattern" instead of "format")` }] };
  }
  const declared = Object.keys((properties as Record<string, unknown> | undefined) ?? {});
  return {
    ok: true,
    declared,
    check(params) {
      // Defaults are filled in on a copy: the caller's object stays as it was.
      const copy = structuredClone(params);
      if (validate(copy)) return { params: copy, problems: [] };
      return { params: copy, problems: paramProblems(validate.errors ?? []) };
    },
  };
}

/**
 * Patterns run on every run's params, which webhook senders choose: one that repeats a group that
 * itself repeats (`(a+)+`, `(\w+\s?)*`) can take exponential time on a crafted value, so it is
 * refused when the schema is compiled. (A heuristic: it does not catch every slow pattern.)
 */
const guardedRegExp = Object.assign(
  (pattern: string, flags: string) => {
    if (nestedRepetition(pattern)) {
      throw new Error(`the pattern ${JSON.stringify(pattern.slice(0, 100))} repeats a group that itself repeats (like (a+)+), which can take exponential time on a crafted value; rewrite it without nested repetition`);
    }
    return new RegExp(pattern, flags);
  },
  { code: 'new RegExp' },
);

/** Whether `pattern` at `i` starts an unbounded quantifier: `*`, `+` or `{n,}`. */
function unbounded(pattern: string, i: number): boolean {
  const c = pattern[i];
  return c === '*' || c === '+' || (c === '{' && /^\{[0-9]+,\}/.test(pattern.slice(i, i + 12)));
}

/** Whether `pattern` at `i` starts a quantifier that may repeat more than once (not `?`, `{0,1}`, `{1}`). */
function repeated(pattern: string, i: number): boolean {
  if (unbounded(pattern, i)) return true;
  const m = /^\{([0-9]+)(?:,([0-9]+))?\}/.exec(pattern.slice(i, i + 24));
  return m !== null && Number(m[2] ?? m[1]) > 1;
}

/** Whether a regular expression repeats more than once (`*`, `+`, `{2}`, …) a group that repeats without bound (`*`, `+`, `{n,}`) inside. */
export function nestedRepetition(pattern: string): boolean {
  const groups: boolean[] = [];
  let repeats = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') {
      i++;
    } else if (c === '[') {
      for (i++; i < pattern.length && pattern[i] !== ']'; i++) if (pattern[i] === '\\') i++;
    } else if (c === '(') {
      groups.push(repeats);
      repeats = false;
    } else if (c === ')') {
      const inner: boolean = repeats;
      if (inner && repeated(pattern, i + 1)) return true;
      repeats = (groups.pop() ?? false) || inner;
    } else if (unbounded(pattern, i)) {
      repeats = true;
    }
  }
  return false;
}

function paramProblems(errors: readonly ErrorObject[]): Problem[] {
  const problems: Problem[] = [];
  const seen = new Set<string>();
  for (const error of errors) {
    const problem = toProblem(error);
    const key = `${problem.path}\u0000${problem.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    if (problems.length === MAX_PARAM_PROBLEMS) {
      problems.push({ path: 'params', message: `and more problems than the ${MAX_PARAM_PROBLEMS} listed; fix these and run again` });
      break;
    }
    problems.push(problem);
  }
  return problems;
}

/** `/a/0/b` → `params.a[0].b`; keys that are not plain names are quoted (`params["odd key"]`). */
export function paramPath(pointer: string, extra?: string): string {
  const parts = pointer === '' ? [] : pointer.slice(1).split('/').map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'));
  if (extra !== undefined) parts.push(extra);
  let out = 'params';
  for (const part of parts) {
    if (/^(0|[1-9][0-9]*)$/.test(part)) out += `[${part}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(part)) out += `.${part}`;
    else out += `[${JSON.stringify(part.length > 64 ? `${part.slice(0, 63)}…` : part)}]`;
  }
  return out;
}

function toProblem(error: ErrorObject): Problem {
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required':
      return { path: paramPath(error.instancePath, String(params.missingProperty)), message: 'is required by the template\'s params_schema; pass it with the run\'s params' };
    case 'additionalProperties':
      return { path: paramPath(error.instancePath, String(params.additionalProperty)), message: 'is not a param of this template (its params_schema allows no other); remove it or check its spelling' };
    case 'enum':
      return { path: paramPath(error.instancePath), message: `must be one of ${JSON.stringify(params.allowedValues).slice(0, 300)}` };
    default:
      return { path: paramPath(error.instancePath), message: `${error.message ?? 'is not valid'} (params_schema ${error.schemaPath.replace(/^#/, '') || '/'})` };
  }
}
