// Writes schemas/ from the zod schemas in @taskstream/domain, and the gateway's OpenAPI document
// from its routes (both built). Run: npm run schemas
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { jsonSchemas } from '../libs/domain/dist/index.js';
import { describeGateway } from '../services/gateway/dist/index.js';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const root = join(repo, 'schemas');
for (const dir of ['events', 'executors']) rmSync(join(root, dir), { recursive: true, force: true });
for (const [file, schema] of Object.entries(jsonSchemas())) {
  const path = join(root, file);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(schema, null, 2) + '\n');
}
console.log(`wrote ${Object.keys(jsonSchemas()).length} schemas to schemas/`);

// Beside the gateway rather than in schemas/, which holds exactly the domain's schemas.
writeFileSync(join(repo, 'services', 'gateway', 'openapi.json'), JSON.stringify(await describeGateway(), null, 2) + '\n');
console.log('wrote the OpenAPI document to services/gateway/openapi.json');
