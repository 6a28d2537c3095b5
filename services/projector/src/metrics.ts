import type { EventType } from '@taskstream/domain';
import { counter, histogram } from '@taskstream/runtime';

/**
 * The projector's metrics (see docs/operations.md#metrics). Counted on live handling only: a
 * rebuild folds the log without them, so a rebuilt projector does not count the log twice.
 */

const eventsProjected = counter({ name: 'taskstream_projector_events_total', help: 'Events folded into views by the live consumers, by event type.', labelNames: ['type'] });

const flowsRemovedTotal = counter({ name: 'taskstream_projector_flows_removed_total', help: 'Flows removed past their retention (TASKSTREAM_FLOW_RETENTION_SECS): events, view, summary, definition and artifacts.' });

const batchWrites = histogram({
  name: 'taskstream_projector_batch_write_seconds',
  help: 'How long writing one batch of views and summaries took (written batches only).',
  buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
});

/** A live event was folded and its flow held for the next write. */
export function eventProjected(type: EventType): void {
  eventsProjected.inc({ type });
}

/** A batch write starts; call the function returned once it is stored. */
export function batchWriting(): () => void {
  const end = batchWrites.startTimer();
  return () => void end();
}

/** Flows past their retention were removed. */
export function flowsRemoved(count: number): void {
  flowsRemovedTotal.inc(count);
}
