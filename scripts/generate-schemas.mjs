// Writes schemas/ from the zod schemas in @taskstream/domain (built). Run: npm run schemas
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { jsonSchemas } from '../libs/domain/dist/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', 'schemas');
for (const dir of ['events', 'executors']) rmSync(join(root, dir), { recursive: true, force: true });
for (const [file, schema] of Object.entries(jsonSchemas())) {
  const path = join(root, file);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(schema, null, 2) + '\n');
}
console.log(`wrote ${Object.keys(jsonSchemas()).length} schemas to schemas/`);
