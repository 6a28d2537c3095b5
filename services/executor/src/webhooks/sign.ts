import { createHmac } from 'node:crypto';

/**
 * Standard Webhooks signing (https://www.standardwebhooks.com): `webhook-signature` is `v1,` and
 * the base64 HMAC-SHA256, keyed by the secret, of `<webhook-id>.<webhook-timestamp>.<body>`.
 * Written on node:crypto rather than with the `standardwebhooks` package, which is CommonJS only
 * and brings two dependencies for these few lines; its test vector is in this part's tests.
 */

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * The key a stored secret stands for. The convention's form is `whsec_` and base64 (what its
 * libraries generate and read); a value that is not base64 is used as its own UTF-8 bytes, as
 * those libraries do with their "raw" format.
 */
export function signingKey(secret: string): Buffer {
  const body = secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret;
  return body.length > 0 && BASE64.test(body) ? Buffer.from(body, 'base64') : Buffer.from(secret, 'utf8');
}

export function webhookSignature(secret: string, id: string, timestampSecs: number, body: string): string {
  return `v1,${createHmac('sha256', signingKey(secret)).update(`${id}.${timestampSecs}.${body}`).digest('base64')}`;
}

/** The headers of one attempt: the id stays, the timestamp (and so the signature) is the attempt's own. */
export function webhookHeaders(id: string, timestampSecs: number, body: string, secret: string | undefined): Record<string, string> {
  return {
    'content-type': 'application/json',
    'webhook-id': id,
    'webhook-timestamp': String(timestampSecs),
    ...(secret !== undefined && { 'webhook-signature': webhookSignature(secret, id, timestampSecs, body) }),
  };
}
