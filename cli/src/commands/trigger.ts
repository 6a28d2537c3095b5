import { GatewayClient } from '../client.js';
import { nameOf, put, readDocument } from './template.js';

interface ServerOptions {
  server: string;
  json?: boolean;
}

interface TriggerView {
  name: string;
  template: string;
  version?: number;
  verify: { scheme: string; secret?: string };
  hook: string;
  updated_at: string;
}

const triggerPath = (name: string) => `/api/v1/triggers/${encodeURIComponent(name)}`;

/** `taskstream trigger put FILE`: creates or replaces a webhook trigger. */
export async function putTrigger(file: string, options: ServerOptions & { name?: string }): Promise<void> {
  const document = readDocument(file, 'trigger');
  const name = nameOf(document, options.name, file, 'trigger');
  const { status, body } = await put<TriggerView>(new GatewayClient(options.server), triggerPath(name), document);
  if (options.json) return console.log(JSON.stringify(body, null, 2));
  console.log(`trigger ${body.name} ${status === 201 ? 'created' : 'replaced'}: deliveries to POST ${body.hook} run template ${body.template}${body.version !== undefined ? `@${body.version}` : ''}, verified by ${body.verify.scheme}`);
}

export async function listTriggers(options: ServerOptions): Promise<void> {
  const { triggers } = await new GatewayClient(options.server).get<{ triggers: TriggerView[] }>('/api/v1/triggers');
  if (options.json) return console.log(JSON.stringify(triggers, null, 2));
  if (triggers.length === 0) return console.log('no triggers (create one with `taskstream trigger put FILE`)');
  const width = Math.max(4, ...triggers.map((t) => t.name.length));
  console.log(`${'NAME'.padEnd(width)}  ${'TEMPLATE'.padEnd(20)}  ${'SCHEME'.padEnd(17)}  SECRET`);
  for (const t of triggers) console.log(`${t.name.padEnd(width)}  ${`${t.template}${t.version !== undefined ? `@${t.version}` : ''}`.padEnd(20)}  ${t.verify.scheme.padEnd(17)}  ${t.verify.secret ?? '-'}`);
}

/** The trigger as JSON: its secret's name, never a value (the gateway never has one to show). */
export async function showTrigger(name: string, options: ServerOptions): Promise<void> {
  console.log(JSON.stringify(await new GatewayClient(options.server).get(triggerPath(name)), null, 2));
}

export async function deleteTrigger(name: string, options: ServerOptions): Promise<void> {
  await new GatewayClient(options.server).remove(triggerPath(name));
  console.log(`trigger ${name} deleted`);
}
