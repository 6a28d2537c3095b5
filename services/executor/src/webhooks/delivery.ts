import {
  DEFAULT_WEBHOOK_SECRET,
  eventSubject,
  nextAfterAttempt,
  shownWebhookUrl,
  WEBHOOK_ATTEMPT_TIMEOUT_MS,
  WEBHOOK_MAX_ATTEMPTS,
  WEBHOOK_TRIGGERS,
  webhookBody,
  webhookId,
  webhookTarget,
  type AttemptResult,
  type EventBody,
  type EventOf,
  type EventType,
  type FlowEvent,
  type WebhookTarget,
} from '@taskstream/domain';
import { decodeEvent, definitionsOf, EventLog, foldFlowHistory, HandBack, WEBHOOKS_HINT, type JsMsg } from '@taskstream/nats';
import type { ServiceContext } from '@taskstream/runtime';
import type { Agent } from 'undici';
import { postWebhook } from './send.js';
import { webhookHeaders } from './sign.js';

type WebhookEvent = EventBody<'id' | 'version' | 'time'>;
type Common = Pick<EventOf<'flow.webhook_attempted'>['data'], 'webhook' | 'url' | 'webhook_id'>;

/** The secret that signs an attempt: a name and a value, none (unsigned), or a named one that is missing. */
type Signing = { name: string; value: string } | { name: undefined } | { missing: string };

export interface WebhookDeliveryDeps {
  ctx: ServiceContext;
  dispatcher: Agent;
  readSecret: (name: string) => Promise<string | undefined>;
  /** The consumers' max_deliver: on that delivery no retry can follow. */
  maxDeliver: number;
}

/**
 * Delivers the webhook a flow's end calls, one attempt per delivery of the terminal event. The
 * log says where delivery stands: the last `flow.webhook_attempted` gives the attempt number, and
 * a delivered or abandoned event ends it. Each attempt's event has a msgID of its own, so an
 * attempt repeated after a crash is recorded once; the retry wait is JetStream's (a delayed nak).
 */
export class WebhookDelivery {
  private readonly log: EventLog;

  constructor(private readonly deps: WebhookDeliveryDeps) {
    this.log = new EventLog(deps.ctx.js, deps.ctx.topo);
  }

  readonly handle = async (event: FlowEvent, msg: JsMsg): Promise<void> => {
    if (WEBHOOK_TRIGGERS[event.type] === undefined) return;
    const flowId = event.flow_id;
    // The planner says with a flow's end which webhooks the flow sets: most set none, and their
    // definitions need not be read. An end stored without the hint is read as before.
    const hinted = msg.headers?.get(WEBHOOKS_HINT);
    if (hinted && !hinted.split(',').includes(WEBHOOK_TRIGGERS[event.type]!)) return;
    if (!(await this.mayCall(flowId, event.type))) return;
    if ((await this.last(flowId, 'flow.webhook_delivered')) || (await this.last(flowId, 'flow.webhook_abandoned'))) return;
    const state = await foldFlowHistory(this.deps.ctx.js, this.deps.ctx.topo, flowId);
    const target = state && webhookTarget(state.definition, event.type);
    if (!state || !target) return;
    const common: Common = { webhook: target.webhook, url: shownWebhookUrl(target.url), webhook_id: webhookId(flowId) };
    const previous = await this.last(flowId, 'flow.webhook_attempted');
    const attempt = (previous?.type === 'flow.webhook_attempted' ? previous.data.attempt : 0) + 1;
    if (attempt > WEBHOOK_MAX_ATTEMPTS) {
      await this.end(flowId, { type: 'flow.webhook_abandoned', flow_id: flowId, data: { ...common, attempts: attempt - 1, code: 'ATTEMPTS_EXHAUSTED', reason: `gave up after ${attempt - 1} attempts` } });
      return;
    }
    const body = JSON.stringify(webhookBody(state));
    const signing = await this.signing(target);
    const { result, durationMs } = 'missing' in signing ? { result: missingSecret(signing.missing), durationMs: 0 } : await this.post(target, common.webhook_id, body, signing);
    const next = nextAfterAttempt(attempt, result, msg.info.deliveryCount >= this.deps.maxDeliver);
    await this.record(flowId, `${flowId}:webhook:attempt:${attempt}`, {
      type: 'flow.webhook_attempted',
      flow_id: flowId,
      data: {
        ...common,
        attempt,
        event: event.type === 'flow.succeeded' ? 'flow_completed' : 'flow_failed',
        ...(result.kind === 'answered' && { status: result.status }),
        ...(result.kind !== 'answered' ? { failure: result.failure } : next.kind !== 'delivered' && { failure: `answered HTTP ${result.status}` }),
        duration_ms: durationMs,
        signed: 'value' in signing,
        ...('value' in signing && { secret: signing.name }),
        ...(next.kind === 'retry' && { retry_in_ms: next.delayMs }),
      },
    });
    await this.follow(flowId, common, attempt, result, next);
  };

  /** Whether the flow's definition may name this webhook; a large definition is only known once folded. */
  private async mayCall(flowId: string, terminal: EventType): Promise<boolean> {
    const submitted = await this.last(flowId, 'flow.submitted');
    if (submitted?.type !== 'flow.submitted') return false;
    // A large definition is in the definitions store: read it there, not by folding the flow's
    // whole history, which a flow of 10,000 tasks without webhooks made 30,000 events read and
    // decoded at its end. It stays cached for the delivery's fold, or goes now if none follows.
    const definitions = await definitionsOf(this.deps.ctx.js, this.deps.ctx.topo);
    const hydrated = await definitions.hydrate(submitted);
    const definition = hydrated.type === 'flow.submitted' ? hydrated.data.definition : undefined;
    const calls = definition === undefined || webhookTarget(definition, terminal) !== undefined;
    if (!calls) definitions.release(flowId);
    return calls;
  }

  private async follow(flowId: string, common: Common, attempt: number, result: AttemptResult, next: ReturnType<typeof nextAfterAttempt>): Promise<void> {
    if (next.kind === 'retry') throw new HandBack(`webhook attempt ${attempt} of flow ${flowId} failed; again in ${next.delayMs} ms`, next.delayMs);
    if (next.kind === 'delivered' && result.kind === 'answered') {
      await this.end(flowId, { type: 'flow.webhook_delivered', flow_id: flowId, data: { ...common, attempts: attempt, status: result.status } });
    } else if (next.kind === 'abandon') {
      await this.end(flowId, { type: 'flow.webhook_abandoned', flow_id: flowId, data: { ...common, attempts: attempt, code: next.code, reason: next.reason } });
      this.deps.ctx.log.warn({ flow_id: flowId, url: common.url, code: next.code }, 'webhook delivery abandoned');
    }
  }

  private async post(target: WebhookTarget, id: string, body: string, signing: { name: string; value: string } | { name: undefined }) {
    const headers = webhookHeaders(id, Math.floor(Date.now() / 1000), body, 'value' in signing ? signing.value : undefined);
    return postWebhook(this.deps.dispatcher, target.url, body, headers, WEBHOOK_ATTEMPT_TIMEOUT_MS);
  }

  /** The flow's named secret, else the operator's DEFAULT_WEBHOOK_SECRET, else none. */
  private async signing(target: WebhookTarget): Promise<Signing> {
    const name = target.secret ?? DEFAULT_WEBHOOK_SECRET;
    const value = await this.deps.readSecret(name);
    if (value !== undefined) return { name, value };
    return target.secret !== undefined ? { missing: target.secret } : { name: undefined };
  }

  /** The last event of a type in the flow's log, read directly (no consumer) by its subject. */
  private async last(flowId: string, type: EventType): Promise<FlowEvent | undefined> {
    const { jsm, topo } = this.deps.ctx;
    const stored = await jsm.direct.getMessage(topo.eventsStream, { last_by_subj: eventSubject(topo.layout, flowId, type) });
    if (stored === null) return undefined;
    const decoded = decodeEvent(stored.data);
    return decoded.ok ? decoded.value : undefined;
  }

  private async end(flowId: string, event: WebhookEvent): Promise<void> {
    // Delivered and abandoned share a key: whichever is stored first is the only end.
    await this.record(flowId, `${flowId}:webhook:end`, event);
  }

  private async record(flowId: string, msgID: string, event: WebhookEvent): Promise<void> {
    await this.log.appendNew({ ...event, flow_id: flowId } as WebhookEvent, msgID);
  }
}

/** A flow that names a signing secret the store lacks is never sent unsigned: the attempt fails, and is retried in case it is added. */
function missingSecret(name: string): AttemptResult {
  return { kind: 'failed', failure: `not sent: the secret "${name}" that webhooks.secret names is not in the secrets store; add it with PUT /api/v1/secrets/${name}` };
}
