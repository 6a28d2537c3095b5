import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { TaskstreamClient } from '@taskstream/client';
import { createMcpServer } from './server.js';

/**
 * Serves MCP on this process's stdin and stdout (one JSON-RPC message a line) until stdin ends.
 * Nothing else may write to stdout: `log` goes to stderr.
 */
export async function serveStdio(client: TaskstreamClient, log: (message: string) => void = (m) => process.stderr.write(`taskstream mcp: ${m}\n`)): Promise<void> {
  const mcp = createMcpServer({ client, log });
  const transport = new StdioServerTransport();
  const closed = new Promise<void>((resolve) => {
    transport.onclose = () => resolve();
    process.stdin.once('end', () => resolve());
  });
  await mcp.server.connect(transport);
  await closed;
  await mcp.close();
}
