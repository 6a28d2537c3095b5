/**
 * How long a finished flow is kept (its events, view, summary, definition and artifacts) before
 * the projector that owns its partition removes it. Off (0) keeps every flow, as before retention.
 */

/**
 * The shortest retention an operator may set: longer than a finished flow normally still appends
 * events (its webhook's retries, up to three and a half minutes) and than the log's
 * de-duplication window (ten minutes).
 */
export const MIN_FLOW_RETENTION_SECS = 3_600;
/** The longest: ten years. */
export const MAX_FLOW_RETENTION_SECS = 10 * 365 * 24 * 3_600;

import { webhookDeliveryWindowMs } from '../webhooks/delivery.js';

/** Whether a flow that ended at `endedAtMs` has been kept `retentionMs` by `nowMs`. */
export function isExpired(endedAtMs: number, nowMs: number, retentionMs: number): boolean {
  return retentionMs > 0 && nowMs - endedAtMs >= retentionMs;
}

/**
 * How often a projector looks for expired flows: a tenth of the retention, between a second and
 * ten minutes, so a flow is removed at most a tenth of its retention late and an idle projector
 * asks the log little.
 */
export function retentionSweepMs(retentionMs: number): number {
  return Math.min(600_000, Math.max(1_000, Math.floor(retentionMs / 10)));
}

/**
 * Whether a work item dispatched at `dispatchedAtMs` may belong to a flow retention removed: only
 * one older than the shortest retention can (its flow ended after the dispatch, and is kept at
 * least that long after its end), so younger ones need no look at the log.
 */
export function mayOutliveItsFlow(dispatchedAtMs: number, nowMs: number): boolean {
  return nowMs - dispatchedAtMs >= MIN_FLOW_RETENTION_SECS * 1_000;
}

/**
 * Whether every event of a flow that ended at `endedAtMs` has been folded into its view, when
 * everything stored before `foldedBeforeMs` has been. A flow still appends events for a while after
 * it ends (its completion webhook's attempts, at most webhookDeliveryWindowMs), so those must be
 * folded too, or a write still to come would bring back the view of a removed flow. Under the
 * shortest retention (tests only), the retention itself is the wait.
 */
export function foldedAfterEnd(endedAtMs: number, foldedBeforeMs: number, retentionMs: number): boolean {
  return endedAtMs + Math.min(webhookDeliveryWindowMs() + 60_000, retentionMs) <= foldedBeforeMs;
}
