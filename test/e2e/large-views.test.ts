import {
  EVENT_VERSION,
  MAX_VIEW_BYTES,
  PAGED_VIEW_TASKS,
  TASK_PAGE_SIZE,
  evolve,
  pageCount,
  pageOf,
  toFlowView,
  toFlowViewHeader,
  toStoredTaskView,
  validateFlow,
  type FlowDefinition,
  type FlowEvent,
  type FlowState,
  type FlowView,
  type TaskError,
} from '@taskstream/domain';
import { DeliverPolicy, EventLog, FlowViewStore, Kvm, newId, readFlowHistory, silentLogger, taskPageKey, taskViewKey, type KV } from '@taskstream/nats';
import { startProjector } from '@taskstream/projector';
import { createContext, type ServiceContext, type ServiceHandle } from '@taskstream/runtime';
import { NatsServer, waitFor } from '@taskstream/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** Tasks of the large flow: its whole view is about 1 MiB, past what one key may hold. */
const BIG = 2_000;

/**
 * The projector alone against its own nats-server, fed histories written here event by event, so
 * each test decides exactly which tasks change and when.
 */
describe('large views: stored paged, served whole, never regressed by a replay', () => {
  let nats: NatsServer;
  let ctx: ServiceContext;
  let views: KV;
  let log: EventLog;
  let projector: { handle: ServiceHandle; ctx: ServiceContext } | undefined;
  let clock = Date.UTC(2026, 0, 1);
  /** Every flow stored so far, by id. */
  const flows = new Map<string, FlowDefinition>();

  const startProjectorHere = async (rebuild = false) => {
    const own = await createContext({ natsUrl: nats.url, name: `projector-${newId().slice(-6)}`, log: silentLogger });
    return { handle: await startProjector(own, { rebuild }), ctx: own };
  };
  const stopProjector = async () => {
    await projector?.handle.stop();
    await projector?.ctx.nc.close();
    projector = undefined;
  };

  function event(flowId: string, type: FlowEvent['type'], data: object, scope: object = {}): FlowEvent {
    clock += 10;
    return { id: newId(clock), type, version: EVENT_VERSION, flow_id: flowId, ...scope, time: new Date(clock).toISOString(), data } as FlowEvent;
  }

  function definitionOf(tasks: Array<{ id: string }>): FlowDefinition {
    const result = validateFlow({ tasks: tasks.map((t) => ({ executor: 'noop', ...t })) });
    if (!result.ok) throw new Error(JSON.stringify(result.problems));
    return result.flow;
  }

  /** Events of a task from ready to running, in attempt 1. */
  function run(flowId: string, definition: FlowDefinition, taskId: string): FlowEvent[] {
    const spec = definition.tasks.find((t) => t.id === taskId)!;
    return [
      event(flowId, 'task.ready', { queue: spec.queue, priority: spec.priority, spec }, { task_id: taskId }),
      event(flowId, 'task.dispatched', { queue: spec.queue }, { task_id: taskId }),
      event(flowId, 'task.started', { executor_id: 'executor-1' }, { task_id: taskId, attempt: 1 }),
    ];
  }

  async function append(events: FlowEvent[]): Promise<number> {
    const acks = await log.appendAll(events.map((e) => ({ event: e, msgID: e.id })));
    return acks.at(-1)!.seq;
  }

  /** Waits until the stored view (or header) of `flowId` has folded the log through `seq`. */
  async function projected(flowId: string, seq: number): Promise<FlowView> {
    return waitFor(`the view of ${flowId} to reach ${seq}`, async () => {
      const entry = await views.get(flowId);
      const view = entry && entry.value.length > 0 ? entry.json<FlowView>() : undefined;
      return view && view.last_seq >= seq ? view : undefined;
    }, 60_000);
  }

  /** What a fold of the log gives: the oracle every stored view is held to. */
  async function folded(flowId: string): Promise<FlowView> {
    let state: FlowState | null = null;
    for (const stored of await readFlowHistory(ctx.js, ctx.topo, flowId)) state = evolve(state, stored.event, stored.seq);
    return toFlowView(state!);
  }

  /** Stream sequence (revision) of every key of `bucket` matching `filter`, deletions included. */
  async function revisions(bucket: string, filter = '>'): Promise<Map<string, number>> {
    const consumer = await ctx.js.consumers.get(`KV_${bucket}`, { filter_subjects: `$KV.${bucket}.${filter}`, deliver_policy: DeliverPolicy.LastPerSubject, headers_only: true });
    const out = new Map<string, number>();
    if ((await consumer.info()).num_pending === 0) return out;
    const messages = await consumer.consume({ max_messages: 1000 });
    for await (const msg of messages) {
      out.set(msg.subject.slice(`$KV.${bucket}.`.length), msg.seq);
      if (msg.info.pending === 0) break;
    }
    await messages.close();
    return out;
  }

  // The reader the gateway serves flows with.
  const read = (flowId: string) => new FlowViewStore(ctx.js, views, ctx.topo.flowsBucket).read(flowId);

  beforeAll(async () => {
    nats = await NatsServer.start();
    ctx = await createContext({ natsUrl: nats.url, name: 'large-views', log: silentLogger });
    views = await new Kvm(ctx.js).open(ctx.topo.flowsBucket);
    log = new EventLog(ctx.js, ctx.topo);
    projector = await startProjectorHere();
  });
  afterAll(async () => {
    await stopProjector();
    await ctx?.nc.close();
    await nats?.stop();
  });

  it('serves a flow too large for one key whole and in definition order, rewriting only the pages an update touches, after a restart too', async () => {
    // Tasks with 100-character ids, and a last one kept running to be finished later.
    const ids = Array.from({ length: BIG - 1 }, (_, i) => `n${String(i).padStart(4, '0')}-${'x'.repeat(94)}`);
    const definition = definitionOf([...ids.map((id) => ({ id })), { id: 'gate' }]);
    const flowId = newId();
    flows.set(flowId, definition);
    const history = [event(flowId, 'flow.submitted', { definition }), event(flowId, 'flow.started', {})];
    for (const id of ids) history.push(...run(flowId, definition, id), event(flowId, 'task.succeeded', { duration_ms: 1 }, { task_id: id, attempt: 1 }));
    history.push(...run(flowId, definition, 'gate'));
    const running = await projected(flowId, await append(history));

    expect(running).toMatchObject({ tasks_paged: true, tasks: [], total: BIG, status: 'running' });
    const expected = await folded(flowId);
    expect(new TextEncoder().encode(JSON.stringify(expected)).length).toBeGreaterThan(MAX_VIEW_BYTES);
    const served = await read(flowId);
    expect(served).toEqual(expected);
    expect(served!.tasks.map((t) => t.id)).toEqual(definition.tasks.map((t) => t.id));
    expect(served).not.toHaveProperty('tasks_paged');
    expect(served).not.toHaveProperty('tasks_omitted');

    /** Appends `events` and returns the pages the projector rewrote for them; the header is rewritten every time. */
    const update = async (events: FlowEvent[]) => {
      const before = await revisions(ctx.topo.flowsBucket, `${flowId}.p.>`);
      const header = (await views.get(flowId))!.revision;
      await projected(flowId, await append(events));
      const after = await revisions(ctx.topo.flowsBucket, `${flowId}.p.>`);
      expect(after.size).toBe(pageCount(BIG));
      expect((await views.get(flowId))!.revision).toBeGreaterThan(header);
      return [...after].filter(([key, revision]) => before.get(key) !== revision).map(([key]) => key);
    };
    expect(await update([event(flowId, 'task.succeeded', { duration_ms: 1 }, { task_id: 'gate', attempt: 1 })])).toEqual([taskPageKey(flowId, pageOf(BIG - 1))]);
    // A restarted projector takes the flow back from the log and finds the stored view exactly as
    // far: nothing but the header changes for an event that touches no task.
    await stopProjector();
    projector = await startProjectorHere();
    expect(await update([event(flowId, 'flow.succeeded', { succeeded: BIG, total: BIG })])).toEqual([]);

    const done = await read(flowId);
    expect(done).toEqual(await folded(flowId));
    expect(done!.status).toBe('succeeded');
    expect(done!.counts.succeeded).toBe(BIG);
  }, 120_000);

  it(`pages a flow of fewer than ${PAGED_VIEW_TASKS} tasks once its errors no longer fit one key`, async () => {
    const definition = definitionOf(Array.from({ length: 120 }, (_, i) => ({ id: `h${i}` })));
    const flowId = newId();
    flows.set(flowId, definition);
    const submitted = await projected(flowId, await append([event(flowId, 'flow.submitted', { definition }), event(flowId, 'flow.started', {})]));
    expect(submitted.tasks).toHaveLength(120);
    expect(submitted).not.toHaveProperty('tasks_paged');

    const error: TaskError = { message: `command exited with code 1: ${'m'.repeat(3_000)}`, code: 'EXIT_CODE', retryable: true, exit_code: 1, stdout_tail: 'o'.repeat(3_000), stderr_tail: 'e'.repeat(3_000) };
    const history: FlowEvent[] = [];
    for (const { id } of definition.tasks) {
      history.push(
        ...run(flowId, definition, id),
        event(flowId, 'task.attempt_failed', { error, duration_ms: 1 }, { task_id: id, attempt: 1 }),
        event(flowId, 'task.started', { executor_id: 'executor-1' }, { task_id: id, attempt: 2 }),
        event(flowId, 'task.failed', { error, duration_ms: 1 }, { task_id: id, attempt: 2 }),
      );
    }
    const failed = definition.tasks.map((t) => t.id);
    history.push(event(flowId, 'flow.failed', { failed_tasks: failed, skipped_tasks: [], succeeded: 0, total: 120, reason: `120 tasks failed: ${failed.join(', ')}` }));
    const header = await projected(flowId, await append(history));

    expect(header).toMatchObject({ tasks_paged: true, tasks: [], status: 'failed' });
    const served = await read(flowId);
    expect(served).toEqual(await folded(flowId));
    expect(served!.tasks[7]!.attempts_total).toBe(2);
    expect(served!.tasks[7]!.error!.message).toContain('more characters in the events');
    expect((await revisions(ctx.topo.flowsBucket, `${flowId}.p.>`)).size).toBe(pageCount(120));
  });

  it('keeps a small flow under one key', async () => {
    const definition = definitionOf([{ id: 'a' }, { id: 'b' }]);
    const flowId = newId();
    flows.set(flowId, definition);
    const history = [event(flowId, 'flow.submitted', { definition }), event(flowId, 'flow.started', {})];
    for (const { id } of definition.tasks) history.push(...run(flowId, definition, id), event(flowId, 'task.succeeded', { duration_ms: 1 }, { task_id: id, attempt: 1 }));
    history.push(event(flowId, 'flow.succeeded', { succeeded: 2, total: 2 }));
    const stored = await projected(flowId, await append(history));
    expect(stored).toEqual(await folded(flowId));
    expect(await read(flowId)).toEqual(stored);
    expect([...(await revisions(ctx.topo.flowsBucket, `${flowId}.>`)).keys()]).toEqual([]);
  });

  it('replaying every event from sequence 1 rewrites no view and changes no statistic', async () => {
    // Queue statistics are the sum of the summaries' loads: unchanged summaries, unchanged statistics.
    const summaries = await new Kvm(ctx.js).open(ctx.topo.summariesBucket);
    const loads = async () => Object.fromEntries(await Promise.all([...(await revisions(ctx.topo.summariesBucket)).keys()].map(async (key) => [key, (await summaries.get(key))!.json<{ load?: unknown }>().load])));
    const viewsBefore = await revisions(ctx.topo.flowsBucket);
    const summariesBefore = await revisions(ctx.topo.summariesBucket);
    const loadsBefore = await loads();
    expect(Object.values(loadsBefore).some((load) => load !== undefined)).toBe(true);

    // A fresh projector with its consumers recreated from the start of the log: every flow it
    // meets is finished and out of memory, and its flow.submitted comes first, delivered once.
    await stopProjector();
    for (let p = 0; p < ctx.topo.layout.partitions; p++) await ctx.jsm.consumers.delete(ctx.topo.eventsStream, `projector-p${p}`);
    projector = await startProjectorHere();
    const lastSeq = (await ctx.jsm.streams.info(ctx.topo.eventsStream)).state.last_seq;
    await waitFor('every consumer to have read and acknowledged the whole log again', async () => {
      const infos = await Promise.all(Array.from({ length: ctx.topo.layout.partitions }, (_, p) => ctx.jsm.consumers.info(ctx.topo.eventsStream, `projector-p${p}`).catch(() => undefined)));
      const done = infos.every((info) => info && info.num_pending === 0 && info.num_ack_pending === 0);
      return done && infos.some((info) => info!.delivered.stream_seq === lastSeq) ? true : undefined;
    }, 60_000);

    expect(await revisions(ctx.topo.flowsBucket)).toEqual(viewsBefore);
    expect(await revisions(ctx.topo.summariesBucket)).toEqual(summariesBefore);
    expect(await loads()).toEqual(loadsBefore);
  }, 120_000);

  it('a rebuild stores the same keys and views, and the views are served without the log', async () => {
    const served = new Map<string, FlowView | null>();
    for (const id of flows.keys()) served.set(id, await read(id));
    const liveKeys = async () => {
      const keys: string[] = [];
      for await (const key of await views.keys()) keys.push(key);
      return keys.sort();
    };
    const before = await liveKeys();
    expect(before.filter((key) => !key.includes('.'))).toHaveLength(flows.size);
    expect(before.filter((key) => key.includes('.p.'))).toHaveLength(pageCount(BIG) + pageCount(120));

    await stopProjector();
    projector = await startProjectorHere(true);
    expect(await liveKeys()).toEqual(before);
    for (const id of flows.keys()) expect(await read(id)).toEqual(served.get(id));

    // Nothing is folded on read: with the log emptied, every view is still served whole.
    await stopProjector();
    await ctx.jsm.streams.purge(ctx.topo.eventsStream);
    for (const [id, definition] of flows) {
      expect(await readFlowHistory(ctx.js, ctx.topo, id)).toEqual([]);
      const view = await read(id);
      expect(view).toEqual(served.get(id));
      expect(view!.tasks.map((t) => t.id)).toEqual(definition.tasks.map((t) => t.id));
    }
  }, 120_000);

  it('serves a view paged before pages existed, one key per task, and stores it in pages at its next event', async () => {
    await stopProjector();
    const definition = definitionOf(Array.from({ length: PAGED_VIEW_TASKS + 10 }, (_, i) => ({ id: `old${i}` })));
    const flowId = newId();
    const history = [event(flowId, 'flow.submitted', { definition }), event(flowId, 'flow.started', {}), ...run(flowId, definition, 'old3')];
    await append(history);
    let state: FlowState | null = null;
    for (const stored of await readFlowHistory(ctx.js, ctx.topo, flowId)) state = evolve(state, stored.event, stored.seq);
    // What a projector of before pages stored: the header without a page size, a key per task.
    const { task_page_size: _size, ...oldHeader } = toFlowViewHeader(state!);
    for (let index = 0; index < definition.tasks.length; index++) await views.put(taskViewKey(flowId, definition.tasks[index]!.id), JSON.stringify(toStoredTaskView(state!, index)));
    await views.put(flowId, JSON.stringify(oldHeader));
    expect(await read(flowId)).toEqual(await folded(flowId));

    projector = await startProjectorHere();
    const seq = await append([event(flowId, 'task.succeeded', { duration_ms: 1 }, { task_id: 'old3', attempt: 1 })]);
    const header = await projected(flowId, seq);
    expect(header.task_page_size).toBe(TASK_PAGE_SIZE);
    expect((await revisions(ctx.topo.flowsBucket, `${flowId}.p.>`)).size).toBe(pageCount(definition.tasks.length));
    const served = await read(flowId);
    expect(served).toEqual(await folded(flowId));
    expect(served!.tasks[3]!.status).toBe('succeeded');
    // The keys of before pages are gone: a reader older than pages cannot serve them as the view.
    const taskKeys: string[] = [];
    for await (const key of await views.keys(`${flowId}.t.>`)) taskKeys.push(key);
    expect(taskKeys).toEqual([]);
  }, 60_000);
});
