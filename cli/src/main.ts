import { NatsUnreachableError } from '@taskstream/nats';
import { Command, InvalidArgumentError } from 'commander';
import { checkGatewaySettings, GATEWAY_SETTINGS, runGatewayService } from '@taskstream/gateway';
import { COMMON_SETTINGS, flagsAsEnv, SettingError, type Settings } from '@taskstream/runtime';
import { GatewayClient, useApiKey } from './client.js';
import { ackCommand } from './commands/approve.js';
import { artifactsCommand } from './commands/artifacts.js';
import { readFlowFile } from './commands/flow-file.js';
import { createKey, listKeys, revokeKey } from './commands/keys.js';
import { PROVISION_FLAGS, provisionCommand } from './commands/provision.js';
import { runCommand } from './commands/run.js';
import { registerScheduleCommands } from './commands/schedule.js';
import { deleteSecret, listSecrets, setSecret } from './commands/secret.js';
import { deleteTemplate, listTemplates, putTemplate, runTemplate, showTemplate } from './commands/template.js';
import { deleteTrigger, listTriggers, putTrigger, showTrigger } from './commands/trigger.js';
import { LOCAL_HTTP_ALLOW } from '@taskstream/executor';
import { SERVICE_STARTS, SERVICES, serviceCommand } from './commands/service.js';
import { upCommand } from './commands/up.js';
import { mcpCommand } from './commands/mcp.js';
import { isTerminalEvent, renderStatus, RunRenderer } from './render.js';
import { replayLines } from './replay.js';
import { UserError } from './user-error.js';

const env = process.env;
const defaultServer = env.TASKSTREAM_URL ?? 'http://127.0.0.1:8080';

function whole(name: string) {
  return (raw: string) => {
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 0) throw new InvalidArgumentError(`${name} must be a whole number`);
    return value;
  };
}

function fail(error: unknown): never {
  if (error instanceof UserError) {
    process.stderr.write(`error: ${error.message}\n${error.hint ? `hint: ${error.hint}\n` : ''}`);
    process.exit(error.exitCode);
  }
  if (error instanceof SettingError) {
    process.stderr.write(`error: ${error.message}\nhint: correct or unset ${error.setting}, or the flag that sets it (docs/operations.md lists every setting)\n`);
    process.exit(2);
  }
  if (error instanceof NatsUnreachableError) {
    process.stderr.write(`error: ${error.message}\n`);
    process.exit(3);
  }
  process.stderr.write(`error: ${(error as Error)?.message ?? String(error)}\n`);
  if (env.TASKSTREAM_DEBUG) process.stderr.write(`${(error as Error)?.stack}\n`);
  else process.stderr.write('hint: set TASKSTREAM_DEBUG=1 for details; this looks like a bug, please report it\n');
  process.exit(1);
}

const program = new Command()
  .name('taskstream')
  .description('Run DAG workflows on NATS JetStream.')
  .showHelpAfterError()
  .configureOutput({ outputError: (text, write) => write(`error: ${text.replace(/^error: /, '')}`) });

/** A NATS credentials file beside --nats; a path is no secret, so unlike the password it may be a flag. */
const natsCredsOption = ['--nats-creds <file>', 'with --nats: a NATS credentials file (user JWT and nkey seed) to connect with (default: TASKSTREAM_NATS_CREDS)'] as const;

/** No default shown: help output must never print a key from the environment. */
const apiKeyOption = ['--api-key <key>', 'API key sent to the gateway as Authorization: Bearer (default: TASKSTREAM_API_KEY)'] as const;

// Every client a command makes sends the key given with --api-key (else TASKSTREAM_API_KEY).
program.hook('preAction', (_program, action) => useApiKey(action.opts().apiKey as string | undefined));

// No default value given to commander: the embedded stack falls back to the variable, then to loopback, itself.
const HTTP_ALLOW_HELP = `CIDRs and host names http steps may reach besides public addresses, comma-separated (default: TASKSTREAM_HTTP_ALLOW, else ${LOCAL_HTTP_ALLOW.join(',')})`;

program
  .command('run')
  .description('submit a flow and follow it live; embedded (nats-server + all services in this process) unless --server is given')
  .argument('<file>', 'flow file (.json or .yaml)')
  .option('-q, --queue <name>', 'queue for tasks that do not name one')
  .option('-s, --server <url>', 'a running gateway to submit to, instead of running embedded')
  .option('--nats <url>', 'embedded mode: use this NATS instead of starting nats-server')
  .option(...natsCredsOption)
  .option('--data-dir <dir>', 'embedded mode: where nats-server keeps its data', '.taskstream')
  .option('--http-allow <list>', `embedded mode: ${HTTP_ALLOW_HELP}`)
  .option(...apiKeyOption)
  .action(async (file: string, options) => process.exit(await runCommand(file, options)));

program
  .command('up')
  .description('run the whole stack (nats-server + six services) in the foreground until Ctrl-C')
  .option('--host <host>', 'gateway address', '127.0.0.1')
  .option('-p, --port <port>', 'gateway port', whole('port'), 8080)
  .option('--nats <url>', 'use this NATS instead of starting nats-server')
  .option(...natsCredsOption)
  .option('--data-dir <dir>', 'where nats-server keeps its data', '.taskstream')
  .option('-q, --queue <name>', 'queue the executor serves ("*" for every queue)', '*')
  .option('-c, --concurrency <n>', 'tasks the executor runs at once (default: TASKSTREAM_CONCURRENCY, else 8)', whole('concurrency'))
  .option('--log-level <level>', 'service log level', 'warn')
  .option('--auth', 'require API keys, as a deployed gateway does; on a stack with no usable key, creates an admin key and prints it once')
  .option('--http-allow <list>', HTTP_ALLOW_HELP)
  .action(upCommand);

/** A flag for each declared setting that has one; its value only sets the variable, so the help names it and the declared default. */
function settingFlags(command: Command, settings: Settings): void {
  for (const setting of Object.values(settings)) if (setting.flag !== undefined) command.option(setting.flag, `${setting.help} (${setting.env}; default ${setting.default || 'none'})`);
}

for (const name of SERVICES) {
  const command = program.command(name).description(`run the ${name} service alone (for deployments that scale each service)`);
  // Flags only set the environment variables they stand for; defaults and checks are the service's own.
  const settings: Settings = name === 'gateway' ? { ...COMMON_SETTINGS, ...GATEWAY_SETTINGS } : { ...COMMON_SETTINGS, ...SERVICE_STARTS[name].settings };
  settingFlags(command, settings);
  if (name === 'gateway') command.action((flags) => gatewayCommand(settings, flags));
  else command.action((options) => serviceCommand(name, options));
}

/**
 * The gateway alone, as its own main runs it (runGatewayService): API keys required unless
 * TASKSTREAM_AUTH=none, and no serving beyond loopback without them unless
 * TASKSTREAM_ALLOW_UNAUTHENTICATED=true. A setting it refuses is refused here first, as a usage error.
 */
async function gatewayCommand(settings: Settings, flags: Record<string, unknown>): Promise<void> {
  Object.assign(process.env, flagsAsEnv(settings, flags));
  try {
    checkGatewaySettings(process.env);
  } catch (error) {
    if (error instanceof SettingError) throw error;
    throw new UserError((error as Error).message);
  }
  await runGatewayService();
}

const serverOption = ['-s, --server <url>', 'gateway URL (or TASKSTREAM_URL)', defaultServer] as const;

program
  .command('mcp')
  .description('serve MCP (Model Context Protocol) on stdin and stdout for AI agents: tools, resources, subscriptions and approvals over a gateway; --embedded runs the whole stack itself')
  .option(...serverOption)
  .option(...apiKeyOption)
  .option('--embedded', 'start the embedded stack (nats-server + every service) in this process and serve it: nothing else needs to run')
  .option('--nats <url>', 'with --embedded: use this NATS instead of starting nats-server')
  .option(...natsCredsOption)
  .option('--data-dir <dir>', 'with --embedded: where nats-server keeps its data', '.taskstream')
  .option('--http-allow <list>', `with --embedded: ${HTTP_ALLOW_HELP}`)
  .action(async (options, command: Command) => mcpCommand(options, command.getOptionValueSource('server') === 'cli'));

program
  .command('submit')
  .description('submit a flow to a running gateway and print its id')
  .argument('<file>', 'flow file (.json or .yaml)')
  .option(...serverOption)
  .option(...apiKeyOption)
  .option('-q, --queue <name>', 'queue for tasks that do not name one')
  .option('--idempotency-key <key>', 'retrying with the same key returns the same flow')
  .action(async (file: string, options) => {
    const { body } = readFlowFile(file, options.queue);
    const result = await new GatewayClient(options.server).submit(body, 'application/json', options.idempotencyKey);
    for (const warning of result.warnings ?? []) console.error(`warning: ${warning}`);
    console.log(result.flow_id);
  });

program
  .command('status')
  .description("show a flow's status and its tasks")
  .argument('<flow-id>')
  .option(...serverOption)
  .option(...apiKeyOption)
  .option('--json', 'print the raw view')
  .option('-f, --follow', 'print its tasks as they settle until the flow ends (exit 0 only if it succeeded)')
  .action(async (flowId: string, options) => {
    const client = new GatewayClient(options.server);
    if (options.follow) {
      const view = await client.status(flowId);
      const renderer = new RunRenderer(view.tasks.map((t) => t.id));
      let outcome = '';
      await client.follow(flowId, (event) => {
        for (const line of renderer.lines(event)) console.log(line);
        if (isTerminalEvent(event)) outcome = event.type;
        return isTerminalEvent(event);
      });
      process.exit(outcome === 'flow.succeeded' ? 0 : 1);
    }
    const view = await client.status(flowId);
    console.log(options.json ? JSON.stringify(view, null, 2) : renderStatus(view).join('\n'));
  });

program
  .command('flows')
  .description('list flows, newest first')
  .option(...serverOption)
  .option(...apiKeyOption)
  .option('--status <list>', 'comma-separated statuses, e.g. failed,cancelled')
  .option('-q, --queue <name>')
  .option('--since <time>', 'submitted at or after (ISO 8601)')
  .option('--until <time>', 'submitted before (ISO 8601)')
  .option('--name <text>', 'name contains')
  .option('--label <key:value>', 'has this label')
  .option('--template <name>', 'runs of this template')
  .option('--schedule <id>', 'runs of this schedule')
  .option('--limit <n>', 'flows per page', '50')
  .option('--cursor <cursor>', 'the next_cursor of the previous page')
  .option('--json', 'print the raw page')
  .action(async (options) => {
    const page = await new GatewayClient(options.server).flows({
      status: options.status, queue: options.queue, since: options.since, until: options.until, name: options.name, label: options.label, limit: options.limit, cursor: options.cursor,
      template: options.template, schedule: options.schedule,
    });
    if (options.json) return console.log(JSON.stringify(page, null, 2));
    for (const f of page.flows) console.log(`${f.flow_id}  ${f.status.padEnd(10)}  ${String(f.total).padStart(4)} tasks  ${f.submitted_at}  ${f.queue}  ${f.name ?? ''}`.trimEnd());
    if (page.next_cursor) console.log(`more: --cursor ${page.next_cursor}`);
  });

program
  .command('replay')
  .description("print a flow's timeline: relative times, who recorded what, attempts and errors")
  .argument('<flow-id>')
  .option(...serverOption)
  .option(...apiKeyOption)
  .option('--step', "show the flow's folded state after every event")
  .action(async (flowId: string, options) => {
    const { events } = await new GatewayClient(options.server).events(flowId);
    for (const line of replayLines(events, options.step)) console.log(line);
  });

program
  .command('export')
  .description('export the history of every flow as NDJSON, for audit tools')
  .requiredOption('--since <time>', 'ISO 8601 time to export from')
  .option('--until <time>', 'ISO 8601 time to export until (default: now)')
  .option(...serverOption)
  .option(...apiKeyOption)
  .action(async (options) => {
    const params = new URLSearchParams({ since: options.since, ...(options.until && { until: options.until }) });
    process.stdout.write(await new GatewayClient(options.server).text(`/api/v1/events?${params}`));
  });

program
  .command('graph')
  .description("print a flow's graph, nodes coloured by task state")
  .argument('<flow-id>')
  .option(...serverOption)
  .option(...apiKeyOption)
  .option('--format <format>', 'dot or mermaid', 'dot')
  .action(async (flowId: string, options) => {
    process.stdout.write(await new GatewayClient(options.server).text(`/api/v1/flows/${encodeURIComponent(flowId)}/graph?format=${encodeURIComponent(options.format)}`));
  });

program
  .command('rerun')
  .description('start a new flow that reuses the outputs of succeeded tasks and runs the rest again')
  .argument('<flow-id>')
  .option(...serverOption)
  .option(...apiKeyOption)
  .option('--from <task>', 'also run this task and everything downstream of it again')
  .action(async (flowId: string, options) => console.log((await new GatewayClient(options.server).rerun(flowId, options.from)).flow_id));

program
  .command('fork')
  .description("start a new flow from this flow's state at a stream sequence, optionally patched")
  .argument('<flow-id>')
  .requiredOption('--at <seq>', 'the stream sequence to fork at (see `taskstream replay`)', whole('at'))
  .option('--patch <json>', 'flow fields to replace; tasks merge by id, e.g. {"tasks":[{"id":"deploy","config":{...}}]}')
  .option(...serverOption)
  .option(...apiKeyOption)
  .action(async (flowId: string, options) => {
    let patch: unknown;
    if (options.patch !== undefined) {
      try {
        patch = JSON.parse(options.patch);
      } catch (error) {
        throw new UserError(`--patch is not valid JSON: ${(error as Error).message}`);
      }
    }
    console.log((await new GatewayClient(options.server).fork(flowId, options.at, patch)).flow_id);
  });

program
  .command('events')
  .description("print a flow's complete event history")
  .argument('<flow-id>')
  .option(...serverOption)
  .option(...apiKeyOption)
  .option('--json', 'one JSON object per line')
  .action(async (flowId: string, options) => {
    const { events } = await new GatewayClient(options.server).events(flowId);
    for (const { seq, stored_at, event } of events) {
      if (options.json) console.log(JSON.stringify({ seq, stored_at, event }));
      else console.log(`${String(seq).padStart(6)}  ${stored_at}  ${event.type.padEnd(20)} ${'task_id' in event ? event.task_id : ''}${'attempt' in event ? ` #${event.attempt}` : ''}`);
    }
  });

program
  .command('artifacts')
  .description("list the files a flow's shell steps stored, or download one")
  .argument('<flow-id>')
  .option('--get <name>', 'download this artifact (its name as listed, e.g. out/report.csv)')
  .option('--task <id>', "only this task's artifacts; needed to download a name several tasks stored")
  .option('-o, --output <file>', 'with --get: where to write it, "-" for standard output (default: the last part of its name)')
  .option(...serverOption)
  .option(...apiKeyOption)
  .action(async (flowId: string, options) => artifactsCommand(new GatewayClient(options.server), flowId, options));

program
  .command('cancel')
  .description('cancel a flow: pending tasks are cancelled, running ones stopped')
  .argument('<flow-id>')
  .option(...serverOption)
  .option(...apiKeyOption)
  .option('--reason <text>', 'recorded in the history')
  .action(async (flowId: string, options) => {
    await new GatewayClient(options.server).cancel(flowId, options.reason);
    console.log(`Flow ${flowId} cancelling`);
  });

for (const decision of ['approve', 'reject'] as const) {
  const command = program
    .command(decision)
    .description(decision === 'approve' ? 'approve a waiting approval task: it succeeds and its dependents run' : 'reject a waiting approval task: it fails, as its dependents then do')
    .argument('<flow-id>')
    .argument('<task-id>')
    .option(...serverOption)
    .option(...apiKeyOption)
    .option('--code <code>', "the task's approval code (default: read from the task's output)")
    .option('--by <name>', 'who decided, recorded as approved_by');
  if (decision === 'approve') command.option('--output <json>', "the task's output, as JSON");
  else command.option('--reason <text>', "why, recorded as the task's error");
  command.action(async (flowId: string, taskId: string, options) => {
    console.log(await ackCommand(new GatewayClient(options.server), flowId, taskId, decision, options));
  });
}

program
  .command('signal')
  .description('send a signal: every wait task waiting for NAME whose match accepts the data succeeds with it as its output')
  .argument('<name>')
  .option('--data <json>', 'the payload, as JSON (default: null)')
  .option('--idempotency-key <key>', 'a retry with the same key stores the signal once')
  .option(...serverOption)
  .option(...apiKeyOption)
  .action(async (name: string, options) => {
    const payload = options.data ?? 'null';
    try {
      JSON.parse(payload);
    } catch (error) {
      throw new UserError(`--data is not valid JSON: ${(error as Error).message}`, 'quote it for the shell, e.g. --data \'{"order": "A-1"}\'');
    }
    const sent = await new GatewayClient(options.server).signal(name, payload, options.idempotencyKey);
    console.log(`Signal ${sent.name} ${sent.replayed ? 'already sent' : 'sent'} as ${sent.signal_id}`);
  });

const queue = program.command('queue').description('manage queue policies: rate and concurrency limits, task defaults');

function printQueue(view: { name: string; policy: Record<string, unknown>; running: number; tokens?: number }) {
  console.log(`${view.name}: ${JSON.stringify(view.policy)}  running=${view.running}${view.tokens !== undefined ? ` tokens=${view.tokens}` : ''}`);
}

queue
  .command('set')
  .description('create or replace a queue policy')
  .argument('<name>')
  .option(...serverOption)
  .option(...apiKeyOption)
  .option('--concurrency <n>', 'tasks of this queue running at once', whole('concurrency'))
  .option('--per-key-concurrency <n>', 'tasks with the same concurrency_key running at once', whole('per-key-concurrency'))
  .option('--rate <per-second>', 'tasks started per second', parseFloat)
  .option('--burst <n>', 'tasks that may start at once after a quiet period', whole('burst'))
  .option('--max-retries <n>', 'retries for tasks that set none', whole('max-retries'))
  .option('--timeout-secs <s>', 'timeout for tasks that set none', parseFloat)
  .option('--json <policy>', 'the whole policy as JSON instead of the flags')
  .action(async (name: string, options) => {
    let policy: Record<string, unknown>;
    if (options.json !== undefined) {
      try {
        policy = JSON.parse(options.json);
      } catch (error) {
        throw new UserError(`--json is not valid JSON: ${(error as Error).message}`);
      }
    } else {
      policy = {
        ...(options.concurrency !== undefined && { concurrency: options.concurrency }),
        ...(options.perKeyConcurrency !== undefined && { per_key_concurrency: options.perKeyConcurrency }),
        ...(options.rate !== undefined && { rate_limit: { per_second: options.rate, ...(options.burst !== undefined && { max_burst: options.burst }) } }),
        ...(options.maxRetries !== undefined && { max_retries: options.maxRetries }),
        ...(options.timeoutSecs !== undefined && { timeout_secs: options.timeoutSecs }),
      };
    }
    printQueue(await new GatewayClient(options.server).setQueue(name, policy));
  });

queue
  .command('get')
  .argument('<name>')
  .option(...serverOption)
  .option(...apiKeyOption)
  .action(async (name: string, options) => printQueue(await new GatewayClient(options.server).queue(name)));

queue
  .command('list')
  .option(...serverOption)
  .option(...apiKeyOption)
  .action(async (options) => {
    const { queues } = await new GatewayClient(options.server).queues();
    if (queues.length === 0) console.log('no queue policies; every queue runs without limits');
    for (const view of queues) printQueue(view);
  });

queue
  .command('delete')
  .argument('<name>')
  .option(...serverOption)
  .option(...apiKeyOption)
  .action(async (name: string, options) => {
    await new GatewayClient(options.server).deleteQueue(name);
    console.log(`queue ${name}: policy deleted; it now runs without limits`);
  });

const dlq = program.command('dlq').description('messages set aside because they could not be processed');

dlq
  .command('list')
  .option(...serverOption)
  .option(...apiKeyOption)
  .option('--source <name>', 'only letters from this consumer (planner, dispatcher, executor-<queue>, ...)')
  .option('--json', 'print the raw letters')
  .action(async (options) => {
    const query = new URLSearchParams(options.source ? { source: options.source } : {});
    const { letters } = JSON.parse(await new GatewayClient(options.server).text(`/api/v1/dlq?${query}`)) as { letters: Array<Record<string, string | number>> };
    if (options.json) return console.log(JSON.stringify(letters, null, 2));
    if (letters.length === 0) console.log('no dead letters');
    for (const l of letters) console.log(`${String(l.dlq_seq).padStart(6)}  ${l.time}  ${String(l.source).padEnd(18)} ${l.subject} (seq ${l.stream_seq}, ${l.delivery_count} deliveries)\n        ${l.reason}`);
  });

dlq
  .command('show')
  .argument('<seq>')
  .option(...serverOption)
  .option(...apiKeyOption)
  .action(async (seq: string, options) => console.log(JSON.stringify(JSON.parse(await new GatewayClient(options.server).text(`/api/v1/dlq/${encodeURIComponent(seq)}`)), null, 2)));

dlq
  .command('retry')
  .description('put the message back on its original subject')
  .argument('<seq>')
  .option(...serverOption)
  .option(...apiKeyOption)
  .action(async (seq: string, options) => {
    const result = await new GatewayClient(options.server).post(`/api/v1/dlq/${encodeURIComponent(seq)}/retry`);
    console.log(`dead letter ${seq} republished to ${(result as { republished_to: string }).republished_to}`);
  });

dlq
  .command('discard')
  .argument('<seq>')
  .option(...serverOption)
  .option(...apiKeyOption)
  .action(async (seq: string, options) => {
    await new GatewayClient(options.server).remove(`/api/v1/dlq/${encodeURIComponent(seq)}`);
    console.log(`dead letter ${seq} discarded`);
  });

const secret = program.command('secret').description('manage the secrets flows reference as ${secrets.NAME}; values are write-only, never shown');

secret
  .command('set')
  .description('create or replace a secret; without a value (or with "-") it is read from stdin, which keeps it out of shell history')
  .argument('<name>', 'letters, digits, "_", "-" and ".", 1 to 128 characters')
  .argument('[value]', 'the value; omit it, or give "-", to read it from stdin')
  .option(...serverOption)
  .option(...apiKeyOption)
  .action(setSecret);

secret
  .command('list')
  .description('secret names and when each was last set (never their values)')
  .option(...serverOption)
  .option(...apiKeyOption)
  .option('--json', 'print the raw list')
  .action(listSecrets);

secret
  .command('delete')
  .argument('<name>')
  .option(...serverOption)
  .option(...apiKeyOption)
  .action(deleteSecret);

registerScheduleCommands(program, serverOption, apiKeyOption);

const provision = program
  .command('provision')
  .description('create or update every stream and bucket, once per installation, as a NATS user allowed to; then services may run with TASKSTREAM_PROVISION=false under users that may not');
settingFlags(provision, PROVISION_FLAGS);
provision.option('--user <name>', 'NATS user (default: TASKSTREAM_NATS_USER); its password is read from TASKSTREAM_NATS_PASSWORD').action(provisionCommand);

const keys = program
  .command('keys')
  .description('manage API keys: through the gateway with an admin key, or straight to NATS with --nats (for the first admin key)');
const keysTarget = (command: Command) =>
  command
    .option(...serverOption)
    .option(...apiKeyOption)
    .option('--nats <url>', 'talk to this NATS directly instead of the gateway (comma-separated for a cluster)')
    .option(...natsCredsOption)
    .option('--prefix <prefix>', 'with --nats: subject and bucket prefix', env.TASKSTREAM_PREFIX ?? 'ts')
    .option('--json', 'print JSON');

keysTarget(
  keys
    .command('create')
    .description('create an API key and print it once (only then is it ever shown)')
    .requiredOption('--scope <scope>', 'read (GET routes and feeds), submit (also submit, cancel, rerun, fork, approve, reject) or admin (also queues, secrets, keys, dead letters)')
    .requiredOption('--name <name>', 'who or what uses the key, e.g. ci or dashboard'),
)
  .option('--expires <lifetime>', 'how long the key lives: 90s, 30m, 12h, 30d (default: until revoked)')
  .action(createKey);

keysTarget(keys.command('list').description('every key: id, scope, created, expiry or revocation, last day used, name (never the key itself)')).action(listKeys);

keysTarget(keys.command('revoke').description('revoke a key for good; it stops working within a second').argument('<id>', 'the key id: the 12 characters after "ts_"')).action(revokeKey);

const template = program.command('template').description('manage flow templates (versioned flows with a params schema) and run them');
const remote = (command: Command) => command.option(...serverOption).option(...apiKeyOption);
remote(template.command('put').description('create the next version of a template from a JSON or YAML file {name, flow, params_schema, description?}; an unchanged file creates none'))
  .argument('<file>', 'template file (.json or .yaml)')
  .option('--name <name>', 'the template name (default: the file\'s "name")')
  .option('--json', 'print the answer as JSON')
  .action(putTemplate);
remote(template.command('list').description("every template's latest version"))
  .option('--json', 'print JSON')
  .action(listTemplates);
remote(template.command('show').description('a template (its latest version, or NAME@VERSION) as JSON'))
  .argument('<name>', 'NAME or NAME@VERSION')
  .option('--versions', 'list the versions kept instead')
  .option('--json', 'with --versions: print JSON')
  .action(showTemplate);
remote(template.command('delete').description('delete a template and every version of it'))
  .argument('<name>')
  .action(deleteTemplate);
remote(template.command('run').description("run a template: its params checked against its schema, its flow submitted; prints the flow id"))
  .argument('<name>', 'NAME or NAME@VERSION (default: the latest)')
  .option('-p, --param <name=value>', 'a param (repeatable); read as the schema types it: numbers, booleans and JSON for non-string params', (value: string, previous: string[] = []) => [...previous, value])
  .option('--params-file <file>', 'params from a JSON or YAML file (--param values win)')
  .option('-f, --follow', 'print its tasks as they settle until the flow ends (exit 0 only if it succeeded)')
  .option('--json', 'print the answer as JSON')
  .action(async (name: string, options) => {
    const code = await runTemplate(name, options);
    if (code !== 0) process.exit(code);
  });

const trigger = program.command('trigger').description('manage webhook triggers: POST /api/v1/hooks/NAME runs a template with params mapped from the delivery');
remote(trigger.command('put').description('create or replace a trigger from a JSON or YAML file {name, template, version?, params, verify}'))
  .argument('<file>', 'trigger file (.json or .yaml)')
  .option('--name <name>', 'the trigger name (default: the file\'s "name")')
  .option('--json', 'print the answer as JSON')
  .action(putTrigger);
remote(trigger.command('list').description('every trigger: its template, scheme and secret name (never a secret value)'))
  .option('--json', 'print JSON')
  .action(listTriggers);
remote(trigger.command('show').description('a trigger as JSON (its secret by name only)'))
  .argument('<name>')
  .action(showTrigger);
remote(trigger.command('delete').description('delete a trigger; its deliveries are refused from then on'))
  .argument('<name>')
  .action(deleteTrigger);

program.parseAsync().catch(fail);
