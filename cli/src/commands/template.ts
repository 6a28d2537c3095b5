import { readFileSync } from 'node:fs';
import type { FlowView } from '@taskstream/domain';
import { parse as parseYaml } from 'yaml';
import { GatewayClient } from '../client.js';
import { isTerminalEvent, RunRenderer } from '../render.js';
import { UserError } from '../user-error.js';

/** `taskstream template …` and `taskstream trigger …`: templates and webhook triggers, through the gateway. */

interface ServerOptions {
  server: string;
  json?: boolean;
}

/** A JSON or YAML file holding one object, read for a PUT. */
export function readDocument(file: string, what: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UserError(code === 'ENOENT' ? `no such ${what} file: ${file}` : `cannot read ${file}: ${(error as Error).message}`, `pass the path of a .json or .yaml ${what} file`);
  }
  let document: unknown;
  try {
    document = /\.json$/i.test(file) ? JSON.parse(text) : parseYaml(text, { maxAliasCount: 100 });
  } catch (error) {
    throw new UserError(`${file} is not valid ${/\.json$/i.test(file) ? 'JSON' : 'YAML'}: ${(error as Error).message}`, `fix the ${what} file and run again`);
  }
  if (document === null || typeof document !== 'object' || Array.isArray(document)) throw new UserError(`${file} does not hold a ${what} (an object)`, `see docs/triggers.md for the ${what} format`);
  return document as Record<string, unknown>;
}

/** The name a PUT goes to: `--name`, else the document's `name` (taken out of the body). */
export function nameOf(document: Record<string, unknown>, given: string | undefined, file: string, what: string): string {
  const name = given ?? document.name;
  delete document.name;
  if (typeof name !== 'string' || name === '') throw new UserError(`${file} names no ${what}`, `add "name": "…" to the file, or pass --name`);
  return name;
}

/** A PUT, refused like every GatewayClient request: the gateway's message and problems, exit 3 when it cannot be reached or fails. */
export async function put<T>(client: GatewayClient, path: string, body: unknown): Promise<{ status: number; body: T }> {
  return client.putWithStatus<T>(path, body);
}

const templatePath = (name: string) => `/api/v1/templates/${encodeURIComponent(name)}`;

/** `NAME` or `NAME@VERSION`. */
export function splitRef(ref: string): { name: string; version?: number } {
  const at = ref.lastIndexOf('@');
  if (at === -1) return { name: ref };
  const version = ref.slice(at + 1);
  if (!/^[1-9][0-9]{0,14}$/.test(version)) throw new UserError(`"${ref}" does not end in a version number`, 'write NAME or NAME@VERSION, e.g. deploy@3');
  return { name: ref.slice(0, at), version: Number(version) };
}

/** `taskstream template put FILE`: creates the next version, or none when it is unchanged. */
export async function putTemplate(file: string, options: ServerOptions & { name?: string }): Promise<void> {
  const document = readDocument(file, 'template');
  const name = nameOf(document, options.name, file, 'template');
  const { status, body } = await put<{ name: string; version: number; created: boolean }>(new GatewayClient(options.server), templatePath(name), document);
  if (options.json) console.log(JSON.stringify(body, null, 2));
  else console.log(status === 201 ? `template ${body.name} version ${body.version} created` : `template ${body.name} unchanged (version ${body.version})`);
}

interface TemplateInfo {
  name: string;
  version: number;
  description?: string;
  updated_at: string;
}

export async function listTemplates(options: ServerOptions): Promise<void> {
  const { templates } = await new GatewayClient(options.server).get<{ templates: TemplateInfo[] }>('/api/v1/templates');
  if (options.json) return console.log(JSON.stringify(templates, null, 2));
  if (templates.length === 0) return console.log('no templates (create one with `taskstream template put FILE`)');
  const width = Math.max(4, ...templates.map((t) => t.name.length));
  console.log(`${'NAME'.padEnd(width)}  VERSION  UPDATED                   DESCRIPTION`);
  for (const t of templates) console.log(`${t.name.padEnd(width)}  ${String(t.version).padEnd(7)}  ${t.updated_at.padEnd(24)}  ${t.description ?? ''}`);
}

/** `taskstream template show NAME[@V]`: the stored template as JSON; `--versions` lists the versions kept instead. */
export async function showTemplate(ref: string, options: ServerOptions & { versions?: boolean }): Promise<void> {
  const { name, version } = splitRef(ref);
  const client = new GatewayClient(options.server);
  if (options.versions) {
    const { versions } = await client.get<{ versions: Array<{ version: number; created_at: string; description?: string }> }>(`${templatePath(name)}/versions`);
    if (options.json) return console.log(JSON.stringify(versions, null, 2));
    for (const v of versions) console.log(`${String(v.version).padEnd(7)}  ${v.created_at}  ${v.description ?? ''}`);
    return;
  }
  console.log(JSON.stringify(await client.get(`${templatePath(name)}${version !== undefined ? `?version=${version}` : ''}`), null, 2));
}

export async function deleteTemplate(name: string, options: ServerOptions): Promise<void> {
  await new GatewayClient(options.server).remove(templatePath(name));
  console.log(`template ${name} deleted`);
}

type PropertySchema = { type?: unknown };

/**
 * `--param k=v` values as the template's schema types them: numbers, booleans, objects and lists
 * are read as JSON, strings are taken as written; a param of no stated type is JSON when it parses.
 */
export function paramsOf(pairs: readonly string[], schema: { properties?: Record<string, PropertySchema> } | undefined): Record<string, unknown> {
  const params: Record<string, unknown> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UserError(`--param ${JSON.stringify(pair)} is not NAME=VALUE`, 'write --param env=prod (repeat it for each param)');
    const name = pair.slice(0, eq);
    const raw = pair.slice(eq + 1);
    if (Object.hasOwn(params, name)) throw new UserError(`--param ${name} is given twice`, 'give each param once');
    const declared = schema?.properties && Object.hasOwn(schema.properties, name) ? schema.properties[name]?.type : undefined;
    const types = [declared].flat().filter((t): t is string => typeof t === 'string');
    let value: unknown = raw;
    if (!(types.length === 1 && types[0] === 'string')) {
      try {
        const parsed: unknown = JSON.parse(raw);
        if (types.length === 0 || types.some((t) => matchesType(parsed, t))) value = parsed;
      } catch {
        value = raw;
      }
    }
    Object.defineProperty(params, name, { value, enumerable: true, writable: true, configurable: true });
  }
  return params;
}

function matchesType(value: unknown, type: string): boolean {
  switch (type) {
    case 'integer':
      return Number.isInteger(value);
    case 'number':
      return typeof value === 'number';
    case 'boolean':
      return typeof value === 'boolean';
    case 'null':
      return value === null;
    case 'array':
      return Array.isArray(value);
    case 'object':
      return value !== null && typeof value === 'object' && !Array.isArray(value);
    default:
      return false;
  }
}

/** `taskstream template run NAME[@V] --param k=v …`: submits a run; with `--follow`, resolves to the exit code (0 only when it succeeded). */
export async function runTemplate(ref: string, options: ServerOptions & { param?: string[]; paramsFile?: string; follow?: boolean }): Promise<number> {
  const { name, version } = splitRef(ref);
  const client = new GatewayClient(options.server);
  const template = await client.get<{ version: number; params_schema: { properties?: Record<string, PropertySchema> } }>(`${templatePath(name)}${version !== undefined ? `?version=${version}` : ''}`);
  const fromFile = options.paramsFile !== undefined ? readDocument(options.paramsFile, 'params') : {};
  const params = { ...fromFile, ...paramsOf(options.param ?? [], template.params_schema) };
  const run = await client.post<{ flow_id: string; tasks: number; template: { version: number } }>(`${templatePath(name)}/runs`, { params, version: template.version });
  if (!options.follow) {
    console.log(options.json ? JSON.stringify(run, null, 2) : run.flow_id);
    return 0;
  }
  console.log(`Flow ${run.flow_id}  submitted from template ${name} version ${run.template.version} (${run.tasks} task${run.tasks === 1 ? '' : 's'})`);
  const view = await client.get<FlowView>(`/api/v1/flows/${run.flow_id}`);
  const renderer = new RunRenderer(view.tasks.map((t) => t.id));
  let outcome = '';
  await client.follow(run.flow_id, (event) => {
    for (const line of renderer.lines(event)) console.log(line);
    if (isTerminalEvent(event)) outcome = event.type;
    return isTerminalEvent(event);
  });
  return outcome === 'flow.succeeded' ? 0 : 1;
}
