import { readFileSync } from 'node:fs';
import { parseFlowText, validateFlow } from '@taskstream/domain';
import { parse as parseYaml } from 'yaml';
import { UserError } from '../user-error.js';

/** Reads a flow file (JSON or YAML), applies a queue override, and checks it before anything is sent. */
export function readFlowFile(file: string, queue?: string): { body: string; taskIds: string[] } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UserError(code === 'ENOENT' ? `no such flow file: ${file}` : `cannot read ${file}: ${(error as Error).message}`, 'pass the path of a .json or .yaml flow file');
  }
  const json = /\.json$/i.test(file);
  // The domain's parser first: it refuses a document nested too deeply before anything recursive reads it.
  let result = parseFlowText(text, json ? 'json' : 'yaml');
  let document: unknown;
  if (result.ok) {
    document = json ? JSON.parse(text) : parseYaml(text);
    if (queue !== undefined && document !== null && typeof document === 'object') {
      (document as Record<string, unknown>).queue = queue;
      result = validateFlow(document);
    }
  }
  if (!result.ok) {
    throw new UserError(
      `${file} is not a valid flow (${result.problems.length} problem${result.problems.length === 1 ? '' : 's'}):\n${result.problems.map((p) => `  ${p.path}: ${p.message}`).join('\n')}`,
      'fix the problems listed and run again; the flow format is in schemas/flow.schema.json',
    );
  }
  return { body: JSON.stringify(document), taskIds: result.flow.tasks.map((t) => t.id) };
}
