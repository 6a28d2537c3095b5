import { startQuietStack } from '../embedded.js';
import { GatewayClient } from '../client.js';
import { isTerminalEvent, RunRenderer } from '../render.js';
import { stopOnInterrupt } from '../stopping.js';
import { readFlowFile } from './flow-file.js';

export interface RunOptions {
  queue?: string;
  server?: string;
  nats?: string;
  /** Embedded mode with `nats`: the NATS credentials file to connect with. */
  natsCreds?: string;
  dataDir?: string;
  /** Embedded mode: CIDRs and host names http steps may reach besides public addresses, comma-separated. */
  httpAllow?: string;
}

/**
 * Submits a flow and follows it live; resolves to the exit code (0 only when the flow succeeded).
 * SIGINT and SIGTERM stop it, and the process, from the moment it is called.
 */
export async function runCommand(file: string, options: RunOptions, print: (line: string) => void = console.log): Promise<number> {
  const { body, taskIds } = readFlowFile(file, options.queue);
  const interrupt = stopOnInterrupt();
  try {
    let server = options.server;
    if (server === undefined) {
      interrupt.stack = await startQuietStack(options);
      server = interrupt.stack.gatewayUrl;
    }
    const client = new GatewayClient(server);
    const submitted = await client.submit(body, 'application/json');
    print(`Flow ${submitted.flow_id}  submitted${options.queue ? ` to queue "${options.queue}"` : ''} (${submitted.tasks} task${submitted.tasks === 1 ? '' : 's'})`);
    for (const warning of submitted.warnings ?? []) print(`warning: ${warning}`);
    const renderer = new RunRenderer(taskIds);
    let outcome = 'flow.failed';
    await client.follow(submitted.flow_id, (event) => {
      for (const line of renderer.lines(event)) print(line);
      if (isTerminalEvent(event)) outcome = event.type;
      return isTerminalEvent(event);
    });
    return outcome === 'flow.succeeded' ? 0 : 1;
  } finally {
    await interrupt.stack?.stop();
    // Stopping on a signal closes the gateway under the follow: the signal's exit code is the
    // outcome, not what the follow made of that, so this never settles and that exit wins.
    if (interrupt.stopping) await new Promise<never>(() => {});
  }
}
