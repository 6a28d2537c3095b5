import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { signingKey, webhookHeaders, webhookSignature } from '../src/webhooks/index.js';

describe('Standard Webhooks signatures', () => {
  it("matches the convention's published test vector", () => {
    // From the Standard Webhooks libraries' tests: secret, id, timestamp, payload and signature.
    const signature = webhookSignature('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}');
    expect(signature).toBe('v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
  });

  it('reads whsec_ and bare base64 secrets as base64, anything else as its own bytes', () => {
    expect(signingKey('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')).toEqual(Buffer.from('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'base64'));
    expect(signingKey('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')).toEqual(Buffer.from('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'base64'));
    expect(signingKey('not base64!')).toEqual(Buffer.from('not base64!', 'utf8'));
    expect(signingKey('whsec_')).toEqual(Buffer.from('whsec_', 'utf8'));
  });

  it('sends id, timestamp and a signature a receiver can check; unsigned without a secret', () => {
    const body = '{"event":"flow_completed"}';
    const headers = webhookHeaders('msg_1', 1700000000, body, 'plain-secret');
    const expected = createHmac('sha256', Buffer.from('plain-secret')).update(`msg_1.1700000000.${body}`).digest('base64');
    expect(headers).toEqual({ 'content-type': 'application/json', 'webhook-id': 'msg_1', 'webhook-timestamp': '1700000000', 'webhook-signature': `v1,${expected}` });
    expect(webhookHeaders('msg_1', 1700000000, body, undefined)).not.toHaveProperty('webhook-signature');
    expect(webhookHeaders('msg_1', 1700000001, body, 'plain-secret')['webhook-signature']).not.toBe(headers['webhook-signature']);
  });
});
