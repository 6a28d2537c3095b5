import { DeliverPolicy, type JetStreamClient } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { assemblePagedView, taskKeyToken, tasksFromPages, type FlowView, type StoredTaskPage, type StoredTaskView } from '@taskstream/domain';
import { z } from 'zod';
import { decodeRecord, type Layout } from './records.js';
import { readStored } from './stored-read.js';

/**
 * The flow views bucket (`<prefix>_flows`): the one module that knows its keys and records. A
 * flow's view is stored whole under `<flow_id>`, or paged: a header there (`tasks_paged`,
 * `task_page_size`), the tasks in `{first, tasks}` pages under `<flow_id>.p.<page>`, and a task
 * too large for its page as an `{index, task}` record under `<flow_id>.t.<task token>` (headers
 * without `task_page_size`, written before pages, have every task under such a key).
 */
export const FLOW_VIEWS_LAYOUT: Layout = {
  bucket: (topo) => topo.flowsBucket,
  kind: 'KV',
  keys: '`<flow_id>` → flow view JSON',
  value: '`<flow_id>.p.<page>` → `{first, tasks}`',
  writers: ['projector'],
  readers: ['gateway'],
};

const StoredView = z.looseObject({
  flow_id: z.string(),
  status: z.string(),
  last_seq: z.number().int().min(0),
  tasks: z.array(z.unknown()),
  tasks_paged: z.literal(true).optional(),
  task_page_size: z.number().int().min(1).optional(),
  tasks_omitted: z.literal(true).optional(),
});
const StoredTaskOfView = z.looseObject({ id: z.string(), status: z.string() });
const StoredTask = z.object({ index: z.number().int().min(0), task: StoredTaskOfView });
const StoredPage = z.object({ first: z.number().int().min(0), tasks: z.array(StoredTaskOfView.nullable()) });

export function flowViewKey(flowId: string): string {
  return flowId;
}

export function taskViewKey(flowId: string, taskId: string): string {
  return `${flowId}.t.${taskKeyToken(taskId)}`;
}

function pageKeyPrefix(flowId: string): string {
  return `${flowId}.p.`;
}

export function taskPageKey(flowId: string, page: number): string {
  return `${pageKeyPrefix(flowId)}${page}`;
}

/** A key filter matching every page and task record of a paged view of `flowId`. */
function pagedViewKeys(flowId: string): string {
  return `${flowId}.>`;
}

/** One stored value of a view. */
export interface ViewRecord {
  key: string;
  bytes: Uint8Array;
}

/**
 * One flow's view as key-value writes: the whole view or a paged header, the pages and the tasks
 * stored on their own that it renews, and keys to delete.
 */
export interface ViewWrite {
  flowId: string;
  paged: boolean;
  header: Uint8Array;
  /** Tasks too large for their page, written before the pages that leave their places empty. */
  ownTasks: ViewRecord[];
  pages: ViewRecord[];
  deletes: string[];
}

/** What the projector reads of a stored view before taking its flow into memory. */
export interface StoredHeader {
  last_seq: number;
  tasks_paged?: true;
  task_page_size?: number;
}

/**
 * Reads of a paged view whose tasks do not match its header: one happens when the projector
 * changes the view's layout between reading the header and reading the tasks, and the next read
 * finds the new header. A read of the tasks that stalls is tried again too.
 */
const READS = 3;
/** Writes in flight at once: a view with many tasks stored on their own writes many keys. */
const IN_FLIGHT = 1_000;

export class FlowViewStore {
  constructor(
    private readonly js: JetStreamClient,
    private readonly kv: KV,
    private readonly bucket: string,
  ) {}

  /**
   * The view of `flowId`, whatever its size, its tasks in definition order. Null when there is no
   * view to serve (not projected yet, being rebuilt, or stored without its tasks by an older
   * projector): the caller folds the flow from its log.
   */
  async read(flowId: string): Promise<FlowView | null> {
    for (let read = 0; read < READS; read++) {
      const view = await this.stored(flowId);
      if (view === undefined) return null;
      if (!view.tasks_paged) return view.tasks_omitted ? null : view;
      const tasks = await this.readTasks(flowId, view.task_page_size !== undefined);
      const whole = tasks && assemblePagedView(view, tasks);
      if (whole) return whole;
    }
    return null;
  }

  /** The stored view's sequence and layout, if there is one. */
  async header(flowId: string): Promise<StoredHeader | undefined> {
    const view = await this.stored(flowId);
    return view && { last_seq: view.last_seq, ...(view.tasks_paged && { tasks_paged: true as const }), ...(view.task_page_size !== undefined && { task_page_size: view.task_page_size }) };
  }

  private async stored(flowId: string): Promise<FlowView | undefined> {
    const key = flowViewKey(flowId);
    const entry = await this.kv.get(key);
    if (!entry || entry.operation !== 'PUT' || entry.value.length === 0) return undefined;
    return decodeRecord(StoredView, this.bucket, key, entry.value) as unknown as FlowView;
  }

  /**
   * Every task of a paged view as it stands, through one ordered consumer on the bucket's stream:
   * the last message of each key, then any written meanwhile, until none is pending. A key written
   * again during the read is delivered again, and its last delivery wins. From pages when the
   * header says so, else from the key of each task; null when the pages miss a task.
   */
  private async readTasks(flowId: string, inPages: boolean): Promise<StoredTaskView[] | null | undefined> {
    const filter = `$KV.${this.bucket}.${pagedViewKeys(flowId)}`;
    const consumer = await this.js.consumers.get(`KV_${this.bucket}`, { filter_subjects: filter, deliver_policy: DeliverPolicy.LastPerSubject });
    const pageSubjects = `$KV.${this.bucket}.${pageKeyPrefix(flowId)}`;
    const pages = new Map<string, StoredTaskPage>();
    const ownKeys = new Map<string, StoredTaskView>();
    const end = await readStored(consumer, (msg) => {
      const isPage = msg.subject.startsWith(pageSubjects);
      const records: Map<string, unknown> = isPage ? pages : ownKeys;
      // Deletes and purges carry their operation in a header; a put carries none.
      if (msg.headers?.get('KV-Operation')) records.delete(msg.subject);
      else records.set(msg.subject, decodeRecord(isPage ? StoredPage : StoredTask, this.bucket, msg.subject, msg.data));
    });
    if (end === 'stalled') return undefined;
    if (!inPages) return [...ownKeys.values()];
    return tasksFromPages([...pages.values()], [...ownKeys.values()]);
  }

  /**
   * Stores `writes`: tasks stored on their own first, then the pages that point to them, so a
   * reader that finds a paged header finds every task it counts; then the headers (with `beside`,
   * written at the same time); then the keys of views no longer paged, once no header points to them.
   */
  async write(writes: ViewWrite[], beside: () => Array<Promise<unknown>> = () => []): Promise<void> {
    for (const records of [writes.flatMap((write) => write.ownTasks), writes.flatMap((write) => write.pages)]) {
      await eachLimited(records, ({ key, bytes }) => this.kv.put(key, bytes));
    }
    await Promise.all([...writes.map(({ flowId, header }) => this.kv.put(flowViewKey(flowId), header)), ...beside()]);
    await eachLimited(
      writes.flatMap((write) => write.deletes),
      (key) => this.kv.delete(key),
    );
  }

  /**
   * Removes the flow's view, whole or paged, leaving no record (nothing watches this bucket; a
   * read finds no view and the caller folds the log): for retention. A paged view's pages go
   * first and its header last, so a removal cut short is found again by the header (a read in
   * between finds the pages missing and folds the log, as for any view that does not add up).
   */
  async remove(flowId: string): Promise<void> {
    const jsm = await this.js.jetstreamManager();
    const stream = `KV_${this.bucket}`;
    // Only a paged view has keys under the flow's; a purge of those matches every key of the bucket.
    if ((await this.header(flowId))?.tasks_paged === true) await jsm.streams.purge(stream, { filter: `$KV.${this.bucket}.${pagedViewKeys(flowId)}` });
    await jsm.streams.purge(stream, { filter: `$KV.${this.bucket}.${flowViewKey(flowId)}` });
  }

  /** Removes every view (a rebuild starts from nothing). */
  async purgeAll(): Promise<void> {
    for await (const key of await this.kv.keys()) await this.kv.purge(key);
  }
}

async function eachLimited<T>(items: T[], run: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += IN_FLIGHT) await Promise.all(items.slice(i, i + IN_FLIGHT).map(run));
}
