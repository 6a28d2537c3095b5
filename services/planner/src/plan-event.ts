import { decideAll, isTerminalFlow, REPORT_EVENTS, type EventDraft, type FlowEvent } from '@taskstream/domain';
import type { JsMsg, Logger } from '@taskstream/nats';
import type { ServiceContext } from '@taskstream/runtime';
import type { DecisionAppender } from './append-once.js';
import { approvalDeadlineOn, deadlineOnStart, publishApprovalDeadline, publishDeadline } from './deadlines.js';
import { stepOf, type Delivery } from './decisions.js';
import type { ChildFlows } from './children.js';
import { FlowLanes } from './flow-lanes.js';
import type { CachedFlow, FlowCache, FlowHistory } from './flow-cache.js';
import type { SignalMatcher } from './signals.js';

export interface EventPlannerParts {
  cache: FlowCache;
  history: FlowHistory;
  appender: DecisionAppender;
  /** Where deadlines are published. */
  timers: Pick<ServiceContext, 'js' | 'topo'>;
  log: Logger;
  signals?: SignalMatcher;
  children?: ChildFlows;
}

/**
 * One event of a partition: its flow loaded, the event folded and decided on, the flow's deadline
 * published on its start, the decisions appended; the event is acknowledged only after that (when
 * `handle` resolves). Each flow's events are handled in the order `handle` is called (stream
 * order), one at a time; other flows' events alongside.
 */
export class EventPlanner {
  private readonly lanes = new FlowLanes();

  constructor(private readonly parts: EventPlannerParts) {}

  readonly handle = (event: FlowEvent, msg: JsMsg): Promise<void> => this.lanes.run(event.flow_id, () => this.handleInOrder(event, msg));

  private async handleInOrder(event: FlowEvent, msg: JsMsg): Promise<void> {
    try {
      await this.plan(event, msg);
    } catch (error) {
      // The fold may have moved ahead of what was stored: forget the flow, so the redelivery
      // rebuilds it from the log and re-decides everything not yet recorded.
      this.parts.cache.forget(event.flow_id);
      throw error;
    }
  }

  private async plan(event: FlowEvent, msg: JsMsg): Promise<void> {
    // Nothing follows from them, and their flow ended (it left the cache): loading it would read its whole log.
    if (REPORT_EVENTS.has(event.type)) return;
    const { cache, appender, log } = this.parts;
    const loaded = await cache.load(event, msg.seq, msg.info.deliveryCount);
    if (!loaded) {
      log.warn({ flow_id: event.flow_id, type: event.type, seq: msg.seq }, 'event for a flow that was never submitted; ignored');
      return;
    }
    const { flow, rebuilt } = loaded;
    const drafts = await this.decisions(flow, event, { seq: msg.seq, deliveryCount: msg.info.deliveryCount, rebuilt, completeThrough: flow.completeThrough });
    // Before the event is acknowledged, even when memory already held it (a flow rebuilt from a
    // log that has the event): its delivery is the one chance to store the timeout.
    const approval = approvalDeadlineOn(event, flow.state);
    if (approval !== undefined) await publishApprovalDeadline(this.parts.timers, approval);
    await this.parts.signals?.onEvent(event, flow.state);
    await this.parts.children?.onEvent(event, flow.state);
    if (drafts === undefined) return;
    const deadline = deadlineOnStart(event, flow.state);
    if (deadline !== undefined) await publishDeadline(this.parts.timers, deadline);
    if (!(await appender.append(flow, drafts, event, msg.seq))) return;
    if (isTerminalFlow(flow.state)) cache.forget(event.flow_id);
  }

  /** The decisions `event` leads to; undefined when there is nothing to do. */
  private async decisions(flow: CachedFlow, event: FlowEvent, delivery: Delivery): Promise<EventDraft[] | undefined> {
    const step = stepOf(flow.state, event, delivery);
    if (step.kind === 'decide') return step.drafts;
    if (step.kind === 'seen') return undefined;
    const refolded = await this.parts.history.fold(event.flow_id, flow.state.last_seq);
    if (refolded === null) return undefined;
    flow.state = refolded;
    flow.completeThrough = refolded.last_seq;
    return decideAll(refolded);
  }
}
