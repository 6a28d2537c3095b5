import { formatPath, SAFE_TOKEN, ULID_PATTERN, type FlowDefinition } from '@taskstream/domain';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { apiError, problemsError, type Problem } from '../errors.js';
import { described, onTheWire, type JsonSchema } from '../openapi/registry.js';

/**
 * Every request input (query, path parameters, JSON bodies) is read through a zod schema here, so a
 * wrong input is always a 4xx in the documented shape, never a TypeError turned into a 500. A
 * route's query and path parameters are the zod objects of its `schema.querystring` and
 * `schema.params`, which also describe them in the OpenAPI document; `readParameters` applies them.
 */

/** Parameters made by `listParam`: the only ones a query may repeat. */
const LIST_PARAMS = new WeakSet<z.ZodType>();

/** The query of a route that takes no query parameters: any is refused. */
export const NO_QUERY = z.object({});

/** Longest user text repeated back in a message. */
const ECHO = 64;

/** User input quoted in a message, cut short so an error never echoes a whole URL. */
export function quote(raw: string): string {
  return JSON.stringify(shorten(raw));
}

function shorten(text: string): string {
  return text.length > ECHO ? `${text.slice(0, ECHO)}…` : text;
}

/** Why `read` refused a value; `notFound` turns it into a 404 for the value (a malformed id names nothing). */
export class Refusal {
  constructor(
    readonly why: string,
    readonly notFound = false,
  ) {}
}

/**
 * A single-valued string parameter read by `read`; `missing` says what to give when it is required
 * and absent; `wire` is how the document states it (a string unless said otherwise).
 */
export function param<T>(read: (raw: string) => T | Refusal, missing?: string, wire: JsonSchema = { type: 'string' }) {
  const schema = z.string({ error: (issue) => (issue.input === undefined ? `is required${missing ? `: ${missing}` : ''}` : 'must be given once') }).transform((raw, ctx): T => {
    const value = read(raw);
    if (!(value instanceof Refusal)) return value;
    ctx.issues.push({ code: 'custom', message: value.why, input: raw, params: { notFound: value.notFound ? raw : undefined } });
    return z.NEVER;
  });
  return onTheWire(schema, wire);
}

/**
 * A list parameter: repeated (`?a=x&a=y`) and, with `split`, comma-separated too; empty items are
 * dropped. `item` is how the document states one item.
 */
export function listParam<T>(read: (raw: string) => T | Refusal, max: number, split: boolean, item: JsonSchema = { type: 'string' }) {
  const schema = z.union([z.string(), z.array(z.string())]).transform((raw, ctx): T[] => {
    const items = [raw].flat().flatMap((v) => (split ? v.split(',') : [v])).filter((v) => v !== '');
    if (items.length > max) {
      ctx.issues.push({ code: 'custom', message: `is given ${items.length} values; at most ${max} are allowed`, input: raw });
      return z.NEVER;
    }
    const values: T[] = [];
    for (const item of items) {
      const value = read(item);
      if (value instanceof Refusal) {
        ctx.issues.push({ code: 'custom', message: value.why, input: raw });
        return z.NEVER;
      }
      values.push(value);
    }
    return values;
  });
  LIST_PARAMS.add(schema);
  return onTheWire(schema, { type: 'array', items: item, maxItems: max });
}

function isList(schema: unknown): boolean {
  const inner = schema instanceof z.ZodOptional ? schema.unwrap() : schema;
  return inner instanceof z.ZodType && LIST_PARAMS.has(inner);
}

const DIGITS = /^\d{1,16}$/;

/** A whole number from `min` to `max`, written in decimal digits only (no sign, exponent or spaces). */
export function wholeNumber(min: number, max: number) {
  return param((raw) => {
    const value = Number(raw);
    return DIGITS.test(raw) && value >= min && value <= max ? value : new Refusal(`must be a whole number from ${min} to ${max}, not ${quote(raw)}`);
  }, undefined, { type: 'integer', minimum: min, maximum: max });
}

/** A JetStream stream sequence: 0 or more for `after` (0 is the start), 1 or more where it names an event. */
export function sequence(min: 0 | 1, missing?: string) {
  const what = `a stream sequence: a whole number, ${min} or more`;
  return param((raw) => {
    const value = Number(raw);
    return DIGITS.test(raw) && value >= min && Number.isSafeInteger(value) ? value : new Refusal(`must be ${what}, not ${quote(raw)}`);
  }, missing, { type: 'integer', minimum: min, maximum: Number.MAX_SAFE_INTEGER });
}

export function oneOf<T extends string>(values: readonly T[]) {
  return param((raw) => ((values as readonly string[]).includes(raw) ? (raw as T) : new Refusal(`must be ${values.join(' or ')}, not ${quote(raw)}`)), undefined, { type: 'string', enum: values });
}

const FLOW_ID_WIRE = { type: 'string', pattern: ULID_PATTERN.source };
export const flowIdParam = described(
  param((raw) => (ULID_PATTERN.test(raw) ? raw : new Refusal(`must be a flow id (a ULID), not ${quote(raw)}`, true)), undefined, FLOW_ID_WIRE),
  'A flow id (a ULID), as answered when the flow was submitted; a malformed one names no flow (404).',
);
/** A flow id in a query, where a malformed one is a mistake rather than a missing flow. */
export const flowIdQuery = param((raw) => (ULID_PATTERN.test(raw) ? raw : new Refusal(`must be a flow id (a ULID), not ${quote(raw)}`)), undefined, FLOW_ID_WIRE);

export const queueName = param(
  (raw) => (raw.length <= 64 && SAFE_TOKEN.test(raw) ? raw : new Refusal('must be a queue name: letters, digits, "-" and "_", at most 64 characters')),
  undefined,
  { type: 'string', pattern: SAFE_TOKEN.source, maxLength: 64 },
);

/**
 * Times accepted by time parameters. JetStream converts a start time to nanoseconds in a signed
 * 64-bit integer, which ends in April 2262 and wraps around after; views compare times as ISO
 * strings, which sort correctly only for four-digit years from 1970 on.
 */
export const EARLIEST_TIME = '1970-01-01T00:00:00Z';
export const LATEST_TIME = '2200-01-01T00:00:00Z';
const EARLIEST_MS = Date.parse(EARLIEST_TIME);
const LATEST_MS = Date.parse(LATEST_TIME);

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|([+-])(\d{2}):(\d{2})))?$/;

/**
 * An RFC 3339 date-time with an offset (`2026-11-23T05:00:00Z`, `…+02:00`, fractions to the
 * nanosecond, cut to the millisecond), or a full date meaning its midnight UTC, within
 * [EARLIEST_TIME, LATEST_TIME]. Stricter than Date.parse, which reads "1" as the year 2001 and
 * February 30th as March 2nd.
 */
export function parseTime(raw: string): Date | Refusal {
  const form = `an RFC 3339 time such as 2026-11-23T05:00:00Z or 2026-11-23T07:00:00%2B02:00, or a date such as 2026-11-23, from ${EARLIEST_TIME} to ${LATEST_TIME}`;
  const plus = raw.includes(' ') ? '; a "+" in a URL query stands for a space, so write the offset\'s "+" as %2B' : '';
  const refusal = new Refusal(`must be ${form}, not ${quote(raw)}${plus}`);
  const m = RFC3339.exec(raw);
  if (!m) return refusal;
  const [year, month, day, hour = 0, minute = 0, second = 0] = m.slice(1, 7).map((v) => Number(v ?? 0));
  const millis = m[7] ? Math.floor(Number(`0${m[7]}`) * 1000) : 0;
  const [offsetHours, offsetMinutes] = [Number(m[10] ?? 0), Number(m[11] ?? 0)];
  if (hour! > 23 || minute! > 59 || second! > 59 || offsetHours > 23 || offsetMinutes > 59) return refusal;
  const local = new Date(Date.UTC(year!, month! - 1, day!, hour, minute, second, millis));
  if (local.getUTCFullYear() !== year || local.getUTCMonth() !== month! - 1 || local.getUTCDate() !== day) return refusal;
  const offset = (m[9] === '-' ? -1 : 1) * (offsetHours * 60 + offsetMinutes) * 60_000;
  const time = local.getTime() - offset;
  return time >= EARLIEST_MS && time <= LATEST_MS ? new Date(time) : refusal;
}

export function timeParam(missing?: string) {
  return param(parseTime, missing, {
    type: 'string',
    description: `An RFC 3339 date-time with an offset (2026-11-23T05:00:00Z; write a "+" as %2B), or a date (its midnight UTC), from ${EARLIEST_TIME} to ${LATEST_TIME}.`,
  });
}

export const FLOW_PARAMS = z.object({ id: flowIdParam });

/**
 * Checks a request's query and path parameters against its route's schemas (`schema.querystring`,
 * `schema.params`), replacing them with the parsed values. A route with a query schema refuses any
 * other parameter; only list parameters may be repeated.
 */
export function readParameters(request: FastifyRequest): void {
  const { querystring, params } = request.routeOptions.schema ?? {};
  const query = querystring instanceof z.ZodObject ? querystring : undefined;
  const known = query ? Object.keys(query.shape) : undefined;
  const raw = request.query as Record<string, unknown>;
  for (const [name, value] of Object.entries(raw)) {
    if (known && !known.includes(name)) {
      const list = known.length === 0 ? 'it takes none' : `known: ${known.join(', ')}`;
      throw apiError('INVALID_PARAMETER', shorten(name), `is not a parameter of ${request.routeOptions.url}; ${list}`);
    }
    if (Array.isArray(value) && !isList(query?.shape[name])) throw apiError('INVALID_PARAMETER', shorten(name), 'is given more than once; give it once');
  }
  if (query) request.query = parseParameters(query, raw);
  if (params instanceof z.ZodType) request.params = parseParameters(params, request.params);
}

function parseParameters(schema: z.ZodType, raw: unknown): unknown {
  const result = schema.safeParse(raw, { reportInput: true });
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const name = String(issue.path[0] ?? '$');
  const notFound = issue.code === 'custom' ? (issue.params?.notFound as string | undefined) : undefined;
  if (notFound !== undefined) throw apiError('FLOW_NOT_FOUND', notFound);
  throw apiError('INVALID_PARAMETER', name, issue.message);
}

/** Names that reach an object's prototype when used as a key: refused wherever user keys are merged. */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/** Deepest nesting accepted in a body; deeper values could not be serialised or copied later. */
export const MAX_DEPTH = 64;

interface Node {
  value: unknown;
  depth: number;
  key?: PropertyKey;
  parent?: Node;
}

function pathOf(node: Node): string {
  const keys: PropertyKey[] = [];
  for (let n: Node | undefined = node; n?.key !== undefined; n = n.parent) keys.push(n.key);
  return formatPath(keys.reverse());
}

/**
 * Problems of shape any JSON value may have, found without recursion (a body nests as deep as its
 * size allows): nesting deeper than MAX_DEPTH, and forbidden keys in objects at most
 * `keyDepth` levels down (the levels that get merged or copied key by key).
 */
export function shapeProblems(value: unknown, keyDepth: number): Problem[] {
  const problems: Problem[] = [];
  const stack: Node[] = [{ value, depth: 0 }];
  while (stack.length > 0) {
    const node = stack.pop()!;
    if (node.value === null || typeof node.value !== 'object') continue;
    if (node.depth >= MAX_DEPTH) {
      problems.push({ path: pathOf(node), message: `is nested more than ${MAX_DEPTH} levels deep; flatten it` });
      break;
    }
    const isArray = Array.isArray(node.value);
    for (const [key, child] of Object.entries(node.value)) {
      const at: Node = { value: child, depth: node.depth + 1, key: isArray ? Number(key) : key, parent: node };
      if (!isArray && node.depth < keyDepth && FORBIDDEN_KEYS.has(key)) problems.push({ path: pathOf(at), message: `"${key}" is not allowed as a field name` });
      stack.push(at);
    }
  }
  return problems.sort((a, b) => a.path.localeCompare(b.path));
}

/** A JSON body as text: empty means `{}`. */
export function readJson(body: unknown): unknown {
  if (typeof body !== 'string' || body.trim() === '') return {};
  try {
    return JSON.parse(body);
  } catch (error) {
    throw apiError('INVALID_BODY', `not valid JSON: ${(error as Error).message}`);
  }
}

/** Every issue of a parse made with `reportInput` (which tells a missing field from a wrong one) as problems. */
function zodProblems(error: z.ZodError): Problem[] {
  return error.issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => ({ path: formatPath([...issue.path, key]), message: `unknown field ${quote(key)}; remove it or check its spelling` }))
      : [{ path: formatPath(issue.path), message: issue.code === 'invalid_type' && issue.input === undefined ? 'is required' : issue.message }],
  );
}

/**
 * A JSON body checked against `schema`. Forbidden keys are looked for down to `keyDepth` levels
 * before zod copies the objects, since copying assigns key by key.
 */
export function parseBody<S extends z.ZodType>(body: unknown, schema: S, keyDepth = 1): z.output<S> {
  const value = readJson(body);
  const shape = shapeProblems(value, keyDepth);
  if (shape.length > 0) throw problemsError('INVALID_REQUEST', shape);
  const result = schema.safeParse(value, { reportInput: true });
  if (!result.success) throw problemsError('INVALID_REQUEST', zodProblems(result.error));
  return result.data;
}

/**
 * A task id flow validation lets through but the fold cannot hold: assigned into a plain object,
 * "__proto__" replaces the task table's prototype instead of adding a task, and the flow never ends.
 */
export function taskIdProblems(flow: FlowDefinition): Problem[] {
  return flow.tasks.flatMap((task, i) =>
    task.id === '__proto__' ? [{ path: `tasks[${i}].id`, message: '"__proto__" cannot be a task id (it names the prototype of every object); choose another' }] : [],
  );
}

/** A list of ids for a message, cut after `max` so the message stays short. */
export function listIds(ids: readonly string[], max = 20): string {
  return ids.length <= max ? ids.join(', ') : `${ids.slice(0, max).join(', ')} and ${ids.length - max} more`;
}
