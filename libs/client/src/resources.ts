import type { Transport } from './http.js';
import type {
  ApiKeyInfo,
  ApiKeyScope,
  ArtifactInfo,
  CreatedKey,
  DeadLetter,
  QueuePolicy,
  QueueStats,
  QueueView,
  ScheduleBody,
  ScheduleView,
  SecretInfo,
  Template,
  TemplateBody,
  TemplateInfo,
  TemplateRun,
  TemplateStored,
  TemplateVersions,
} from './types.js';

const seg = (text: string) => encodeURIComponent(text);

/** Queue policies: limits and task defaults per queue. */
export class Queues {
  constructor(private readonly t: Transport) {}
  async list(): Promise<QueueView[]> {
    return (await this.t.json<{ queues: QueueView[] }>({ method: 'GET', path: '/api/v1/queues', idempotent: true })).queues;
  }
  get(name: string): Promise<QueueView> {
    return this.t.json({ method: 'GET', path: `/api/v1/queues/${seg(name)}`, idempotent: true });
  }
  stats(name: string): Promise<QueueStats> {
    return this.t.json({ method: 'GET', path: `/api/v1/queues/${seg(name)}/stats`, idempotent: true });
  }
  /** Creates or replaces the policy (admin scope). */
  set(name: string, policy: QueuePolicy): Promise<QueueView> {
    return this.t.json({ method: 'PUT', path: `/api/v1/queues/${seg(name)}`, json: policy, idempotent: true });
  }
  async delete(name: string): Promise<void> {
    await this.t.send({ method: 'DELETE', path: `/api/v1/queues/${seg(name)}`, idempotent: true });
  }
}

/** Versioned flows with a params schema, and their runs. */
export class Templates {
  constructor(
    private readonly t: Transport,
    private readonly newKey: () => string,
  ) {}
  async list(): Promise<TemplateInfo[]> {
    return (await this.t.json<{ templates: TemplateInfo[] }>({ method: 'GET', path: '/api/v1/templates', idempotent: true })).templates;
  }
  get(name: string, version?: number): Promise<Template> {
    return this.t.json({ method: 'GET', path: `/api/v1/templates/${seg(name)}`, query: { version }, idempotent: true });
  }
  versions(name: string): Promise<TemplateVersions> {
    return this.t.json({ method: 'GET', path: `/api/v1/templates/${seg(name)}/versions`, idempotent: true });
  }
  /** Creates the next version, unless the body equals the latest (`created: false`). */
  put(name: string, body: TemplateBody): Promise<TemplateStored> {
    return this.t.json({ method: 'PUT', path: `/api/v1/templates/${seg(name)}`, json: body, idempotent: true });
  }
  async delete(name: string): Promise<void> {
    await this.t.send({ method: 'DELETE', path: `/api/v1/templates/${seg(name)}`, idempotent: true });
  }
  /** Runs the template (the latest version unless `version`): params checked against its schema, its flow submitted. */
  run(name: string, params: Record<string, unknown> = {}, options: { version?: number; idempotencyKey?: string } = {}): Promise<TemplateRun> {
    return this.t.json({
      method: 'POST',
      path: `/api/v1/templates/${seg(name)}/runs`,
      json: { params, ...(options.version !== undefined && { version: options.version }) },
      headers: { 'idempotency-key': options.idempotencyKey ?? this.newKey() },
      idempotent: true,
    });
  }
}

/** Flows or template runs started on a cron schedule. */
export class Schedules {
  constructor(private readonly t: Transport) {}
  create(body: ScheduleBody): Promise<ScheduleView> {
    return this.t.json({ method: 'POST', path: '/api/v1/schedules', json: body, idempotent: false });
  }
  async list(): Promise<ScheduleView[]> {
    return (await this.t.json<{ schedules: ScheduleView[] }>({ method: 'GET', path: '/api/v1/schedules', idempotent: true })).schedules;
  }
  get(id: string): Promise<ScheduleView> {
    return this.t.json({ method: 'GET', path: `/api/v1/schedules/${seg(id)}`, idempotent: true });
  }
  /** Changes some fields; `{ enabled: false }` pauses, `{ enabled: true }` resumes. */
  update(id: string, changes: Partial<ScheduleBody>): Promise<ScheduleView> {
    return this.t.json({ method: 'PUT', path: `/api/v1/schedules/${seg(id)}`, json: changes, idempotent: true });
  }
  async delete(id: string): Promise<void> {
    await this.t.send({ method: 'DELETE', path: `/api/v1/schedules/${seg(id)}`, idempotent: true });
  }
}

/** Secrets by name (admin scope): values go in, never come out. */
export class Secrets {
  constructor(private readonly t: Transport) {}
  /** Names and when each was last set. */
  async list(): Promise<SecretInfo[]> {
    return (await this.t.json<{ secrets: SecretInfo[] }>({ method: 'GET', path: '/api/v1/secrets', idempotent: true })).secrets;
  }
  set(name: string, value: string): Promise<SecretInfo> {
    return this.t.json({ method: 'PUT', path: `/api/v1/secrets/${seg(name)}`, json: { value }, idempotent: true });
  }
  async delete(name: string): Promise<void> {
    await this.t.send({ method: 'DELETE', path: `/api/v1/secrets/${seg(name)}`, idempotent: true });
  }
}

/** Messages set aside because they could not be processed (admin scope). */
export class DeadLetters {
  constructor(private readonly t: Transport) {}
  async list(filters: { source?: string; after?: number; limit?: number } = {}): Promise<DeadLetter[]> {
    return (await this.t.json<{ letters: DeadLetter[] }>({ method: 'GET', path: '/api/v1/dlq', query: filters, idempotent: true })).letters;
  }
  get(seq: number): Promise<DeadLetter> {
    return this.t.json({ method: 'GET', path: `/api/v1/dlq/${seq}`, idempotent: true });
  }
  /** Republishes a work item to its subject and removes the letter. */
  retry(seq: number): Promise<{ republished_to: string; seq: number }> {
    return this.t.json({ method: 'POST', path: `/api/v1/dlq/${seq}/retry`, idempotent: false });
  }
  async discard(seq: number): Promise<void> {
    await this.t.send({ method: 'DELETE', path: `/api/v1/dlq/${seq}`, idempotent: true });
  }
}

/** Files a flow's shell steps stored. */
export class Artifacts {
  constructor(private readonly t: Transport) {}
  async list(flowId: string, task?: string): Promise<ArtifactInfo[]> {
    return (await this.t.json<{ artifacts: ArtifactInfo[] }>({ method: 'GET', path: `/api/v1/flows/${seg(flowId)}/artifacts`, query: { task }, idempotent: true })).artifacts;
  }
  /** The file's bytes and the SHA-256 the gateway gave (hex). */
  async get(flowId: string, name: string, task?: string): Promise<{ bytes: Uint8Array; sha256?: string; task?: string }> {
    const path = `/api/v1/flows/${seg(flowId)}/artifacts/${name.split('/').map(seg).join('/')}`;
    const response = await this.t.raw({ method: 'GET', path, query: { task }, idempotent: true });
    const etag = response.headers.get('etag')?.replace(/"/g, '');
    const by = response.headers.get('taskstream-task');
    return { bytes: new Uint8Array(await response.arrayBuffer()), ...(etag && { sha256: etag }), ...(by && { task: by }) };
  }
}

/** API keys (admin scope). */
export class Keys {
  constructor(private readonly t: Transport) {}
  /** Creates a key; its text is in the answer (`key`), this once only. */
  create(body: { name: string; scope: ApiKeyScope; expires_in?: string }): Promise<CreatedKey> {
    return this.t.json({ method: 'POST', path: '/api/v1/keys', json: body, idempotent: false });
  }
  async list(): Promise<ApiKeyInfo[]> {
    return (await this.t.json<{ keys: ApiKeyInfo[] }>({ method: 'GET', path: '/api/v1/keys', idempotent: true })).keys;
  }
  async revoke(id: string): Promise<void> {
    await this.t.send({ method: 'DELETE', path: `/api/v1/keys/${seg(id)}`, idempotent: true });
  }
}

/** Webhook triggers: a verified delivery runs a template (docs/triggers.md). */
export class Triggers {
  constructor(private readonly t: Transport) {}
  async list(): Promise<Array<Record<string, unknown>>> {
    return (await this.t.json<{ triggers: Array<Record<string, unknown>> }>({ method: 'GET', path: '/api/v1/triggers', idempotent: true })).triggers;
  }
  get(name: string): Promise<Record<string, unknown>> {
    return this.t.json({ method: 'GET', path: `/api/v1/triggers/${seg(name)}`, idempotent: true });
  }
  put(name: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
    return this.t.json({ method: 'PUT', path: `/api/v1/triggers/${seg(name)}`, json: body, idempotent: true });
  }
  async delete(name: string): Promise<void> {
    await this.t.send({ method: 'DELETE', path: `/api/v1/triggers/${seg(name)}`, idempotent: true });
  }
}
