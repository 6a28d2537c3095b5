import type { z } from 'zod';
import type { FlowDefinition } from '../flow/definition.js';
import { formatPath, validateFlow, type Problem } from '../flow/validate.js';
import { jsonBytes } from '../limits/flow-size.js';
import { MAX_TEMPLATE_BYTES } from './limits.js';
import { compileParamsSchema } from './params.js';
import { TemplateBody } from './record.js';

export type TemplateCheck = { ok: true; template: TemplateBody; warnings: Problem[] } | { ok: false; problems: Problem[] };

/**
 * Checks a template as fully as a submission is checked: the body's shape and size, the params
 * schema, and the flow as it would be submitted, with each `${params.x}` reference checked against
 * the params the schema declares (`properties`). Paths start at the body (`flow.tasks[0].config`).
 */
export function validateTemplate(input: unknown): TemplateCheck {
  const shape = TemplateBody.safeParse(input);
  if (!shape.success) return { ok: false, problems: shapeProblems(shape.error) };
  const body = shape.data;
  const bytes = jsonBytes(body);
  if (bytes > MAX_TEMPLATE_BYTES) {
    return { ok: false, problems: [{ path: '$', message: `the template is ${bytes} bytes as JSON, over the ${MAX_TEMPLATE_BYTES}-byte (${MAX_TEMPLATE_BYTES / 1024} KiB) limit; keep large data out of the flow (steps can fetch it)` }] };
  }
  const problems: Problem[] = [];
  if (Object.hasOwn(body.flow, 'params')) {
    problems.push({ path: 'flow.params', message: 'a template\'s flow takes its params from each run: remove "params" here and declare them in params_schema (with "default" for a default value)' });
  }
  if (Object.hasOwn(body.flow, 'queue_config')) {
    problems.push({ path: 'flow.queue_config', message: 'a template\'s runs do not change queue policies: remove it and set the policy once with PUT /api/v1/queues/{name} (taskstream queue set)' });
  }
  const schema = compileParamsSchema(body.params_schema);
  if (!schema.ok) problems.push(...schema.problems);
  const declared = schema.ok ? schema.declared : [];
  // Each declared param stands in for the run's value, so references are checked as a submission checks them.
  const stand = Object.fromEntries(declared.map((name) => [name, null]));
  const flow = validateFlow({ ...body.flow, params: stand });
  if (!flow.ok) problems.push(...flow.problems.map((p) => ({ path: underFlow(p.path), message: templateMessage(p.message) })));
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, template: body, warnings: flow.ok ? flow.warnings.map((w) => ({ path: underFlow(w.path), message: w.message })) : [] };
}

/** The flow a template defines with a run's params (already checked against its schema), validated as a submission. */
export function templateFlow(flow: Record<string, unknown>, params: Record<string, unknown>): { ok: true; definition: FlowDefinition } | { ok: false; problems: Problem[] } {
  const result = validateFlow({ ...flow, params });
  if (!result.ok) return { ok: false, problems: result.problems.map((p) => ({ path: underFlow(p.path), message: p.message })) };
  return { ok: true, definition: result.flow };
}

const underFlow = (path: string) => (path === '$' ? 'flow' : path.startsWith('[') ? `flow${path}` : `flow.${path}`);

/** The flow validator speaks of a flow's own params; a template's come from its schema. */
function templateMessage(message: string): string {
  const m = /^(\$\{[^}]*\}) refers to param ("(?:[^"\\]|\\.)*"), which the flow does not have;/.exec(message);
  if (!m) return message;
  return `${m[1]} refers to param ${m[2]}, which params_schema does not declare; add it to params_schema.properties or fix the reference`;
}

function shapeProblems(error: z.ZodError): Problem[] {
  return error.issues.flatMap((issue): Problem[] => {
    if (issue.code === 'unrecognized_keys') return issue.keys.map((key) => ({ path: formatPath([...issue.path, key]), message: `unknown field; a template has "flow", "params_schema" and "description"` }));
    const path = formatPath(issue.path);
    if (issue.path.length === 0) return [{ path, message: 'must be a JSON object such as {"flow": {...}, "params_schema": {"type": "object", ...}, "description": "..."}' }];
    const what: Record<string, string> = {
      flow: 'is required: a flow definition (an object, as POST /api/v1/flows takes it, without "params")',
      params_schema: 'is required: a JSON Schema object for the params a run must pass, e.g. {"type": "object", "properties": {...}}',
      description: `must be a string of at most 1000 characters`,
    };
    return [{ path, message: what[String(issue.path[0])] ?? issue.message }];
  });
}
