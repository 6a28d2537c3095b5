import { TERMINAL_FLOW_EVENTS, type EventType } from '@taskstream/domain';
import { counter } from '@taskstream/runtime';

/** The planner's metrics (see docs/operations.md#metrics): counted when decisions are stored, never per flow or task id. */

const decisionsAppended = counter({ name: 'taskstream_planner_decisions_total', help: 'Decisions the planner appended to the log, by event type.', labelNames: ['type'] });

const flowsCompleted = counter({
  name: 'taskstream_planner_flows_completed_total',
  help: "Flows the planner ended, by the flow's queue and how it ended (succeeded, failed, cancelled).",
  labelNames: ['queue', 'status'],
});

/** Decisions of a flow of `queue` were stored (the queue only matters for a flow's end). */
export function decisionsStored(drafts: ReadonlyArray<{ type: EventType }>, queue = 'unknown'): void {
  for (const draft of drafts) {
    decisionsAppended.inc({ type: draft.type });
    if (TERMINAL_FLOW_EVENTS.has(draft.type)) flowsCompleted.inc({ queue, status: draft.type.slice('flow.'.length) });
  }
}
