import { randomBytes } from 'node:crypto';
import { decideAll, WEBHOOK_TRIGGERS, webhookKinds, type EventDraft, type FlowDefinition, type FlowEvent } from '@taskstream/domain';
import { WEBHOOKS_HINT, type EventHints, type EventLog, type Logger } from '@taskstream/nats';
import { freshDecisions, startOf, unemitted } from './decisions.js';
import type { ChildFlows } from './children.js';
import type { CachedFlow, FlowHistory } from './flow-cache.js';
import { decisionsStored } from './metrics.js';

/**
 * Appends a flow's decisions exactly once: each keyed for de-duplication and remembered once
 * stored, its start only while the flow's log holds none.
 */
export class DecisionAppender {
  constructor(
    private readonly log: EventLog,
    private readonly history: FlowHistory,
    private readonly logger: Logger,
    private readonly children?: ChildFlows,
  ) {}

  /**
   * Appends what `drafts` holds that this process has not appended yet, as decisions caused by
   * `event` (delivered at `seq`). False when the flow turned out to be missing from the log.
   */
  async append(flow: CachedFlow, drafts: readonly EventDraft[], event: FlowEvent, seq: number): Promise<boolean> {
    const causeTime = Date.parse(event.time);
    let fresh = freshDecisions(drafts, flow.emitted);
    const start = startOf(fresh);
    if (start !== undefined) {
      // Nothing else of a flow is decided before its start is stored exactly once: a submission
      // delivered again after its flow started (a replayed partition, a consumer reset) must fold
      // the flow's history instead of starting it, and finished flows then decide nothing.
      if (await this.log.appendFirst(start, causeTime)) decisionsStored([start], flow.state.definition.queue);
      else {
        this.logger.warn({ flow_id: event.flow_id, seq }, 'submission of a flow that already started delivered again; folding its history instead');
        const refolded = await this.history.fold(event.flow_id);
        if (refolded === null) return false;
        flow.state = refolded;
        flow.completeThrough = refolded.last_seq;
        fresh = unemitted(decideAll(refolded), flow.emitted);
      }
      flow.emitted.add(start.key);
      fresh = fresh.filter((d) => d.key !== start.key);
    }
    if (fresh.length > 0) {
      // A trigger task's child is submitted before its wait is stored (see ChildFlows).
      const children = this.children;
      const stored = children === undefined ? fresh : await Promise.all(fresh.map((d) => children.launch(d, flow.state)));
      await this.log.appendDecisions(stored.map(withApprovalCode), causeTime, webhookHints(flow.state.definition));
      for (const d of fresh) flow.emitted.add(d.key);
      decisionsStored(fresh, flow.state.definition.queue);
    }
    return true;
  }
}

/** A flow's end tells the webhook consumers which webhooks its definition sets: none, mostly. */
function webhookHints(definition: Pick<FlowDefinition, 'webhooks'>): (draft: EventDraft) => EventHints | undefined {
  return (draft) => (WEBHOOK_TRIGGERS[draft.type] === undefined ? undefined : { [WEBHOOKS_HINT]: webhookKinds(definition).join(',') || 'none' });
}

/**
 * An approval's code: 128 random bits, drawn here because the decider is deterministic. A repeat
 * of the decision draws another, but is dropped by its key: the stored event's code is the code.
 */
export function withApprovalCode(draft: EventDraft): EventDraft {
  if (draft.type !== 'task.waiting' || draft.data.output === undefined) return draft;
  return { ...draft, data: { ...draft.data, output: { ...draft.data.output, code: randomBytes(16).toString('hex') } } };
}
