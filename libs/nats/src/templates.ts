import type { JetStreamClient } from '@nats-io/jetstream';
import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import { MAX_TEMPLATE_VERSIONS, MAX_TEMPLATES, sameDefinition, StoredTemplate, TemplateName, TEMPLATE_NAME_RULE, type TemplateBody, type TemplateVersionInfo } from '@taskstream/domain';
import { z } from 'zod';
import { encodeJson } from './codec.js';
import { decodeRecord, type Layout } from './records.js';
import type { Topology } from './topology.js';

/**
 * The templates bucket (`<prefix>_templates`): each version of a template is one immutable key,
 * `<name>.v.<version>`, created once (never overwritten); `<name>.head` says which version is the
 * latest and counts versions, so a deleted template's name continues its numbering and a version
 * number always means one definition. The only module that reads or writes it.
 */
export const TEMPLATES_LAYOUT: Layout = {
  bucket: (topo) => topo.templatesBucket,
  kind: 'KV',
  keys: '`<name>.v.<version>` → one immutable version `{name, version, flow, params_schema, description?, created_at}`; `<name>.head`',
  value: '`{version, description?, created_at, updated_at, deleted?}`',
  writers: ['gateway'],
  readers: ['gateway'],
};

/** The head of a template: its latest version, also kept after a delete so numbering goes on. */
const Head = z.object({
  version: z.number().int().min(1),
  description: z.string().optional(),
  created_at: z.iso.datetime(),
  updated_at: z.iso.datetime(),
  deleted: z.literal(true).optional(),
});
type Head = z.infer<typeof Head>;

/** A template in a list: its latest version, without the flow and the schema. */
export interface TemplateInfo {
  name: string;
  version: number;
  description?: string;
  created_at: string;
  updated_at: string;
}

/** Too many requests changed one template at once for a compare-and-set to win; worth retrying. */
export class TemplateContentionError extends Error {
  constructor(readonly template: string) {
    super(`template "${template}" is being changed by many requests at once; try again`);
    this.name = 'TemplateContentionError';
  }
}

/** Refused because the installation already has MAX_TEMPLATES templates. */
export class TooManyTemplatesError extends Error {
  constructor(readonly limit: number) {
    super(`there are already ${limit} templates, the most one installation keeps; delete templates no longer used`);
    this.name = 'TooManyTemplatesError';
  }
}

const headKey = (name: string) => `${name}.head`;
const versionKey = (name: string, version: number) => `${name}.v.${version}`;
const isLive = (entry: KvEntry | null): entry is KvEntry => entry !== null && entry.operation === 'PUT' && entry.value.length > 0;
const ATTEMPTS = 20;

function checkName(name: string): void {
  if (!TemplateName.safeParse(name).success) throw new Error(`invalid template name ${JSON.stringify(name.slice(0, 70))}: a template name is ${TEMPLATE_NAME_RULE}`);
}

export class TemplateStore {
  constructor(
    private readonly kv: KV,
    private readonly bucket: string,
  ) {}

  static async open(js: JetStreamClient, topo: Topology): Promise<TemplateStore> {
    return new TemplateStore(await new Kvm(js).open(topo.templatesBucket), topo.templatesBucket);
  }

  /**
   * Stores `body` as the next version of `name`, or, when it defines the same template as the
   * latest version, nothing (`created: false`, the latest returned). Versions are created with
   * `create` (never overwritten), the head advanced by compare-and-set: of two racing PUTs each gets
   * its own version. The body must have been validated (validateTemplate).
   */
  async put(name: string, body: TemplateBody, now: Date = new Date()): Promise<{ template: StoredTemplate; created: boolean }> {
    checkName(name);
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const head = await this.head(name);
      if (head && !head.value.deleted) {
        const latest = await this.get(name, head.value.version);
        if (latest && sameDefinition(body, latest)) return { template: latest, created: false };
      }
      if (!head || head.value.deleted) await this.checkRoom();
      const version = (head?.value.version ?? 0) + 1;
      const template: StoredTemplate = {
        name,
        version,
        flow: body.flow,
        params_schema: body.params_schema,
        ...(body.description !== undefined && { description: body.description }),
        created_at: now.toISOString(),
      };
      try {
        await this.kv.create(versionKey(name, version), encodeJson(template));
      } catch (error) {
        // Another PUT took this version (or one was left behind by a crash): move the head to it and look again.
        if (!(await this.kv.get(versionKey(name, version)))) throw error;
        await this.advance(name, version, now);
        continue;
      }
      const created = head && !head.value.deleted ? head.value.created_at : template.created_at;
      await this.advance(name, version, now, { description: body.description, created_at: created });
      await this.prune(name, version);
      return { template, created: true };
    }
    throw new TemplateContentionError(name);
  }

  /** The latest version, or undefined when there is no such template. */
  async latest(name: string): Promise<StoredTemplate | undefined> {
    checkName(name);
    const head = await this.head(name);
    if (!head || head.value.deleted) return undefined;
    return this.get(name, head.value.version);
  }

  /** One version, or undefined when it does not exist (never did, was removed, or its template was deleted). */
  async get(name: string, version: number): Promise<StoredTemplate | undefined> {
    checkName(name);
    if (!Number.isSafeInteger(version) || version < 1) return undefined;
    const key = versionKey(name, version);
    const entry = await this.kv.get(key);
    return isLive(entry) ? decodeRecord(StoredTemplate, this.bucket, key, entry.value) : undefined;
  }

  /** A version when given, else the latest: what a run of `name` (at `version`) uses. */
  async resolve(name: string, version?: number): Promise<StoredTemplate | undefined> {
    return version === undefined ? this.latest(name) : this.get(name, version);
  }

  /** The versions kept (at most MAX_TEMPLATE_VERSIONS), newest first, without their flows; empty when there is no such template. */
  async versions(name: string): Promise<TemplateVersionInfo[]> {
    checkName(name);
    const head = await this.head(name);
    if (!head || head.value.deleted) return [];
    const numbers: number[] = [];
    for await (const key of await this.kv.keys(`${name}.v.*`)) {
      const n = Number(key.slice(name.length + 3));
      if (Number.isSafeInteger(n)) numbers.push(n);
    }
    numbers.sort((a, b) => b - a);
    const out: TemplateVersionInfo[] = [];
    for (const n of numbers.slice(0, MAX_TEMPLATE_VERSIONS)) {
      const t = await this.get(name, n);
      if (t) out.push({ name, version: t.version, created_at: t.created_at, ...(t.description !== undefined && { description: t.description }) });
    }
    return out;
  }

  /** Every template's latest version, by name (at most MAX_TEMPLATES). */
  async list(): Promise<TemplateInfo[]> {
    const out: TemplateInfo[] = [];
    for (const name of await this.names()) {
      const head = await this.head(name);
      if (!head || head.value.deleted) continue;
      const { version, description, created_at, updated_at } = head.value;
      out.push({ name, version, ...(description !== undefined && { description }), created_at, updated_at });
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Deletes a template and every version of it; false when there was none. Its name may be used again, numbering on. */
  async delete(name: string, now: Date = new Date()): Promise<boolean> {
    checkName(name);
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const head = await this.head(name);
      if (!head || head.value.deleted) return false;
      try {
        await this.kv.update(headKey(name), encodeJson({ ...head.value, deleted: true, updated_at: now.toISOString() } satisfies Head), head.revision);
      } catch (error) {
        if (!isWrongLastSequence(error)) throw error;
        continue;
      }
      for await (const key of await this.kv.keys(`${name}.v.*`)) await this.kv.purge(key);
      return true;
    }
    throw new TemplateContentionError(name);
  }

  private async head(name: string): Promise<{ value: Head; revision: number } | undefined> {
    const key = headKey(name);
    const entry = await this.kv.get(key);
    return isLive(entry) ? { value: decodeRecord(Head, this.bucket, key, entry.value), revision: entry.revision } : undefined;
  }

  private async names(): Promise<string[]> {
    const names: string[] = [];
    for await (const key of await this.kv.keys('*.head')) names.push(key.slice(0, -'.head'.length));
    return names;
  }

  private async checkRoom(): Promise<void> {
    let live = 0;
    for (const name of await this.names()) if ((await this.head(name))?.value.deleted !== true) live++;
    if (live >= MAX_TEMPLATES) throw new TooManyTemplatesError(MAX_TEMPLATES);
  }

  /** Moves the head to `version` unless it is already there or beyond (compare-and-set). */
  private async advance(name: string, version: number, now: Date, fields?: { description: string | undefined; created_at: string }): Promise<void> {
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const head = await this.head(name);
      if (head && head.value.version >= version && !(head.value.version === version && head.value.deleted)) return;
      const description = fields ? fields.description : (await this.get(name, version))?.description;
      const value: Head = {
        version,
        ...(description !== undefined && { description }),
        created_at: fields?.created_at ?? (head && !head.value.deleted ? head.value.created_at : now.toISOString()),
        updated_at: now.toISOString(),
      };
      try {
        if (head) await this.kv.update(headKey(name), encodeJson(value), head.revision);
        else await this.kv.create(headKey(name), encodeJson(value));
        return;
      } catch (error) {
        if (!isWrongLastSequence(error) && !/exists/i.test((error as Error).message ?? '')) throw error;
      }
    }
    throw new TemplateContentionError(name);
  }

  /** Removes the versions that fell out of the last MAX_TEMPLATE_VERSIONS. */
  private async prune(name: string, latest: number): Promise<void> {
    const oldest = latest - MAX_TEMPLATE_VERSIONS;
    if (oldest < 1) return;
    const entry = await this.kv.get(versionKey(name, oldest));
    if (isLive(entry)) await this.kv.purge(versionKey(name, oldest));
  }
}

function isWrongLastSequence(error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: string };
  return code === 10071 || /wrong last sequence/i.test(message ?? '');
}
