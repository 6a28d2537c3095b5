import {
  eventSubject,
  MAX_TASKS_PER_FLOW,
  oversizedPart,
  RecentMap,
  lineageFrom,
  toFlowView,
  ULID_PATTERN,
  type FlowDefinition,
  type FlowOrigin,
  type FlowState,
  type FlowView,
  type EventType,
  type Lineage,
} from '@taskstream/domain';
import { EventLog, foldFlowHistory, newId, readFlowHistory, submitFlow, type FlowViewStore, type IdempotencyStore, type StoredEvent } from '@taskstream/nats';
import type { ServiceContext } from '@taskstream/runtime';
import { ApiError, apiError, ERRORS } from './errors.js';
import type { Queues } from './queues.js';
import { flowSubmitted } from './metrics.js';


export interface SubmitResult {
  flowId: string;
  replayed: boolean;
}

/** Flows whose last answered sequence a gateway keeps (about 100 bytes each). */
const ANSWERS_KEPT = 10_000;

/** Reads and writes flows through the log and the projector's views: the gateway's only state. */
export class Flows {
  private readonly log: EventLog;
  /** The last sequence `view` answered per flow, for the flows read most recently (ANSWERS_KEPT). */
  private readonly answered = new RecentMap<string, number>(ANSWERS_KEPT);

  constructor(
    private readonly ctx: ServiceContext,
    private readonly views: FlowViewStore,
    private readonly idempotency: IdempotencyStore,
    private readonly queues: Queues,
  ) {
    this.log = new EventLog(ctx.js, ctx.topo);
  }

  /**
   * Appends `flow.submitted`. With an idempotency key, the key is claimed in KV (compare-and-set)
   * before the event is appended, so a retried request returns the first flow; a retry after a crash
   * between the two steps appends the event it missed.
   */
  async submit(definition: FlowDefinition, idempotencyKey?: string, submittedBy?: string, lineage?: Lineage, origin?: FlowOrigin): Promise<SubmitResult> {
    this.checkSize(definition, lineage);
    let flowId = newId();
    let replayed = false;
    if (idempotencyKey !== undefined) {
      const claim = await this.idempotency.claim(idempotencyKey, flowId, JSON.stringify(definition));
      if (!claim.claimed) {
        if (!claim.sameBody) throw apiError('IDEMPOTENCY_KEY_REUSED', claim.existing.flow_id);
        flowId = claim.existing.flow_id;
        replayed = true;
        if ((await readFlowHistory(this.ctx.js, this.ctx.topo, flowId)).length > 0) return { flowId, replayed };
      }
    }
    // A flow may carry its queue's policy (as Tasked's MCP does): it replaces the queue's policy first.
    if (definition.queue_config !== undefined) await this.queues.put(definition.queue, definition.queue_config);
    await submitFlow(this.ctx.js, this.ctx.topo, {
      definition,
      flowId,
      ...(idempotencyKey !== undefined && { idempotencyKey }),
      ...(submittedBy !== undefined && { submittedBy }),
      ...(lineage !== undefined && { lineage }),
      ...(origin !== undefined && { origin }),
    });
    flowSubmitted(definition.queue);
    return { flowId, replayed };
  }

  /** Refuses a flow that the pipeline could not carry, before anything of it is stored. */
  private checkSize(definition: FlowDefinition, lineage?: Lineage): void {
    if (definition.tasks.length > MAX_TASKS_PER_FLOW) {
      throw new ApiError('INVALID_FLOW', ERRORS.INVALID_FLOW.status, ERRORS.INVALID_FLOW.message(1), {
        problems: [{ path: 'tasks', message: `the flow has ${definition.tasks.length} tasks; a flow may have at most ${MAX_TASKS_PER_FLOW}: split it into several flows` }],
      });
    }
    const oversized = oversizedPart(definition, lineage?.reused);
    if (oversized) throw apiError('FLOW_TOO_LARGE', oversized.part, oversized.bytes, oversized.limit);
  }

  /** The flow's state folded up to and including stream sequence `atSeq`. */
  async stateAt(flowId: string, atSeq: number): Promise<FlowState> {
    if (!ULID_PATTERN.test(flowId)) throw apiError('FLOW_NOT_FOUND', flowId);
    const state = await foldFlowHistory(this.ctx.js, this.ctx.topo, flowId, atSeq);
    if (state === null) {
      if ((await readFlowHistory(this.ctx.js, this.ctx.topo, flowId)).length === 0) throw apiError('FLOW_NOT_FOUND', flowId);
      throw apiError('INVALID_PARAMETER', 'at', `must be at or after the flow's first event; flow "${flowId}" was submitted later than sequence ${atSeq}`);
    }
    return state;
  }

  /**
   * Starts a new flow from `parent` reusing the outputs of its succeeded tasks (see lineageFrom),
   * and records the derivation in the parent's history too.
   */
  async derive(parent: FlowState, kind: Lineage['kind'], atSeq: number, definition: FlowDefinition, rerun: string[], submittedBy?: string): Promise<string> {
    const lineage = lineageFrom(parent, kind, atSeq, rerun);
    for (const id of Object.keys(lineage.reused)) if (!definition.tasks.some((t) => t.id === id)) delete lineage.reused[id];
    const { flowId } = await this.submit(definition, undefined, submittedBy, lineage);
    await this.log.appendNew(
      { type: 'flow.derived', flow_id: parent.flow_id, data: { kind, child_flow_id: flowId, at_seq: atSeq } },
      `${parent.flow_id}:flow.derived:${flowId}`,
    );
    return flowId;
  }

  /**
   * The projector's view, whatever the flow's size; never older than what this gateway answered
   * for the flow before. A flow the projector has not written yet (just submitted) is folded from
   * the log, and that answer is ahead of the views the projector writes next while it catches up:
   * serving one of those would take a flow back in time (a task that was waiting, pending again).
   * So a view older than the last answer is folded from the log instead, which only happens while
   * the projector is behind; as is one older than `minSeq`, what the client saw last (through
   * any gateway).
   */
  async view(flowId: string, minSeq = 0): Promise<FlowView> {
    if (!ULID_PATTERN.test(flowId)) throw apiError('FLOW_NOT_FOUND', flowId);
    const view = await this.views.read(flowId);
    if (view && view.last_seq >= Math.max(this.answered.get(flowId) ?? 0, minSeq)) return this.answer(view);
    const state = await foldFlowHistory(this.ctx.js, this.ctx.topo, flowId);
    if (state === null) throw apiError('FLOW_NOT_FOUND', flowId);
    return this.answer(toFlowView(state));
  }

  private answer(view: FlowView): FlowView {
    this.answered.set(view.flow_id, view.last_seq);
    return view;
  }

  /** Whether the flow was ever submitted: one direct read, whatever its size. */
  async exists(flowId: string): Promise<boolean> {
    return ULID_PATTERN.test(flowId) && (await this.lastEvent(flowId, 'flow.submitted')) !== null;
  }

  private lastEvent(flowId: string, type: EventType) {
    return this.ctx.jsm.streams.getMessage(this.ctx.topo.eventsStream, { last_by_subj: eventSubject(this.ctx.topo.layout, flowId, type) });
  }

  async history(flowId: string, afterSeq = 0): Promise<StoredEvent[]> {
    if (!ULID_PATTERN.test(flowId)) throw apiError('FLOW_NOT_FOUND', flowId);
    const events = await readFlowHistory(this.ctx.js, this.ctx.topo, flowId, afterSeq);
    if (events.length === 0 && (afterSeq === 0 || (await readFlowHistory(this.ctx.js, this.ctx.topo, flowId)).length === 0)) {
      throw apiError('FLOW_NOT_FOUND', flowId);
    }
    return events;
  }

  async cancel(flowId: string, reason?: string, requestedBy?: string): Promise<void> {
    if (!ULID_PATTERN.test(flowId)) throw apiError('FLOW_NOT_FOUND', flowId);
    // A few direct reads instead of a fold: a flow of 10,000 tasks is cancelled as cheaply as one of two.
    if (!(await this.exists(flowId))) throw apiError('FLOW_NOT_FOUND', flowId);
    for (const [type, status] of [['flow.succeeded', 'succeeded'], ['flow.failed', 'failed'], ['flow.cancelled', 'cancelled']] as const) {
      if ((await this.lastEvent(flowId, type)) !== null) throw apiError('FLOW_ALREADY_FINISHED', flowId, status);
    }
    await this.log.appendNew(
      {
        type: 'flow.cancel_requested',
        flow_id: flowId,
        data: { ...(reason !== undefined && { reason }), ...(requestedBy !== undefined && { requested_by: requestedBy }) },
      },
      `${flowId}:flow.cancel_requested`,
    );
  }
}
