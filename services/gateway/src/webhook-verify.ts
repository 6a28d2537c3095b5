import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { MAX_TOLERANCE_SECS, type Verify } from '@taskstream/domain';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';

/**
 * Verifies webhook deliveries against the raw bytes of their body, comparing signatures in constant
 * time. Each scheme also says which delivery a request is, for de-duplication: the id its signature
 * covers, or, where the signature covers only the body (GitHub, plain HMAC), the body's SHA-256, so
 * a captured request replayed with other headers is still the same delivery.
 */

export interface Delivery {
  body: Buffer;
  /** Header names in lower case. */
  headers: Readonly<Record<string, string>>;
}

/**
 * `deliveryId` is recorded with the run (absent: the request names none, and the flow id stands in);
 * `dedupeKey` (absent: each request is a new delivery) de-duplicates.
 */
export type Verification = { ok: true; deliveryId?: string; dedupeKey?: string } | { ok: false; reason: string };

/** A trigger whose secret cannot verify anything (not a valid key for its scheme): the operator's to fix. */
export class UnusableSecretError extends Error {}

const MAX_ID = 200;
const PRINTABLE_ID = /^[\x21-\x7e]{1,200}$/;

const sha256Hex = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Uint8Array, ...parts: Buffer[]) => {
  const mac = createHmac('sha256', key);
  for (const part of parts) mac.update(part);
  return mac.digest();
};

/** Constant time for equal lengths; a length is no secret (every valid signature has the same one). */
function sameDigest(expected: Buffer, given: Buffer): boolean {
  return given.length === expected.length && timingSafeEqual(expected, given);
}

/** A hex or base64 SHA-256 digest as bytes, or undefined when it is neither. */
function digestOf(text: string): Buffer | undefined {
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, 'hex');
  if (/^[A-Za-z0-9+/]{43}=$/.test(text)) return Buffer.from(text, 'base64');
  return undefined;
}

/** A Standard Webhooks secret (base64, with or without `whsec_`) decoded, or UnusableSecretError. */
export function standardWebhooksKey(secret: string): Webhook {
  try {
    return new Webhook(secret);
  } catch (error) {
    throw new UnusableSecretError(`it is not a Standard Webhooks secret (base64, optionally prefixed "whsec_"): ${(error as Error).message}`);
  }
}

export function verifyDelivery(verify: Verify, secret: string | undefined, delivery: Delivery, nowMs: number): Verification {
  switch (verify.scheme) {
    case 'standard_webhooks':
      return standardWebhooks(secret!, delivery, nowMs);
    case 'github':
      return github(secret!, delivery);
    case 'stripe':
      return stripe(secret!, delivery, nowMs, verify.tolerance_secs ?? MAX_TOLERANCE_SECS);
    case 'hmac':
      return plainHmac(secret!, delivery, (verify.header ?? 'x-signature').toLowerCase());
    case 'none':
      return unverified(delivery, verify.header?.toLowerCase());
  }
}

function outsideTolerance(seconds: string, nowMs: number, toleranceSecs: number): string | undefined {
  const at = Number(seconds);
  const off = Math.abs(nowMs / 1000 - at);
  return off > toleranceSecs ? `its timestamp (${seconds}) is ${Math.round(off)} seconds from the gateway's clock, more than the ${toleranceSecs} allowed` : undefined;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function standardWebhooks(secret: string, { body, headers }: Delivery, nowMs: number): Verification {
  const id = headers['webhook-id'];
  const timestamp = headers['webhook-timestamp'];
  const signature = headers['webhook-signature'];
  const missing = [['webhook-id', id], ['webhook-timestamp', timestamp], ['webhook-signature', signature]].filter(([, v]) => v === undefined).map(([n]) => n);
  if (missing.length > 0) return { ok: false, reason: `the ${missing.join(', ')} header${missing.length === 1 ? ' is' : 's are'} missing (Standard Webhooks)` };
  if (!PRINTABLE_ID.test(id!)) return { ok: false, reason: `webhook-id must be 1 to ${MAX_ID} printable ASCII characters` };
  if (!/^[0-9]{1,12}$/.test(timestamp!)) return { ok: false, reason: 'webhook-timestamp must be seconds since 1970, in digits' };
  const skew = outsideTolerance(timestamp!, nowMs, MAX_TOLERANCE_SECS);
  if (skew) return { ok: false, reason: skew };
  let text: string;
  try {
    // The signature covers the body's bytes; as UTF-8 text (what the library signs) they are the same bytes.
    text = utf8.decode(body);
  } catch {
    return { ok: false, reason: 'the body is not UTF-8, which Standard Webhooks payloads are' };
  }
  try {
    standardWebhooksKey(secret).verify(text, { 'webhook-id': id!, 'webhook-timestamp': timestamp!, 'webhook-signature': signature! }, { jsonParse: false });
  } catch (error) {
    if (error instanceof UnusableSecretError) throw error;
    if (!(error instanceof WebhookVerificationError)) throw error;
    return { ok: false, reason: /timestamp/i.test(error.message) ? `webhook-timestamp is more than ${MAX_TOLERANCE_SECS} seconds from the gateway's clock` : 'no signature in webhook-signature matches the body' };
  }
  return { ok: true, deliveryId: id!, dedupeKey: `id:${id}` };
}

function github(secret: string, { body, headers }: Delivery): Verification {
  const header = headers['x-hub-signature-256'];
  if (header === undefined) return { ok: false, reason: 'the X-Hub-Signature-256 header is missing (GitHub)' };
  const m = /^sha256=([0-9a-fA-F]{64})$/.exec(header.trim());
  if (!m) return { ok: false, reason: 'X-Hub-Signature-256 must be "sha256=" and 64 hex digits' };
  if (!sameDigest(hmac(secret, body), Buffer.from(m[1]!, 'hex'))) return { ok: false, reason: 'X-Hub-Signature-256 does not match the body' };
  const hash = sha256Hex(body);
  const guid = headers['x-github-delivery'];
  return { ok: true, deliveryId: guid !== undefined && PRINTABLE_ID.test(guid) ? guid : `sha256:${hash}`, dedupeKey: `sha256:${hash}` };
}

function stripe(secret: string, { body, headers }: Delivery, nowMs: number, toleranceSecs: number): Verification {
  const header = headers['stripe-signature'];
  if (header === undefined) return { ok: false, reason: 'the Stripe-Signature header is missing (Stripe)' };
  const items = header.split(',').map((item) => item.trim().split('='));
  const timestamps = items.filter(([k]) => k === 't').map(([, v]) => v ?? '');
  const signatures = items.filter(([k]) => k === 'v1').map(([, v]) => v ?? '');
  if (timestamps.length !== 1 || !/^[0-9]{1,12}$/.test(timestamps[0]!)) return { ok: false, reason: 'Stripe-Signature must hold one t=<seconds since 1970>' };
  if (signatures.length === 0) return { ok: false, reason: 'Stripe-Signature holds no v1= signature' };
  const skew = outsideTolerance(timestamps[0]!, nowMs, toleranceSecs);
  if (skew) return { ok: false, reason: skew };
  const expected = hmac(secret, Buffer.from(`${timestamps[0]}.`), body);
  // Every candidate is compared, so the time taken does not say which one matched.
  let matched = false;
  for (const signature of signatures) if (/^[0-9a-fA-F]{64}$/.test(signature) && sameDigest(expected, Buffer.from(signature, 'hex'))) matched = true;
  if (!matched) return { ok: false, reason: 'no v1 signature in Stripe-Signature matches the body' };
  const eventId = stripeEventId(body);
  return eventId !== undefined ? { ok: true, deliveryId: eventId, dedupeKey: `id:${eventId}` } : { ok: true, deliveryId: `sha256:${sha256Hex(body)}`, dedupeKey: `sha256:${sha256Hex(body)}` };
}

/** A Stripe event's id (`evt_…`), which its retries keep. */
function stripeEventId(body: Buffer): string | undefined {
  try {
    const id = (JSON.parse(body.toString('utf8')) as { id?: unknown } | null)?.id;
    return typeof id === 'string' && PRINTABLE_ID.test(id) ? id : undefined;
  } catch {
    return undefined;
  }
}

function plainHmac(secret: string, { body, headers }: Delivery, name: string): Verification {
  const header = headers[name];
  if (header === undefined) return { ok: false, reason: `the ${name} header is missing (the trigger's HMAC signature header)` };
  const digest = digestOf(header.trim().replace(/^sha256=/i, ''));
  if (digest === undefined) return { ok: false, reason: `${name} must be an HMAC-SHA256 of the body: 64 hex digits (optionally after "sha256=") or base64` };
  if (!sameDigest(hmac(secret, body), digest)) return { ok: false, reason: `${name} does not match the body` };
  const hash = `sha256:${sha256Hex(body)}`;
  return { ok: true, deliveryId: hash, dedupeKey: hash };
}

function unverified({ headers }: Delivery, idHeader: string | undefined): Verification {
  const id = idHeader === undefined ? undefined : headers[idHeader];
  if (id === undefined) return { ok: true };
  if (!PRINTABLE_ID.test(id)) return { ok: false, reason: `${idHeader} must be 1 to ${MAX_ID} printable ASCII characters` };
  return { ok: true, deliveryId: id, dedupeKey: `id:${id}` };
}
