import { jsonBytes, mapTriggerParams, MAX_TRIGGER_BYTES, oversizedPart, TriggerBody, type FlowOrigin, type StoredTemplate, type StoredTrigger } from '@taskstream/domain';
import { newId, submitFlow, TooManyTriggersError, type IdempotencyStore, type SecretStore, type TriggerStore } from '@taskstream/nats';
import type { ServiceContext } from '@taskstream/runtime';
import { ApiError, apiError, type Problem } from './errors.js';
import type { Flows } from './flows.js';
import { flowSubmitted } from './metrics.js';
import { shapeProblems } from './routes/input.js';
import { problemsOf, type Templates } from './templates.js';
import { standardWebhooksKey, UnusableSecretError, verifyDelivery, type Delivery } from './webhook-verify.js';

export interface HookRun {
  flowId: string;
  /** True when the delivery was seen before: nothing new was started. */
  replayed: boolean;
  deliveryId: string;
  template?: { name: string; version: number };
}

/**
 * Webhook triggers: each names a template, maps a delivery's body and headers to its params, and
 * says how deliveries are verified (with a secret of the secrets store, read when a delivery
 * arrives). A verified delivery is claimed by its id before anything is submitted, so a replay
 * answers the first run's flow; the flow is submitted under the id claimed, so a retry after a crash
 * between the two submits that same flow once.
 */
export class Triggers {
  constructor(
    private readonly ctx: ServiceContext,
    readonly store: TriggerStore,
    private readonly templates: Templates,
    private readonly secrets: SecretStore,
    private readonly idempotency: IdempotencyStore,
    private readonly flows: Flows,
  ) {}

  /** Validates and stores a trigger: its template (and version) and its secret must exist. */
  async put(name: string, input: unknown): Promise<{ trigger: StoredTrigger; created: boolean }> {
    const shape = shapeProblems(input, 2);
    if (shape.length > 0) throw problemsOf('INVALID_TRIGGER', shape);
    const bytes = jsonBytes(input);
    if (bytes > MAX_TRIGGER_BYTES) throw problemsOf('INVALID_TRIGGER', [{ path: '$', message: `the trigger is ${bytes} bytes as JSON, over the ${MAX_TRIGGER_BYTES}-byte (${MAX_TRIGGER_BYTES / 1024} KiB) limit; map fewer or shorter params` }]);
    const parsed = TriggerBody.safeParse(input, { reportInput: true });
    if (!parsed.success) {
      throw problemsOf(
        'INVALID_TRIGGER',
        parsed.error.issues.flatMap((issue): Problem[] =>
          issue.code === 'unrecognized_keys'
            ? issue.keys.map((key) => ({ path: [...issue.path, key].join('.'), message: 'unknown field; remove it or check its spelling' }))
            : [{ path: issue.path.length > 0 ? issue.path.join('.') : '$', message: issue.path.length === 0 ? 'must be a JSON object such as {"template": "deploy", "params": {...}, "verify": {"scheme": "github", "secret": "gh-hook"}}' : issue.code === 'invalid_type' && issue.input === undefined ? 'is required' : issue.message }],
        ),
      );
    }
    const body = parsed.data;
    const problems: Problem[] = [];
    const template = await this.templates.store.resolve(body.template, body.version);
    if (template && template.params_schema.additionalProperties === false) {
      const declared = Object.keys((template.params_schema.properties as Record<string, unknown> | undefined) ?? {});
      for (const param of Object.keys(body.params)) {
        if (!declared.includes(param)) problems.push({ path: `params.${param}`, message: `template "${template.name}" version ${template.version} declares no param "${param}" (it takes ${declared.map((d) => `"${d}"`).join(', ') || 'none'}); remove it or check its spelling` });
      }
    }
    if (!template) {
      const exists = body.version !== undefined && (await this.templates.store.latest(body.template)) !== undefined;
      problems.push(exists ? { path: 'version', message: `template "${body.template}" has no version ${body.version}; list its versions with GET /api/v1/templates/${body.template}/versions` } : { path: 'template', message: `no template named "${body.template}"; create it first (PUT /api/v1/templates/${body.template})` });
    }
    if (body.verify.secret !== undefined) {
      const value = await this.secrets.get(body.verify.secret);
      if (value === undefined) problems.push({ path: 'verify.secret', message: `no secret named "${body.verify.secret}"; set it first (taskstream secret set ${body.verify.secret})` });
      else if (body.verify.scheme === 'standard_webhooks') {
        try {
          standardWebhooksKey(value);
        } catch (error) {
          problems.push({ path: 'verify.secret', message: `secret "${body.verify.secret}" ${(error as Error).message}` });
        }
      }
    }
    if (problems.length > 0) throw problemsOf('INVALID_TRIGGER', problems);
    try {
      return await this.store.put(name, body);
    } catch (error) {
      if (error instanceof TooManyTriggersError) throw apiError('LIMIT_REACHED', error.message);
      throw error;
    }
  }

  async get(name: string): Promise<StoredTrigger> {
    const trigger = await this.store.get(name);
    if (!trigger) throw apiError('TRIGGER_NOT_FOUND', name);
    return trigger;
  }

  /**
   * Verifies a delivery and starts its run, or answers the run an earlier delivery with the same id
   * started. A refusal (ApiError INVALID_SIGNATURE) starts nothing.
   */
  async deliver(name: string, delivery: Delivery, contentType: string | undefined, nowMs = Date.now()): Promise<HookRun> {
    const trigger = await this.get(name);
    const secret = await this.secretOf(trigger);
    let verified;
    try {
      verified = verifyDelivery(trigger.verify, secret, delivery, nowMs);
    } catch (error) {
      if (error instanceof UnusableSecretError) throw apiError('TRIGGER_MISCONFIGURED', name, `its secret "${trigger.verify.secret}" ${error.message}`);
      throw error;
    }
    if (!verified.ok) throw apiError('INVALID_SIGNATURE', verified.reason);

    let flowId = newId(nowMs);
    if (verified.dedupeKey !== undefined) {
      const claim = await this.idempotency.claim(`trigger:${name}:${verified.dedupeKey}`, flowId, 'trigger delivery');
      if (!claim.claimed) {
        flowId = claim.existing.flow_id;
        if (await this.flows.exists(flowId)) return { flowId, replayed: true, deliveryId: verified.deliveryId ?? flowId };
      }
    }
    const deliveryId = verified.deliveryId ?? flowId;
    const template = await this.templateOf(trigger);
    const mapped = mapTriggerParams(trigger.params, { body: parseBody(delivery.body, contentType), headers: delivery.headers });
    if (!mapped.ok) throw problemsOf('INVALID_PARAMS', mapped.problems);
    const definition = this.templates.definition(template, mapped.params);
    const oversized = oversizedPart(definition);
    if (oversized) throw apiError('FLOW_TOO_LARGE', oversized.part, oversized.bytes, oversized.limit);
    const origin: FlowOrigin = { template: { name: template.name, version: template.version }, trigger: { name, delivery_id: deliveryId } };
    // Conditional on the flow having no submission: of two copies of one delivery racing here, one submits.
    const { created } = await submitFlow(this.ctx.js, this.ctx.topo, { definition, flowId, origin, submittedBy: `trigger:${name}` }, nowMs);
    if (created) flowSubmitted(definition.queue);
    return { flowId, replayed: !created, deliveryId, template: origin.template! };
  }

  private async secretOf(trigger: StoredTrigger): Promise<string | undefined> {
    if (trigger.verify.scheme === 'none') return undefined;
    const value = await this.secrets.get(trigger.verify.secret!);
    if (value === undefined) throw apiError('TRIGGER_MISCONFIGURED', trigger.name, `its secret "${trigger.verify.secret}" is not in the secrets store (set it again, or PUT the trigger with another)`);
    return value;
  }

  private async templateOf(trigger: StoredTrigger): Promise<StoredTemplate> {
    try {
      return await this.templates.resolve(trigger.template, trigger.version);
    } catch (error) {
      if (error instanceof ApiError && (error.code === 'TEMPLATE_NOT_FOUND' || error.code === 'TEMPLATE_VERSION_NOT_FOUND')) {
        throw apiError('TRIGGER_MISCONFIGURED', trigger.name, `its template ${trigger.template}${trigger.version !== undefined ? ` version ${trigger.version}` : ''} no longer exists`);
      }
      throw error;
    }
  }
}

/** A delivery's body for `${trigger.body…}`: JSON, form fields, or text. */
function parseBody(body: Buffer, contentType: string | undefined): unknown {
  const type = (contentType ?? '').toLowerCase();
  const text = body.toString('utf8');
  if (type.includes('json') || (type === '' && /^\s*[[{]/.test(text))) {
    if (text.trim() === '') return {};
    try {
      return JSON.parse(text);
    } catch {
      throw apiError('INVALID_BODY', 'the delivery\'s body is not valid JSON, as its content type says');
    }
  }
  if (type.includes('application/x-www-form-urlencoded')) {
    const fields: Record<string, unknown> = {};
    for (const [key, value] of new URLSearchParams(text)) {
      let parsed: unknown = value;
      // GitHub's form deliveries carry the JSON payload in the field "payload".
      if (key === 'payload') {
        try {
          parsed = JSON.parse(value);
        } catch {
          parsed = value;
        }
      }
      if (!Object.hasOwn(fields, key)) Object.defineProperty(fields, key, { value: parsed, enumerable: true, writable: true, configurable: true });
    }
    return fields;
  }
  return text;
}
