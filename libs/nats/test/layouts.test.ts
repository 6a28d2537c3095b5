import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LEASES_LAYOUT } from '@taskstream/runtime';
import { describe, expect, it } from 'vitest';
import {
  API_KEYS_LAYOUT,
  ARTIFACTS_LAYOUT,
  DEFINITIONS_LAYOUT,
  FLOW_SUMMARIES_LAYOUT,
  FLOW_VIEWS_LAYOUT,
  IDEMPOTENCY_LAYOUT,
  QUEUE_LIMITS_LAYOUT,
  QUEUE_POLICIES_LAYOUT,
  SECRETS_LAYOUT,
  SCHEDULES_LAYOUT,
  SIGNAL_WAITS_LAYOUT,
  STREAM_LAYOUTS,
  TEMPLATES_LAYOUT,
  TRIGGERS_LAYOUT,
  topology,
  type Layout,
} from '../src/index.js';

const OWNED: Layout[] = [
  ...STREAM_LAYOUTS,
  FLOW_VIEWS_LAYOUT,
  FLOW_SUMMARIES_LAYOUT,
  IDEMPOTENCY_LAYOUT,
  DEFINITIONS_LAYOUT,
  ARTIFACTS_LAYOUT,
  SECRETS_LAYOUT,
  API_KEYS_LAYOUT,
  QUEUE_POLICIES_LAYOUT,
  QUEUE_LIMITS_LAYOUT,
  LEASES_LAYOUT,
  TEMPLATES_LAYOUT,
  TRIGGERS_LAYOUT,
  SCHEDULES_LAYOUT,
  SIGNAL_WAITS_LAYOUT,
];

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const topo = topology();

/** The rows of docs/architecture.md's resource table, by resource name. */
function documentedRows(): Map<string, string[]> {
  const doc = readFileSync(join(root, 'docs', 'architecture.md'), 'utf8');
  const rows = new Map<string, string[]>();
  for (const line of doc.split('\n')) {
    const match = /^\| `([A-Za-z_]+)` \| (.*) \|$/.exec(line);
    if (match) rows.set(match[1]!, match[2]!.split(' | '));
  }
  return rows;
}

/** "gateway (watch), planner" → ["gateway", "planner"]. */
const services = (cell: string) =>
  cell
    .replace(/\([^)]*\)/g, '')
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '');

describe('every stream and bucket has one owner module, and docs/architecture.md says what it does', () => {
  it('gives each resource of the topology exactly one owner layout', () => {
    const resources = Object.entries(topo)
      .filter(([field, value]) => /(Stream|Bucket)$/.test(field) && typeof value === 'string')
      .map(([, value]) => value as string)
      .sort();
    expect(OWNED.map((layout) => layout.bucket(topo)).sort()).toEqual(resources);
  });

  it.each(OWNED.map((layout) => [layout.bucket(topo), layout] as const))('documents %s as its owner states it', (name, layout) => {
    const row = documentedRows().get(name);
    expect(row, `docs/architecture.md has no row for \`${name}\``).toBeDefined();
    const [kind, keys, , writers, readers] = row!;
    expect(kind).toBe(layout.kind);
    expect(keys).toContain(layout.keys);
    expect(keys).toContain(layout.value);
    expect(services(writers!)).toEqual(layout.writers);
    expect(services(readers!)).toEqual(layout.readers);
  });
});
