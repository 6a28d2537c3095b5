import { serveStdio } from '@taskstream/mcp';
import { GatewayClient } from '../client.js';
import { startQuietStack } from '../embedded.js';
import { stopOnInterrupt } from '../stopping.js';
import { UserError } from '../user-error.js';

export interface McpOptions {
  server: string;
  /** Start the embedded stack (nats-server and every service) and serve it. */
  embedded?: boolean;
  nats?: string;
  natsCreds?: string;
  dataDir?: string;
  httpAllow?: string;
}

/**
 * `taskstream mcp`: an MCP server on stdin and stdout for an agent, over the gateway at --server, or
 * with --embedded over a stack it starts itself (then nothing else needs to run). Logs go to stderr.
 */
export async function mcpCommand(options: McpOptions, explicitServer: boolean): Promise<void> {
  if (options.embedded && explicitServer) throw new UserError('--embedded starts its own gateway, so --server has no use with it', 'leave out one of them');
  const interrupt = stopOnInterrupt();
  try {
    let url = options.server;
    if (options.embedded) {
      interrupt.stack = await startQuietStack(options);
      url = interrupt.stack.gatewayUrl;
      process.stderr.write(`taskstream mcp: embedded stack up, gateway ${url}\n`);
    } else if (!/^https?:\/\/[^/]/.test(url)) {
      throw new UserError(`--server must be an http:// or https:// URL, not "${url.slice(0, 200)}"`, 'e.g. --server http://127.0.0.1:8080');
    }
    // The CLI's client: the key from --api-key or TASKSTREAM_API_KEY, Node's WebSocket.
    await serveStdio(new GatewayClient(url).sdk);
  } finally {
    await interrupt.stack?.stop();
  }
}
