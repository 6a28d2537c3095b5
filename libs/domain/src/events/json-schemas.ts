import { z } from 'zod';
import { FlowDefinition, FlowSubmission } from '../flow/definition.js';
import { EXECUTOR_CONFIGS } from '../flow/executors.js';
import { FlowEvent } from './catalogue.js';

/**
 * The JSON Schemas checked in under schemas/, generated from the zod schemas that are their single
 * definition. Keys are file paths relative to schemas/.
 */
export function jsonSchemas(): Record<string, unknown> {
  const out: Record<string, unknown> = {
    'flow.schema.json': { $id: 'https://taskstream.dev/schemas/flow.schema.json', ...z.toJSONSchema(FlowSubmission, { io: 'input', unrepresentable: 'any' }) },
    'flow-definition.schema.json': { $id: 'https://taskstream.dev/schemas/flow-definition.schema.json', ...z.toJSONSchema(FlowDefinition, { unrepresentable: 'any' }) },
  };
  for (const [name, schema] of Object.entries(EXECUTOR_CONFIGS)) {
    out[`executors/${name}.schema.json`] = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' });
  }
  for (const option of FlowEvent.options) {
    const type = option.shape.type.value;
    out[`events/${type}.schema.json`] = { $id: `https://taskstream.dev/schemas/events/${type}.schema.json`, ...z.toJSONSchema(option, { unrepresentable: 'any' }) };
  }
  return out;
}
