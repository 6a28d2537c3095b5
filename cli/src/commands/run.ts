import { startStack, type Stack } from '../embedded.js';
import { GatewayClient } from '../client.js';
import { isTerminalEvent, RunRenderer } from '../render.js';
import { readFlowFile } from './flow-file.js';

export interface RunOptions {
  queue?: string;
  server?: string;
  nats?: string;
  dataDir?: string;
}

/** Submits a flow and follows it live; resolves to the exit code (0 only when the flow succeeded). */
export async function runCommand(file: string, options: RunOptions, print: (line: string) => void = console.log): Promise<number> {
  const { body, taskIds } = readFlowFile(file, options.queue);
  let stack: Stack | undefined;
  const onSignal = () => {
    void (stack?.stop() ?? Promise.resolve()).finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    let server = options.server;
    if (server === undefined) {
      stack = await startStack({ natsUrl: options.nats, dataDir: options.dataDir, logLevel: 'silent', shellEnabled: true });
      server = stack.gatewayUrl;
    }
    const client = new GatewayClient(server);
    const submitted = await client.submit(body, 'application/json');
    print(`Flow ${submitted.flow_id}  submitted${options.queue ? ` to queue "${options.queue}"` : ''} (${submitted.tasks} task${submitted.tasks === 1 ? '' : 's'})`);
    const renderer = new RunRenderer(taskIds);
    let outcome = 'flow.failed';
    await client.follow(submitted.flow_id, (event) => {
      for (const line of renderer.lines(event)) print(line);
      if (isTerminalEvent(event)) outcome = event.type;
      return isTerminalEvent(event);
    });
    return outcome === 'flow.succeeded' ? 0 : 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await stack?.stop();
  }
}
