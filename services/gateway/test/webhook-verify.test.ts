import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { UnusableSecretError, verifyDelivery } from '../src/webhook-verify.js';

const NOW = Date.parse('2026-12-03T07:00:00Z');
const T = NOW / 1000;
const hex = (key: string | Buffer, data: string | Buffer) => createHmac('sha256', key).update(data).digest('hex');
const body = Buffer.from('{"id":"evt_1","ref":"main"}');

describe('verifyDelivery', () => {
  it('Stripe: accepts a timestamp exactly at the tolerance, refuses one second beyond, either side', () => {
    const stripe = (t: number) => verifyDelivery({ scheme: 'stripe', secret: 's', tolerance_secs: 60 }, 's', { body, headers: { 'stripe-signature': `t=${t},v1=${hex('s', `${t}.${body}`)}` } }, NOW);
    expect(stripe(T - 60)).toEqual({ ok: true, deliveryId: 'evt_1', dedupeKey: 'id:evt_1' });
    expect(stripe(T + 60).ok).toBe(true);
    expect(stripe(T - 61)).toEqual({ ok: false, reason: expect.stringMatching(/61 seconds from the gateway's clock, more than the 60 allowed/) });
    expect(stripe(T + 61).ok).toBe(false);
  });

  it('Stripe: one matching v1 among several is enough; a malformed header says what it lacks', () => {
    const t = T;
    const good = hex('s', `${t}.${body}`);
    const headers = { 'stripe-signature': `t=${t},v1=${'0'.repeat(64)},v1=${good}` };
    expect(verifyDelivery({ scheme: 'stripe', secret: 's' }, 's', { body, headers }, NOW).ok).toBe(true);
    expect(verifyDelivery({ scheme: 'stripe', secret: 's' }, 's', { body, headers: { 'stripe-signature': `t=${t},t=${t},v1=${good}` } }, NOW)).toEqual({ ok: false, reason: expect.stringMatching(/one t=/) });
    expect(verifyDelivery({ scheme: 'stripe', secret: 's' }, 's', { body, headers: { 'stripe-signature': `t=${t}` } }, NOW)).toEqual({ ok: false, reason: expect.stringMatching(/no v1= signature/) });
  });

  it('plain HMAC: hex, sha256=hex and base64 digests; the delivery is the body', () => {
    const digest = createHmac('sha256', 'k').update(body).digest();
    for (const header of [digest.toString('hex'), `sha256=${digest.toString('hex').toUpperCase()}`, digest.toString('base64')]) {
      expect(verifyDelivery({ scheme: 'hmac', secret: 'k' }, 'k', { body, headers: { 'x-signature': header } }, NOW)).toEqual({ ok: true, deliveryId: expect.stringMatching(/^sha256:/), dedupeKey: expect.stringMatching(/^sha256:/) });
    }
    expect(verifyDelivery({ scheme: 'hmac', secret: 'k', header: 'X-Hook-Sig' }, 'k', { body, headers: { 'x-signature': digest.toString('hex') } }, NOW)).toEqual({ ok: false, reason: 'the x-hook-sig header is missing (the trigger\'s HMAC signature header)' });
  });

  it('GitHub: a digest of the wrong length or form is refused before any comparison', () => {
    const headers = (sig: string) => ({ body, headers: { 'x-hub-signature-256': sig } });
    expect(verifyDelivery({ scheme: 'github', secret: 'g' }, 'g', headers(`sha256=${hex('g', body)}`), NOW).ok).toBe(true);
    expect(verifyDelivery({ scheme: 'github', secret: 'g' }, 'g', headers(`sha256=${hex('g', body).slice(2)}`), NOW)).toEqual({ ok: false, reason: expect.stringMatching(/64 hex digits/) });
    expect(verifyDelivery({ scheme: 'github', secret: 'g' }, 'g', headers(`sha1=${hex('g', body)}`), NOW).ok).toBe(false);
  });

  it('Standard Webhooks: a body that is not UTF-8 and a secret that is not base64 are told apart', () => {
    const key = randomBytes(24);
    const secret = `whsec_${key.toString('base64')}`;
    const id = 'msg_1';
    const t = Math.floor(Date.now() / 1000);
    const bytes = Buffer.from([0x7b, 0xff, 0x7d]);
    const signature = `v1,${createHmac('sha256', key).update(Buffer.concat([Buffer.from(`${id}.${t}.`), bytes])).digest('base64')}`;
    const delivery = { body: bytes, headers: { 'webhook-id': id, 'webhook-timestamp': String(t), 'webhook-signature': signature } };
    expect(verifyDelivery({ scheme: 'standard_webhooks', secret: 's' }, secret, delivery, Date.now())).toEqual({ ok: false, reason: 'the body is not UTF-8, which Standard Webhooks payloads are' });
    const text = { ...delivery, body: Buffer.from('{}'), headers: { ...delivery.headers, 'webhook-signature': `v1,${createHmac('sha256', key).update(`${id}.${t}.{}`).digest('base64')}` } };
    expect(verifyDelivery({ scheme: 'standard_webhooks', secret: 's' }, secret, text, Date.now())).toEqual({ ok: true, deliveryId: id, dedupeKey: `id:${id}` });
    expect(() => verifyDelivery({ scheme: 'standard_webhooks', secret: 's' }, 'whsec_!!!', text, Date.now())).toThrow(UnusableSecretError);
    expect(verifyDelivery({ scheme: 'standard_webhooks', secret: 's' }, secret, { ...text, headers: { ...text.headers, 'webhook-timestamp': '1e9' } }, Date.now())).toEqual({ ok: false, reason: expect.stringMatching(/seconds since 1970, in digits/) });
  });
});
