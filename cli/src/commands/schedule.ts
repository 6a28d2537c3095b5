import type { Command } from 'commander';
import { GatewayClient } from '../client.js';
import { UserError } from '../user-error.js';
import { readFlowFile } from './flow-file.js';
import { paramsOf as typedParams, splitRef } from './template.js';

/** A schedule as the gateway answers it (GET /api/v1/schedules/{id}). */
export interface ScheduleView {
  id: string;
  name?: string;
  cron: string;
  timezone: string;
  enabled: boolean;
  catchup: string;
  catchup_window_secs: number;
  overlap: string;
  queue?: string;
  template?: { name: string; version: number };
  flow?: unknown;
  created_at: string;
  last_run: { scheduled_at: string; flow_id: string } | null;
  skipped: number;
  next_runs: string[];
}

type Options = Record<string, string | boolean | string[] | undefined> & { server: string };
type Option = readonly [string, string, string?];

const path = (id: string) => `/api/v1/schedules/${encodeURIComponent(id)}`;

function paramsOf(options: Options): Record<string, unknown> | undefined {
  if (options.params === undefined) return undefined;
  if (Array.isArray(options.param) && options.param.length > 0) throw new UserError('give the params with --param or --params, not both');
  try {
    const params = JSON.parse(String(options.params));
    if (params === null || typeof params !== 'object' || Array.isArray(params)) throw new Error('not an object');
    return params;
  } catch (error) {
    throw new UserError(`--params is not a JSON object: ${(error as Error).message}`, 'give the template\'s params as JSON, e.g. --params \'{"env": "prod"}\'');
  }
}

/** The body of `schedule add`, from its flags. */
export function scheduleBody(file: string | undefined, options: Options): Record<string, unknown> {
  if ((file === undefined) === (options.template === undefined)) throw new UserError('give either a flow file or --template, not both and not neither', 'e.g. taskstream schedule add nightly.yaml --cron "0 3 * * *"');
  const flow = file !== undefined ? JSON.parse(readFlowFile(file, options.queue as string | undefined).body) : undefined;
  const window = options.catchupWindow === undefined ? undefined : Number(options.catchupWindow);
  if (window !== undefined && !Number.isInteger(window)) throw new UserError('--catchup-window must be a whole number of seconds');
  const params = paramsOf(options);
  return {
    cron: options.cron,
    ...(options.name !== undefined && { name: options.name }),
    ...(options.timezone !== undefined && { timezone: options.timezone }),
    ...(flow !== undefined && { flow }),
    ...(options.template !== undefined && { template: splitRef(String(options.template)) }),
    ...(params !== undefined && { params }),
    ...(options.catchup !== undefined && { catchup: options.catchup }),
    ...(window !== undefined && { catchup_window_secs: window }),
    ...(options.overlap !== undefined && { overlap: options.overlap }),
    ...(options.paused === true && { enabled: false }),
  };
}

/** What `schedule show` prints: the schedule, its last run and its next five fire times. */
export function describeSchedule(s: ScheduleView): string[] {
  const what = s.template ? `template ${s.template.name} v${s.template.version}` : 'inline flow';
  return [
    `Schedule ${s.id}${s.name ? `  ${s.name}` : ''}`,
    `  cron        ${s.cron} (${s.timezone})`,
    `  status      ${s.enabled ? 'enabled' : 'paused'}`,
    `  runs        ${what}${s.queue ? ` on queue ${s.queue}` : ''}`,
    `  catch-up    ${s.catchup} (window ${s.catchup_window_secs}s); overlap ${s.overlap}`,
    `  last run    ${s.last_run ? `${s.last_run.scheduled_at}  flow ${s.last_run.flow_id}` : 'none yet'}${s.skipped > 0 ? `; ${s.skipped} skipped` : ''}`,
    s.next_runs.length > 0 ? '  next runs' : '  next runs   none (paused, or the expression fires no more)',
    ...s.next_runs.map((t) => `    ${t}`),
  ];
}

const line = (s: ScheduleView) => `${s.id}  ${(s.enabled ? 'enabled' : 'paused').padEnd(7)}  ${s.cron.padEnd(16)}  ${s.timezone.padEnd(16)}  ${s.next_runs[0] ?? '-'}  ${s.name ?? ''}`.trimEnd();

/** `taskstream schedule add|list|show|pause|resume|delete`, each through the gateway. */
export function registerScheduleCommands(program: Command, server: Option, apiKey: Option): void {
  const schedule = program.command('schedule').description('run a flow or a template on a cron schedule (the scheduler service starts the runs)');
  const remote = (command: Command) => command.option(...(server as [string, string, string])).option(...(apiKey as [string, string]));
  remote(
    schedule
      .command('add')
      .description('create a schedule from a flow file, or for a template with --template')
      .argument('[file]', 'flow file (.json or .yaml)')
      .requiredOption('--cron <expr>', 'cron expression: 5 fields, 6 with seconds first, or 7 with a year last')
      .option('--name <name>', 'a name for the schedule (and its runs)')
      .option('--timezone <tz>', 'IANA time zone the expression is read in (default UTC)')
      .option('-q, --queue <name>', "with a flow file: the queue of tasks that name none")
      .option('--template <name[@version]>', 'run this template instead of a flow file')
      .option('--params <json>', "the template's params, as a JSON object")
      .option('--param <name=value>', "one of the template's params, typed as its schema says (repeat it)", (value: string, all: string[] = []) => [...all, value])
      .option('--catchup <policy>', 'missed runs after an outage: none, latest (default) or all')
      .option('--catchup-window <secs>', 'how far back missed runs are caught up (default 3600)')
      .option('--overlap <policy>', 'when the previous run still goes on: skip (default), buffer_one or allow')
      .option('--paused', 'create it paused'),
  ).action(async (file: string | undefined, options: Options) => {
    const client = new GatewayClient(options.server);
    const body = scheduleBody(file, options);
    const pairs = Array.isArray(options.param) ? options.param : [];
    if (pairs.length > 0) {
      if (options.template === undefined) throw new UserError('--param is for a template\'s params', 'give --template NAME, or put the values in the flow file');
      const ref = splitRef(String(options.template));
      const template = await client.get<{ params_schema?: { properties?: Record<string, { type?: unknown }> } }>(`/api/v1/templates/${encodeURIComponent(ref.name)}${ref.version !== undefined ? `?version=${ref.version}` : ''}`);
      body.params = typedParams(pairs, template.params_schema);
    }
    const created = await client.post<ScheduleView>('/api/v1/schedules', body);
    for (const text of describeSchedule(created)) console.log(text);
  });
  remote(schedule.command('list').description('every schedule: id, status, cron, time zone, next run, name').option('--json', 'print the raw list')).action(async (options: Options) => {
    const { schedules } = await new GatewayClient(options.server).get<{ schedules: ScheduleView[] }>('/api/v1/schedules');
    if (options.json) return console.log(JSON.stringify(schedules, null, 2));
    if (schedules.length === 0) console.log('no schedules');
    for (const s of schedules) console.log(line(s));
  });
  remote(schedule.command('show').description('a schedule, its last run and its next 5 fire times (ISO 8601)').argument('<id>').option('--json', 'print the raw schedule')).action(async (id: string, options: Options) => {
    const s = await new GatewayClient(options.server).get<ScheduleView>(path(id));
    console.log(options.json ? JSON.stringify(s, null, 2) : describeSchedule(s).join('\n'));
  });
  for (const [verb, enabled] of [['pause', false], ['resume', true]] as const) {
    remote(schedule.command(verb).description(enabled ? 'resume a paused schedule (times while paused are not caught up)' : 'pause a schedule: no run starts until it is resumed').argument('<id>')).action(async (id: string, options: Options) => {
      const s = await new GatewayClient(options.server).put<ScheduleView>(path(id), { enabled });
      console.log(`schedule ${s.id} ${enabled ? `resumed; next run ${s.next_runs[0] ?? 'none'}` : 'paused'}`);
    });
  }
  remote(schedule.command('delete').description('delete a schedule; runs already started go on').argument('<id>')).action(async (id: string, options: Options) => {
    await new GatewayClient(options.server).remove(path(id));
    console.log(`schedule ${id} deleted`);
  });
}
