import type { FlowDefinition } from '../flow/definition.js';
import type { Problem } from '../flow/validate.js';
import { MAX_NESTING_DEPTH } from '../flow/limits.js';
import { jsonBytes } from '../limits/flow-size.js';
import { MAX_RUN_PARAMS_BYTES } from './limits.js';
import { compileParamsSchema } from './params.js';
import type { StoredTemplate } from './record.js';
import { templateFlow } from './validate.js';

export type Instantiated = { ok: true; definition: FlowDefinition } | { ok: false; problems: Problem[] };

/**
 * A run of a template: `params` checked against its params_schema (every problem with its path,
 * `params.…`; defaults filled in, declared params left out set to null), and the flow it defines
 * with those params (named after the template when it has no name), ready to submit.
 */
export function instantiateTemplate(template: Pick<StoredTemplate, 'flow' | 'params_schema'> & { name?: string }, params: unknown): Instantiated {
  if (params === null || typeof params !== 'object' || Array.isArray(params)) {
    return { ok: false, problems: [{ path: 'params', message: 'must be a JSON object of named values, e.g. {"env": "prod"}' }] };
  }
  // The flow nests its params one level down; checked without recursion, before anything recursive reads them.
  if (deeperThan(params, MAX_NESTING_DEPTH - 1)) {
    return { ok: false, problems: [{ path: 'params', message: `are nested more than ${MAX_NESTING_DEPTH - 1} levels deep; flatten them` }] };
  }
  const bytes = jsonBytes(params);
  if (bytes > MAX_RUN_PARAMS_BYTES) {
    return { ok: false, problems: [{ path: 'params', message: `is ${bytes} bytes as JSON, over the ${MAX_RUN_PARAMS_BYTES}-byte (${MAX_RUN_PARAMS_BYTES / 1024} KiB) limit of a run's params; pass large data by reference (a URL a step fetches)` }] };
  }
  const schema = compileParamsSchema(template.params_schema);
  if (!schema.ok) return { ok: false, problems: schema.problems };
  const checked = schema.check(params as Record<string, unknown>);
  if (checked.problems.length > 0) return { ok: false, problems: checked.problems };
  // A declared param the run leaves out (and the schema gives no default) is null, so every
  // `${params.x}` the template was checked with names a param of the flow.
  for (const name of schema.declared) {
    if (!Object.hasOwn(checked.params, name)) Object.defineProperty(checked.params, name, { value: null, enumerable: true, writable: true, configurable: true });
  }
  // A flow without a name of its own is named after its template, so lists and searches show where it came from.
  const flow = template.name !== undefined && template.flow.name === undefined ? { name: template.name, ...template.flow } : template.flow;
  return templateFlow(flow, checked.params);
}

/** Whether a JSON value nests deeper than `max` levels (objects and lists), found without recursion. */
function deeperThan(value: unknown, max: number): boolean {
  const stack: Array<{ value: unknown; depth: number }> = [{ value, depth: 0 }];
  while (stack.length > 0) {
    const { value: node, depth } = stack.pop()!;
    if (node === null || typeof node !== 'object') continue;
    if (depth >= max) return true;
    for (const child of Object.values(node)) stack.push({ value: child, depth: depth + 1 });
  }
  return false;
}
