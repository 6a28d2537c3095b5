import { FlowEvent } from '@taskstream/domain';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function encodeJson(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

export type Decoded<T> = { ok: true; value: T } | { ok: false; reason: string };

export function decodeJson(data: Uint8Array): Decoded<unknown> {
  let text: string;
  try {
    text = decoder.decode(data);
  } catch {
    return { ok: false, reason: 'payload is not valid UTF-8' };
  }
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (error) {
    return { ok: false, reason: `payload is not valid JSON: ${(error as Error).message}` };
  }
}

/** Decodes and validates an event against the catalogue; the reason names the first failing fields. */
export function decodeEvent(data: Uint8Array): Decoded<FlowEvent> {
  const json = decodeJson(data);
  if (!json.ok) return json;
  const result = FlowEvent.safeParse(json.value);
  if (result.success) return { ok: true, value: result.data };
  const type = (json.value as { type?: unknown } | null)?.type;
  const issues = result.error.issues
    .slice(0, 5)
    .map((i) => `${i.path.join('.') || '$'}: ${i.message}`)
    .join('; ');
  return { ok: false, reason: `invalid event${typeof type === 'string' ? ` of type "${type}"` : ''}: ${issues}` };
}
