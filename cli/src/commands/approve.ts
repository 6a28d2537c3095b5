import type { GatewayClient } from '../client.js';
import { UserError } from '../user-error.js';

export interface ApproveOptions {
  code?: string;
  by?: string;
  /** approve: the task's output, as JSON text. */
  output?: string;
  /** reject: why, recorded as the task's error. */
  reason?: string;
}

/**
 * Acks a waiting approval task. Without `--code` the code is read from the task's output: whoever
 * may read the flow can read it anyway, and the code guards against acking a different run of the
 * task (a rerun draws a new one), not against the reader.
 */
export async function ackCommand(client: GatewayClient, flowId: string, taskId: string, decision: 'approve' | 'reject', options: ApproveOptions): Promise<string> {
  const code = options.code ?? (await codeOf(client, flowId, taskId));
  const body: Record<string, unknown> = { status: decision === 'approve' ? 'success' : 'failed', code };
  if (options.by !== undefined) body.approved_by = options.by;
  if (decision === 'approve' && options.output !== undefined) body.output = parseOutput(options.output);
  if (decision === 'reject' && options.reason !== undefined) body.error = options.reason;
  await client.ack(flowId, taskId, body);
  return `Task ${taskId} of flow ${flowId} ${decision === 'approve' ? 'approved' : 'rejected'}`;
}

function parseOutput(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new UserError(`--output is not valid JSON: ${(error as Error).message}`, 'quote it for the shell, e.g. --output \'{"ticket": "OPS-42"}\'');
  }
}

async function codeOf(client: GatewayClient, flowId: string, taskId: string): Promise<string> {
  const view = await client.status(flowId);
  const task = view.tasks.find((t) => t.id === taskId);
  if (task === undefined) throw new UserError(`flow ${flowId} has no task "${taskId}"`, `list its tasks with \`taskstream status ${flowId}\``);
  const code = (task.output as { code?: unknown } | undefined)?.code;
  if (task.status !== 'waiting' || typeof code !== 'string') {
    throw new UserError(`task "${taskId}" is ${task.status}, not waiting for approval`, `see \`taskstream status ${flowId}\`; only an approval task that is waiting can be approved or rejected`);
  }
  return code;
}
