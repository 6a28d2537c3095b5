import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EVENT_TYPES, jsonSchemas } from '../src/index.js';

const root = join(import.meta.dirname, '..', '..', '..', 'schemas');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : name.endsWith('.json') ? [relative(root, path)] : [];
  });
}

describe('checked-in JSON Schemas', () => {
  it('match the zod schemas exactly (run `npm run schemas` after changing them)', () => {
    const generated = jsonSchemas();
    expect(files(root).sort()).toEqual(Object.keys(generated).sort());
    for (const [file, schema] of Object.entries(generated)) {
      expect(JSON.parse(readFileSync(join(root, file), 'utf8')), `schemas/${file} is out of date`).toEqual(schema);
    }
  });

  it('cover every event type', () => {
    const generated = jsonSchemas();
    for (const type of EVENT_TYPES) expect(generated).toHaveProperty([`events/${type}.schema.json`]);
  });
});
