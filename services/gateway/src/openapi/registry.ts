import { z } from 'zod';

/** What the API document says about a schema: its component name, its description. */
export interface SchemaDoc {
  id?: string;
  description?: string;
  [key: string]: unknown;
}

/**
 * Documentation of the gateway's zod schemas for the OpenAPI document: component names and
 * descriptions. Kept apart from zod's global registry, so the JSON Schemas generated from the
 * domain (schemas/) never change with what the gateway names.
 */
export const apiSchemas = z.registry<SchemaDoc>();

/** A schema that appears in the document as the component `id`, described. */
export function named<S extends z.ZodType>(id: string, schema: S, description?: string): S {
  apiSchemas.add(schema, { id, ...(description !== undefined && { description }) });
  return schema;
}

/** A schema with a description in the document. */
export function described<S extends z.ZodType>(schema: S, description: string): S {
  apiSchemas.add(schema, { ...apiSchemas.get(schema), description });
  return schema;
}

/** A JSON Schema, as the document states a value. */
export type JsonSchema = Record<string, unknown>;

const wire = new WeakMap<z.ZodType, JsonSchema>();

/**
 * A parameter whose schema reads text (a query or path parameter) into another type, as a client
 * sends it: `{ type: 'integer', minimum: 1 }` for a number written in digits. The document shows
 * this instead of `string`.
 */
export function onTheWire<S extends z.ZodType>(schema: S, json: JsonSchema): S {
  wire.set(schema, json);
  return schema;
}

/** The wire form given to `onTheWire`, if any. */
export function wireSchema(schema: unknown): JsonSchema | undefined {
  return schema instanceof z.ZodType ? wire.get(schema) : undefined;
}
