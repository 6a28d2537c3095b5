import type { TaskError } from '@taskstream/domain';
import { StepError } from './steps/step-error.js';

/**
 * Deepest nesting of arrays and objects an output may have. Every later reader of the log
 * (JSON.stringify, structuredClone, zod, the views) recurses over it, and a value nested some
 * thousands deep overflows their stack.
 */
export const MAX_OUTPUT_DEPTH = 64;

/**
 * Room an event needs besides its output or error: envelope fields (id, type, flow and task ids,
 * time, attempt, duration) and the message headers (Nats-Msg-Id), which count against the
 * server's max_payload too.
 */
export const ENVELOPE_BYTES = 4 * 1024;

/** How deeply `value` nests, counted without recursion so that measuring cannot overflow; stops once past `limit`. */
export function nestingDepth(value: unknown, limit = Number.POSITIVE_INFINITY): number {
  let deepest = 0;
  const pending: Array<[unknown, number]> = [[value, 0]];
  while (pending.length > 0) {
    const [node, depth] = pending.pop()!;
    if (node === null || typeof node !== 'object') continue;
    const level = depth + 1;
    if (level > deepest) deepest = level;
    if (deepest > limit) return deepest;
    for (const child of Array.isArray(node) ? node : Object.values(node)) pending.push([child, level]);
  }
  return deepest;
}

/**
 * Refuses an output the log cannot hold safely: nested deeper than MAX_OUTPUT_DEPTH, or larger as
 * JSON than `maxBytes` (what fits in one event). Neither is worth retrying: the step would produce
 * the same again.
 */
export function checkOutput(output: unknown, maxBytes: number): void {
  if (nestingDepth(output, MAX_OUTPUT_DEPTH) > MAX_OUTPUT_DEPTH) {
    throw new StepError({
      message: `the step's output nests more than ${MAX_OUTPUT_DEPTH} levels deep (arrays and objects), more than an output may`,
      code: 'OUTPUT_TOO_DEEP',
      retryable: false,
    });
  }
  const bytes = output === undefined ? 0 : Buffer.byteLength(JSON.stringify(output));
  if (bytes > maxBytes) {
    throw new StepError({
      message: `the step's output is ${bytes} bytes as JSON, more than the ${maxBytes} bytes an event can carry (the NATS server's max_payload)`,
      code: 'OUTPUT_TOO_LARGE',
      retryable: false,
    });
  }
}

const jsonBytes = (value: unknown) => Buffer.byteLength(JSON.stringify(value));

/**
 * An error cut down until it takes at most `maxBytes` as JSON: the output tails keep their ends
 * (where a failure shows), the message its start. Characters JSON escapes (control characters
 * take six bytes) make the byte size of a text of bounded length vary, hence the measuring.
 */
export function fitError(error: TaskError, maxBytes: number): TaskError {
  if (jsonBytes(error) <= maxBytes) return error;
  let fitted = { ...error };
  for (let chars = 16 * 1024; chars >= 64; chars = Math.floor(chars / 2)) {
    fitted = {
      ...error,
      message: cutEnd(error.message, chars),
      ...(error.stdout_tail !== undefined && { stdout_tail: cutStart(error.stdout_tail, chars) }),
      ...(error.stderr_tail !== undefined && { stderr_tail: cutStart(error.stderr_tail, chars) }),
    };
    if (jsonBytes(fitted) <= maxBytes) return fitted;
  }
  const { stdout_tail: _out, stderr_tail: _err, ...bare } = fitted;
  return bare;
}

function cutEnd(text: string, chars: number): string {
  return text.length <= chars ? text : `${text.slice(0, chars)}… (cut)`;
}

function cutStart(text: string, chars: number): string {
  return text.length <= chars ? text : `(cut) …${text.slice(-chars)}`;
}
