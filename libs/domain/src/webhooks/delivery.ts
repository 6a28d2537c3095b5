import type { EventType } from '../events/catalogue.js';
import type { FlowState } from '../decider/state.js';
import type { FlowDefinition } from '../flow/definition.js';

/**
 * Completion webhooks (Tasked's flow `webhooks`): which one a flow's end calls, its body, and
 * when a failed attempt is tried again. Pure; the executor's webhooks part does the I/O.
 */

/** Attempts of one webhook before delivery gives up. */
export const WEBHOOK_MAX_ATTEMPTS = 8;
/** The wait after the first failed attempt; each later wait doubles it. */
export const WEBHOOK_FIRST_RETRY_MS = 1_000;
/** How long one attempt may take, connection and answer included. */
export const WEBHOOK_ATTEMPT_TIMEOUT_MS = 10_000;
/** The secret that signs a flow's webhooks when the flow names none (an operator sets it). */
export const DEFAULT_WEBHOOK_SECRET = 'webhooks';

export type WebhookKind = 'on_complete' | 'on_failure';

/** The webhook a flow's terminal event calls: its kind, URL and the secret that signs it. */
export interface WebhookTarget {
  webhook: WebhookKind;
  url: string;
  /** Named by the flow (`webhooks.secret`); undefined means the store's DEFAULT_WEBHOOK_SECRET, if set. */
  secret?: string;
}

/** The flow-ending event types that call a webhook, and which one. */
export const WEBHOOK_TRIGGERS: Readonly<Partial<Record<EventType, WebhookKind>>> = {
  'flow.succeeded': 'on_complete',
  'flow.failed': 'on_failure',
  'flow.cancelled': 'on_failure',
};

/** The webhooks a definition sets, as the planner tells them with a flow's end (see the event log's hints). */
export function webhookKinds(definition: Pick<FlowDefinition, 'webhooks'>): WebhookKind[] {
  return (['on_complete', 'on_failure'] as const).filter((kind) => definition.webhooks?.[kind] !== undefined);
}

export function webhookTarget(definition: Pick<FlowDefinition, 'webhooks'>, terminal: EventType): WebhookTarget | undefined {
  const webhook = WEBHOOK_TRIGGERS[terminal];
  const url = webhook === undefined ? undefined : definition.webhooks?.[webhook];
  if (webhook === undefined || url === undefined) return undefined;
  return { webhook, url, ...(definition.webhooks?.secret !== undefined && { secret: definition.webhooks.secret }) };
}

/** Tasked's body, field for field. */
export interface WebhookBody {
  event: 'flow_completed' | 'flow_failed';
  flow_id: string;
  queue_id: string;
  state: 'succeeded' | 'failed' | 'cancelled';
  task_count: number;
  tasks_succeeded: number;
  tasks_failed: number;
}

/**
 * The body for a finished flow. As in Tasked, a task skipped by its condition counts as
 * succeeded, and a task cancelled or never run (upstream failed) as neither.
 */
export function webhookBody(state: FlowState): WebhookBody {
  if (state.status !== 'succeeded' && state.status !== 'failed' && state.status !== 'cancelled') {
    throw new Error(`flow ${state.flow_id} is ${state.status}: a webhook body describes a flow that has ended`);
  }
  let succeeded = 0;
  let failed = 0;
  for (const id of state.order) {
    const status = state.tasks[id]!.status;
    if (status === 'succeeded' || status === 'skipped') succeeded++;
    else if (status === 'failed' || status === 'timed_out') failed++;
  }
  return {
    event: state.status === 'succeeded' ? 'flow_completed' : 'flow_failed',
    flow_id: state.flow_id,
    queue_id: state.definition.queue,
    state: state.status,
    task_count: state.order.length,
    tasks_succeeded: succeeded,
    tasks_failed: failed,
  };
}

/** The `webhook-id` header: one message per flow (a flow ends once), the same on every attempt. */
export function webhookId(flowId: string): string {
  return `msg_${flowId}`;
}

/**
 * The URL as histories and logs show it: scheme, host, port and path. A query string or fragment
 * is replaced by "?…", since tokens are often passed there.
 */
export function shownWebhookUrl(url: string): string {
  try {
    const parsed = new URL(url);
    const hidden = parsed.search !== '' || parsed.hash !== '' ? '?…' : '';
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}${hidden}`;
  } catch {
    return '(not a URL)';
  }
}

/**
 * The wait before the attempt after `attempt` (1-based): 1 s, 2 s, 4 s, … 64 s, so the eight
 * attempts span about two minutes of waits (plus up to WEBHOOK_ATTEMPT_TIMEOUT_MS each).
 * Undefined once `attempt` was the last.
 */
export function webhookRetryDelayMs(attempt: number): number | undefined {
  if (!Number.isInteger(attempt) || attempt < 1 || attempt >= WEBHOOK_MAX_ATTEMPTS) return undefined;
  return WEBHOOK_FIRST_RETRY_MS * 2 ** (attempt - 1);
}

/** The longest a webhook can take from the flow's end to its last attempt (waits and attempts). */
export function webhookDeliveryWindowMs(): number {
  let total = 0;
  for (let attempt = 1; attempt <= WEBHOOK_MAX_ATTEMPTS; attempt++) total += WEBHOOK_ATTEMPT_TIMEOUT_MS + (webhookRetryDelayMs(attempt) ?? 0);
  return total;
}

/** How an attempt went: a 2xx answer, another answer, no answer, or a refusal no retry can change. */
export type AttemptResult = { kind: 'answered'; status: number } | { kind: 'failed'; failure: string } | { kind: 'refused'; failure: string; code: string };

/** What follows an attempt: done, another attempt after `delayMs`, or giving up. */
export type WebhookNext = { kind: 'delivered' } | { kind: 'retry'; delayMs: number } | { kind: 'abandon'; code: string; reason: string };

/**
 * Decides after an attempt. `lastDelivery` is true when JetStream will not deliver the message
 * again (its max_deliver reached): a retry is then impossible, and delivery gives up saying so.
 */
export function nextAfterAttempt(attempt: number, result: AttemptResult, lastDelivery: boolean): WebhookNext {
  if (result.kind === 'answered' && result.status >= 200 && result.status < 300) return { kind: 'delivered' };
  if (result.kind === 'refused') return { kind: 'abandon', code: result.code, reason: result.failure };
  const delayMs = webhookRetryDelayMs(attempt);
  const what = result.kind === 'answered' ? `the last answer was HTTP ${result.status}` : `the last attempt failed: ${result.failure}`;
  if (delayMs === undefined) return { kind: 'abandon', code: 'ATTEMPTS_EXHAUSTED', reason: `gave up after ${attempt} attempts; ${what}` };
  if (lastDelivery) return { kind: 'abandon', code: 'DELIVERIES_EXHAUSTED', reason: `gave up after ${attempt} attempts because its message reached the consumer's delivery limit; ${what}` };
  return { kind: 'retry', delayMs };
}
