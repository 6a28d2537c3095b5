import { z } from 'zod';
import { MAX_TEMPLATE_DESCRIPTION } from './limits.js';

/** What a template name may be, as messages state it. */
export const TEMPLATE_NAME_RULE = '1 to 64 characters, each a letter, a digit, "_" or "-", starting with a letter or a digit';

/** A template's name: the last part of its path, and a token of its bucket's keys. */
export const TemplateName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, `a template name is ${TEMPLATE_NAME_RULE}`);

/** A JSON object (not null, not a list). */
const JsonObject = z.record(z.string(), z.unknown());

/** What a `PUT /api/v1/templates/{name}` sends, before the flow and the schema are checked. */
export const TemplateBody = z.strictObject({
  flow: JsonObject,
  params_schema: JsonObject,
  description: z.string().max(MAX_TEMPLATE_DESCRIPTION).optional(),
});
export type TemplateBody = z.infer<typeof TemplateBody>;

/** One immutable version of a template, as stored. */
export const StoredTemplate = z.object({
  name: TemplateName,
  version: z.number().int().min(1),
  flow: JsonObject,
  params_schema: JsonObject,
  description: z.string().optional(),
  created_at: z.iso.datetime(),
});
export type StoredTemplate = z.infer<typeof StoredTemplate>;

/** A version in a list: everything but the flow and the schema. */
export type TemplateVersionInfo = Pick<StoredTemplate, 'name' | 'version' | 'created_at' | 'description'>;

/** JSON text with object keys sorted, so two equal values give equal text whatever their key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    const v = (value as Record<string, unknown>)[key];
    if (v !== undefined) Object.defineProperty(out, key, { value: sortKeys(v), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** Whether a body defines the same template as a stored version (an unchanged PUT creates no version). */
export function sameDefinition(body: TemplateBody, stored: Pick<StoredTemplate, 'flow' | 'params_schema' | 'description'>): boolean {
  const of = (t: TemplateBody) => canonicalJson({ flow: t.flow, params_schema: t.params_schema, description: t.description });
  return of(body) === of({ flow: stored.flow, params_schema: stored.params_schema, ...(stored.description !== undefined && { description: stored.description }) });
}
