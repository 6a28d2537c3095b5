import type { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { isFlowEnd, TaskstreamError, type StoredEvent, type TaskstreamClient } from '@taskstream/client';
import { eventsUri, flowOfUri, flowUri } from './format.js';

/** Flows one session may follow at once (subscriptions and approval questions together). */
export const MAX_FOLLOWED = 100;
/** How long the user has to answer an approval question. */
const ASK_TIMEOUT_MS = 60 * 60 * 1000;
/** How long the end of a run waits for the view to show it before it is notified anyway. */
const VIEW_WAIT_MS = 5_000;

interface Followed {
  uris: Set<string>;
  approvals: boolean;
  asked: Set<string>;
  stop: AbortController;
}

/**
 * What a session follows: flows whose resources it subscribed to (each change is a
 * `notifications/resources/updated`), and flows whose approvals it asks the user about (by MCP
 * elicitation, where the client supports it; the answer is sent as the task's ack).
 */
export class Follower {
  private readonly flows = new Map<string, Followed>();

  constructor(
    private readonly client: TaskstreamClient,
    private readonly server: Server,
    private readonly log: (message: string) => void,
  ) {}

  /** Starts notifying `uri`'s subscriber of changes; refuses a URI that names no flow. */
  subscribe(uri: string): void {
    const flowId = flowOfUri(uri);
    if (flowId === undefined) throw new TaskstreamError('INVALID_PARAMETER', `only flow resources can be subscribed to (taskstream://flows/{id} or taskstream://flows/{id}/events), not "${uri.slice(0, 200)}"`);
    const followed = this.follow(flowId);
    followed.uris.add(uri);
    // A run the session follows: its approvals are asked about too, where the client can be asked.
    if (this.canAsk()) followed.approvals = true;
  }

  unsubscribe(uri: string): void {
    const flowId = flowOfUri(uri);
    const followed = flowId === undefined ? undefined : this.flows.get(flowId);
    if (!followed) return;
    followed.uris.delete(uri);
    if (followed.uris.size === 0 && !followed.approvals) this.drop(flowId!);
  }

  /** Asks the user about the flow's approvals as they come, if the client can be asked. */
  followApprovals(flowId: string): void {
    if (!this.canAsk()) return;
    this.follow(flowId).approvals = true;
  }

  close(): void {
    for (const flowId of [...this.flows.keys()]) this.drop(flowId);
  }

  private canAsk(): boolean {
    return this.server.getClientCapabilities()?.elicitation !== undefined;
  }

  private follow(flowId: string): Followed {
    const known = this.flows.get(flowId);
    if (known) return known;
    if (this.flows.size >= MAX_FOLLOWED) throw new TaskstreamError('LIMIT_REACHED', `this session already follows ${MAX_FOLLOWED} flows; unsubscribe from some first`);
    const followed: Followed = { uris: new Set(), approvals: false, asked: new Set(), stop: new AbortController() };
    this.flows.set(flowId, followed);
    void this.run(flowId, followed).finally(() => {
      if (this.flows.get(flowId) === followed) this.flows.delete(flowId);
    });
    return followed;
  }

  private drop(flowId: string): void {
    this.flows.get(flowId)?.stop.abort();
    this.flows.delete(flowId);
  }

  /** Follows the flow's feed from its view's last event to its end. */
  private async run(flowId: string, followed: Followed): Promise<void> {
    try {
      const view = await this.client.get(flowId);
      for (const task of view.tasks) {
        const output = task.output as { awaiting_approval?: boolean; message?: string; code?: string } | undefined;
        if (task.status === 'waiting' && output?.awaiting_approval) void this.ask(flowId, task.id, output.message ?? '', output.code, followed);
      }
      for await (const item of this.client.events(flowId, { after: view.last_seq, signal: followed.stop.signal })) this.changed(flowId, item, followed);
    } catch (error) {
      if (!(error instanceof TaskstreamError && error.code === 'ABORTED')) this.log(`stopped following flow ${flowId}: ${(error as Error).message}`);
    }
  }

  private changed(flowId: string, item: StoredEvent, followed: Followed): void {
    const notify = (uri: string) => {
      if (followed.uris.has(uri)) this.server.sendResourceUpdated({ uri }).catch((error: unknown) => this.log(`could not notify ${uri}: ${(error as Error).message}`));
    };
    notify(eventsUri(flowId));
    // The view is the projector's, a moment behind the log: the end is notified once the view shows it, so a read then sees the run ended.
    if (isFlowEnd(item.event)) void this.viewReaches(flowId, item.seq).then(() => notify(flowUri(flowId)));
    else notify(flowUri(flowId));
    const event = item.event;
    if (event.type === 'task.waiting' && event.data.output?.awaiting_approval) void this.ask(flowId, event.task_id, event.data.output.message, event.data.output.code, followed);
  }

  /** Resolves once the flow's view has folded sequence `seq` (or after VIEW_WAIT_MS, whatever it shows). */
  private async viewReaches(flowId: string, seq: number): Promise<void> {
    const until = Date.now() + VIEW_WAIT_MS;
    while (Date.now() < until) {
      const view = await this.client.get(flowId).catch(() => undefined);
      if (view && view.last_seq >= seq) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Asks the user once per task; an accepted answer is sent as the ack, anything else leaves the task waiting. */
  private async ask(flowId: string, taskId: string, message: string, code: string | undefined, followed: Followed): Promise<void> {
    if (!followed.approvals || followed.asked.has(taskId) || !this.canAsk()) return;
    followed.asked.add(taskId);
    try {
      const result = await this.server.elicitInput(
        {
          message: `Flow ${flowId} is waiting for approval of task "${taskId}": ${message}`,
          requestedSchema: {
            type: 'object',
            properties: {
              decision: { type: 'string', title: 'Decision', enum: ['approve', 'reject'], description: 'approve: the task succeeds and what depends on it runs; reject: it fails' },
              reason: { type: 'string', title: 'Reason', description: 'Why (recorded; on reject, the task\'s error)', maxLength: 4000 },
            },
            required: ['decision'],
          },
        },
        { timeout: ASK_TIMEOUT_MS, signal: followed.stop.signal },
      );
      if (result.action !== 'accept') return;
      const decision = result.content?.decision;
      const reason = typeof result.content?.reason === 'string' && result.content.reason !== '' ? result.content.reason : undefined;
      const by = { approvedBy: 'mcp-user', ...(code !== undefined && { code }) };
      if (decision === 'approve') await this.client.approve(flowId, taskId, by);
      else if (decision === 'reject') await this.client.reject(flowId, taskId, { ...by, ...(reason && { reason }) });
    } catch (error) {
      this.log(`approval of task ${taskId} of flow ${flowId} not sent: ${(error as Error).message}`);
    }
  }
}
