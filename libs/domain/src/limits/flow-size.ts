import type { FlowDefinition } from '../flow/definition.js';

/**
 * Size limits of a flow, checked at submission against what the pipeline publishes for it, so
 * nothing accepted can later fail to fit a message (NATS's default max_payload is 1 MiB).
 *
 * - A task's definition travels in its `task.ready` event and its work item: it may take at most
 *   MAX_TASK_SPEC_BYTES, which leaves room for the envelope and for a dead letter of either.
 * - The whole definition (with a rerun's or fork's reused outputs) is stored once: inline in
 *   `flow.submitted` up to INLINE_DEFINITION_BYTES, beyond that in the definitions object store,
 *   referenced by digest from the event, up to MAX_FLOW_DEFINITION_BYTES.
 */
export const MAX_TASKS_PER_FLOW = 10_000;
export const MAX_TASK_SPEC_BYTES = 256 * 1024;
export const INLINE_DEFINITION_BYTES = 256 * 1024;
export const MAX_FLOW_DEFINITION_BYTES = 16 * 1024 * 1024;

export interface OversizedPart {
  /** Names the part for a person: `tasks[3] ("build")`, or `the flow definition`. */
  part: string;
  bytes: number;
  limit: number;
}

const encoder = new TextEncoder();

export function jsonBytes(value: unknown): number {
  return encoder.encode(JSON.stringify(value) ?? '').length;
}

/** The part of a flow that exceeds its size limit: the largest task if it is too large, else the whole. */
export function oversizedPart(definition: FlowDefinition, reused?: unknown): OversizedPart | undefined {
  let largest = { index: -1, bytes: 0 };
  definition.tasks.forEach((task, index) => {
    const bytes = jsonBytes(task);
    if (bytes > largest.bytes) largest = { index, bytes };
  });
  if (largest.bytes > MAX_TASK_SPEC_BYTES) {
    return { part: `tasks[${largest.index}] ("${definition.tasks[largest.index]!.id}")`, bytes: largest.bytes, limit: MAX_TASK_SPEC_BYTES };
  }
  const whole = jsonBytes(definition) + (reused === undefined ? 0 : jsonBytes(reused));
  if (whole <= MAX_FLOW_DEFINITION_BYTES) return undefined;
  return { part: reused === undefined ? 'the flow definition' : 'the flow definition with the outputs it reuses', bytes: whole, limit: MAX_FLOW_DEFINITION_BYTES };
}
