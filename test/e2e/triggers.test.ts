import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { buildGateway } from '@taskstream/gateway';
import { generateApiKey, silentLogger } from '@taskstream/nats';
import { waitFor } from '@taskstream/testing';
import { createContext, type ServiceContext } from '@taskstream/runtime';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { TestStack } from '../support/stack.js';

/*
 * Webhook triggers on a real nats-server with every service running: each verification scheme with
 * a valid, an invalid, an expired (where the scheme carries a time) and a replayed delivery. The
 * signatures are computed here, as each sender documents them. The deliveries go to a gateway with
 * API keys on: a hook needs none, its signature is the credential.
 */

const ADMIN = generateApiKey().key;
const SECRETS = {
  'gh-hook': 'It\'s a Secret to Everybody',
  'stripe.hook': 'whsec_stripe_test_secret',
  'plain-hook': randomBytes(24).toString('hex'),
  'swh-hook': `whsec_${randomBytes(24).toString('base64')}`,
};
/** A marker in every body: it must never appear in a log line. */
const MARKER = 'do-not-log-this-body-7c1e';

const hex = (key: string | Buffer, ...parts: string[]) => parts.reduce((mac, part) => mac.update(part), createHmac('sha256', key)).digest('hex');
const nowSecs = () => Math.floor(Date.now() / 1000);

const TEMPLATE = {
  description: 'records what a delivery carried',
  params_schema: {
    type: 'object',
    properties: { ref: { type: 'string' }, count: { type: 'integer' }, event: { type: 'string' }, summary: { type: 'string' } },
    required: ['ref'],
  },
  flow: {
    name: 'hooked',
    tasks: [{ id: 'record', executor: 'noop', config: { output: { ref: '${params.ref}', count: '${params.count}', event: '${params.event}', summary: '${params.summary}' } } }],
  },
};
const PARAMS = { ref: '${trigger.body.ref}', count: '${trigger.body.count}', event: '${trigger.headers.x-event}', summary: '${trigger.body.ref} x${trigger.body.count}' };

describe('webhook triggers', () => {
  let stack: TestStack;
  let ctx: ServiceContext;
  let gateway: FastifyInstance;
  const logs: string[] = [];
  const auth = { authorization: `Bearer ${ADMIN}` };

  const call = async (method: 'GET' | 'PUT' | 'POST' | 'DELETE', url: string, body?: unknown, headers: Record<string, string> = {}) => {
    const response = await gateway.inject({ method, url, headers: { ...auth, ...(body !== undefined && { 'content-type': 'application/json' }), ...headers }, ...(body !== undefined && { payload: JSON.stringify(body) }) });
    return { status: response.statusCode, body: response.body === '' ? undefined : response.json(), headers: response.headers };
  };
  /** A delivery as a sender makes it: raw bytes and headers, no API key. */
  const deliver = async (name: string, payload: string | Buffer, headers: Record<string, string>) => {
    const response = await gateway.inject({ method: 'POST', url: `/api/v1/hooks/${name}`, payload, headers: { 'content-type': 'application/json', ...headers } });
    return { status: response.statusCode, body: response.json() };
  };
  const hooked = async () => (await call('GET', '/api/v1/flows?template=hooked')).body.flows.map((f: any) => f.flow_id).sort();
  const body = (ref: string, count = 3) => JSON.stringify({ ref, count, note: MARKER });

  /** A valid delivery starts one run that records the mapped params; the same delivery again starts nothing. */
  async function expectRunAndReplay(trigger: string, payload: string, headers: Record<string, string>, deliveryId: string | RegExp) {
    const before = await hooked();
    const first = await deliver(trigger, payload, headers);
    expect(first.status, JSON.stringify(first.body)).toBe(202);
    expect(first.body).toMatchObject({ status: 'submitted', replayed: false, template: { name: 'hooked', version: 1 } });
    const view = await stack.settled(first.body.flow_id);
    expect(view.status).toBe('succeeded');
    const ref = JSON.parse(payload).ref;
    expect(view.tasks[0].output).toEqual({ ref, count: 3, event: 'push', summary: `${ref} x3` });
    expect(view.origin).toEqual({ template: { name: 'hooked', version: 1 }, trigger: { name: trigger, delivery_id: typeof deliveryId === 'string' ? deliveryId : expect.stringMatching(deliveryId) } });
    const submitted = (await stack.events(first.body.flow_id))[0].event;
    expect(submitted.data).toMatchObject({ origin: view.origin, submitted_by: `trigger:${trigger}` });

    const again = await deliver(trigger, payload, headers);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ flow_id: first.body.flow_id, replayed: true });
    // The list is the gateway's copy of the summaries, which the projector stores after the view.
    const listed = await waitFor('the run in the flows list', async () => {
      const flows = await hooked();
      return flows.includes(first.body.flow_id) ? flows : undefined;
    });
    expect(listed).toEqual([...before, first.body.flow_id].sort());
    return first.body.flow_id as string;
  }

  /** A refused delivery is a 401 that starts nothing, logged with its reason and never its body. */
  async function expectRefused(trigger: string, payload: string, headers: Record<string, string>, reason: RegExp) {
    const before = await hooked();
    const seen = logs.length;
    const refused = await deliver(trigger, payload, headers);
    expect(refused.status).toBe(401);
    expect(refused.body.error.code).toBe('INVALID_SIGNATURE');
    expect(refused.body.error.message).toMatch(reason);
    expect(await hooked()).toEqual(before);
    const lines = logs.slice(seen);
    expect(lines.some((line) => line.includes('refused a webhook delivery') && line.includes(`"trigger":"${trigger}"`))).toBe(true);
    expect(lines.join('\n')).not.toContain(MARKER);
  }

  beforeAll(async () => {
    stack = await TestStack.start();
    ctx = await createContext({ natsUrl: stack.nats.url, name: 'triggers-test', log: silentLogger });
    const sink = new Writable({
      write(chunk, _encoding, done) {
        logs.push(...chunk.toString().split('\n').filter((line: string) => line.trim() !== ''));
        done();
      },
    });
    gateway = await buildGateway(ctx, { auth: 'keys', bootstrapAdminKey: ADMIN, logger: pino({ level: 'info' }, sink) });
    await gateway.ready();
    for (const [name, value] of Object.entries(SECRETS)) expect((await call('PUT', `/api/v1/secrets/${name}`, { value })).status).toBe(200);
    expect((await call('PUT', '/api/v1/templates/hooked', TEMPLATE)).status).toBe(201);
    const triggers: Record<string, unknown> = {
      gh: { verify: { scheme: 'github', secret: 'gh-hook' } },
      stripe: { verify: { scheme: 'stripe', secret: 'stripe.hook', tolerance_secs: 120 } },
      plain: { verify: { scheme: 'hmac', secret: 'plain-hook', header: 'X-Signature' } },
      swh: { verify: { scheme: 'standard_webhooks', secret: 'swh-hook' } },
      open: { verify: { scheme: 'none', header: 'X-Delivery-Id' } },
    };
    for (const [name, extra] of Object.entries(triggers)) {
      const put = await call('PUT', `/api/v1/triggers/${name}`, { template: 'hooked', params: PARAMS, ...(extra as object) });
      expect(put.status, JSON.stringify(put.body)).toBe(201);
    }
  });
  afterAll(async () => {
    await gateway?.close();
    await ctx?.nc.close();
    await stack?.stop();
  });

  it('GitHub: X-Hub-Signature-256 over the raw body; a replay (same body, any delivery header) starts nothing', async () => {
    const payload = body('gh-1');
    const signature = `sha256=${hex(SECRETS['gh-hook'], payload)}`;
    const headers = { 'x-hub-signature-256': signature, 'x-github-delivery': 'a1b2c3d4-0000-4000-8000-000000000001', 'x-event': 'push' };
    const flowId = await expectRunAndReplay('gh', payload, headers, 'a1b2c3d4-0000-4000-8000-000000000001');
    // A captured request sent again under another delivery id is the same delivery: its body is what was signed.
    expect((await deliver('gh', payload, { ...headers, 'x-github-delivery': 'forged' })).body).toMatchObject({ flow_id: flowId, replayed: true });
    await expectRefused('gh', payload, { ...headers, 'x-hub-signature-256': `sha256=${hex('wrong secret', payload)}` }, /X-Hub-Signature-256 does not match the body/);
    await expectRefused('gh', `${payload} `, headers, /does not match/);
    await expectRefused('gh', payload, { 'x-event': 'push' }, /X-Hub-Signature-256 header is missing/);
  });

  it('Stripe: t and v1 in Stripe-Signature, within the trigger\'s tolerance; the event id de-duplicates', async () => {
    const payload = JSON.stringify({ id: 'evt_1NG8Du2eZvKYlo2CUI79vXWy', ref: 'stripe-1', count: 3, note: MARKER });
    const signed = (t: number, secret = SECRETS['stripe.hook'], data = payload) => ({ 'stripe-signature': `t=${t},v1=${hex(secret, `${t}.`, data)},v0=ignored`, 'x-event': 'push' });
    const flowId = await expectRunAndReplay('stripe', payload, signed(nowSecs()), 'evt_1NG8Du2eZvKYlo2CUI79vXWy');
    // Stripe retries an event with a new timestamp and signature: still the same delivery.
    expect((await deliver('stripe', payload, signed(nowSecs() + 1))).body).toMatchObject({ flow_id: flowId, replayed: true });
    await expectRefused('stripe', payload, signed(nowSecs() - 600), /timestamp .* seconds from the gateway's clock, more than the 120 allowed/);
    await expectRefused('stripe', payload, signed(nowSecs() + 600), /more than the 120 allowed/);
    await expectRefused('stripe', payload, signed(nowSecs(), 'whsec_other'), /no v1 signature in Stripe-Signature matches the body/);
    await expectRefused('stripe', payload, { 'stripe-signature': `v1=${hex(SECRETS['stripe.hook'], payload)}` }, /one t=/);
  });

  it('Standard Webhooks: webhook-id, webhook-timestamp and webhook-signature; timestamps outside 5 minutes are refused', async () => {
    const key = Buffer.from(SECRETS['swh-hook'].slice('whsec_'.length), 'base64');
    const payload = body('swh-1');
    const signed = (id: string, t: number, data = payload, secret = key) => ({
      'webhook-id': id,
      'webhook-timestamp': String(t),
      'webhook-signature': `v1,${createHmac('sha256', secret).update(`${id}.${t}.${data}`).digest('base64')}`,
      'x-event': 'push',
    });
    const flowId = await expectRunAndReplay('swh', payload, signed('msg_2KWPBgLlAfxdpx2AI54pPJ85f4W', nowSecs()), 'msg_2KWPBgLlAfxdpx2AI54pPJ85f4W');
    // A retry carries the same id with a new timestamp and signature.
    expect((await deliver('swh', payload, signed('msg_2KWPBgLlAfxdpx2AI54pPJ85f4W', nowSecs() + 2))).body).toMatchObject({ flow_id: flowId, replayed: true });
    await expectRefused('swh', payload, signed('msg_old', nowSecs() - 301), /seconds from the gateway's clock/);
    await expectRefused('swh', payload, signed('msg_new', nowSecs() + 400), /seconds from the gateway's clock/);
    await expectRefused('swh', payload, signed('msg_bad', nowSecs(), payload, randomBytes(24)), /no signature in webhook-signature matches the body/);
    await expectRefused('swh', payload, { 'webhook-id': 'msg_x', 'x-event': 'push' }, /webhook-timestamp, webhook-signature headers are missing/);
  });

  it('a plain HMAC header (hex or sha256=hex) over the raw bytes, even when they are not UTF-8', async () => {
    const payload = body('plain-1');
    await expectRunAndReplay('plain', payload, { 'x-signature': hex(SECRETS['plain-hook'], payload), 'x-event': 'push' }, /^sha256:[0-9a-f]{64}$/);
    await expectRefused('plain', payload, { 'x-signature': `sha256=${hex('nope', payload)}`, 'x-event': 'push' }, /x-signature does not match the body/);
    await expectRefused('plain', payload, { 'x-signature': 'not-a-digest', 'x-event': 'push' }, /must be an HMAC-SHA256 of the body/);
    // Without a content type, a body that looks like JSON is read as JSON.
    const bare = body('plain-2');
    const untyped = await gateway.inject({ method: 'POST', url: '/api/v1/hooks/plain', payload: Buffer.from(bare), headers: { 'x-signature': hex(SECRETS['plain-hook'], bare), 'x-event': 'push' } });
    expect(untyped.statusCode, untyped.body).toBe(202);
    expect((await stack.settled(untyped.json().flow_id)).tasks[0].output).toMatchObject({ ref: 'plain-2', count: 3 });
    // Bytes that are not UTF-8 are signed and verified as they are (the body is then text for the mapping).
    const bytes = Buffer.concat([Buffer.from('{"ref": "bin'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);
    const signature = createHmac('sha256', SECRETS['plain-hook']).update(bytes).digest('hex');
    const response = await gateway.inject({ method: 'POST', url: '/api/v1/hooks/plain', payload: bytes, headers: { 'content-type': 'application/octet-stream', 'x-signature': signature } });
    // Verified; the body is not JSON but text, which has no field `ref` for the summary's text to name.
    expect(response.statusCode).toBe(400);
    expect(response.json().error).toMatchObject({ code: 'INVALID_PARAMS', problems: [{ path: 'params.summary', message: '${trigger.body.ref}: the delivery has no such field in its body' }] });
  });

  it('none, only when configured: the delivery id header de-duplicates; without it every request is new', async () => {
    const payload = body('open-1');
    await expectRunAndReplay('open', payload, { 'x-delivery-id': 'd-1', 'x-event': 'push' }, 'd-1');
    const one = await deliver('open', payload, { 'x-event': 'push' });
    const two = await deliver('open', payload, { 'x-event': 'push' });
    expect([one.status, two.status]).toEqual([202, 202]);
    expect(one.body.flow_id).not.toBe(two.body.flow_id);
    expect(one.body.delivery_id).toBe(one.body.flow_id);
  });

  it('answers unknown triggers, params the schema refuses, and a trigger whose secret is gone, each with what to do', async () => {
    expect((await deliver('nope', '{}', {})).body.error.code).toBe('TRIGGER_NOT_FOUND');
    const payload = JSON.stringify({ ref: 7, count: 'many' });
    const bad = await deliver('gh', payload, { 'x-hub-signature-256': `sha256=${hex(SECRETS['gh-hook'], payload)}`, 'x-event': 'push' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('INVALID_PARAMS');
    expect(bad.body.error.problems.map((p: any) => p.path).sort()).toEqual(['params.count', 'params.ref']);

    // A delivery refused after it was claimed (its template gone) started nothing: once the template is back, it runs, once.
    expect((await call('PUT', '/api/v1/templates/later', TEMPLATE)).status).toBe(201);
    expect((await call('PUT', '/api/v1/triggers/later', { template: 'later', params: PARAMS, verify: { scheme: 'none', header: 'X-Delivery-Id' } })).status).toBe(201);
    expect((await call('DELETE', '/api/v1/templates/later')).status).toBe(204);
    const early = await deliver('later', body('later-1'), { 'x-delivery-id': 'later-1', 'x-event': 'push' });
    expect(early.status).toBe(503);
    expect(early.body.error).toMatchObject({ code: 'TRIGGER_MISCONFIGURED', message: expect.stringMatching(/its template later no longer exists/) });
    expect((await call('PUT', '/api/v1/templates/later', TEMPLATE)).body.version).toBe(2);
    const retried = await deliver('later', body('later-1'), { 'x-delivery-id': 'later-1', 'x-event': 'push' });
    expect(retried.status, JSON.stringify(retried.body)).toBe(202);
    expect((await stack.settled(retried.body.flow_id)).origin).toEqual({ template: { name: 'later', version: 2 }, trigger: { name: 'later', delivery_id: 'later-1' } });
    expect((await deliver('later', body('later-1'), { 'x-delivery-id': 'later-1', 'x-event': 'push' })).body).toMatchObject({ flow_id: retried.body.flow_id, replayed: true });

    expect((await call('PUT', '/api/v1/secrets/doomed', { value: 'x' })).status).toBe(200);
    expect((await call('PUT', '/api/v1/triggers/doomed', { template: 'hooked', params: PARAMS, verify: { scheme: 'hmac', secret: 'doomed' } })).status).toBe(201);
    expect((await call('DELETE', '/api/v1/secrets/doomed')).status).toBe(204);
    const gone = await deliver('doomed', '{}', { 'x-signature': hex('x', '{}') });
    expect(gone.status).toBe(503);
    expect(gone.body.error).toMatchObject({ code: 'TRIGGER_MISCONFIGURED', message: expect.stringMatching(/secret "doomed" is not in the secrets store/) });
  });

  it('manages triggers from the CLI: put from YAML, list, show (the secret by name only), delete', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'taskstream-triggers-')), 'trigger.yaml');
    writeFileSync(file, ['name: cli-hook', 'template: hooked', 'params:', '  ref: "${trigger.body.ref}"', 'verify:', '  scheme: hmac', '  secret: plain-hook', '  header: X-Signature', ''].join('\n'));
    const cli = (args: string[]) => runCli([...args, '--server', stack.url]);
    const put = await cli(['trigger', 'put', file]);
    expect(put.code, put.stderr).toBe(0);
    expect(put.stdout.trim()).toBe('trigger cli-hook created: deliveries to POST /api/v1/hooks/cli-hook run template hooked, verified by hmac');
    expect((await cli(['trigger', 'put', file])).stdout).toMatch(/^trigger cli-hook replaced/);
    const list = await cli(['trigger', 'list']);
    expect(list.stdout).toMatch(/^cli-hook\s+hooked\s+hmac\s+plain-hook$/m);
    const show = await cli(['trigger', 'show', 'cli-hook']);
    expect(JSON.parse(show.stdout)).toMatchObject({ name: 'cli-hook', template: 'hooked', verify: { scheme: 'hmac', secret: 'plain-hook', header: 'X-Signature' } });
    expect(show.stdout + list.stdout).not.toContain(SECRETS['plain-hook']);
    expect((await cli(['trigger', 'delete', 'cli-hook'])).stdout.trim()).toBe('trigger cli-hook deleted');
    const gone = await cli(['trigger', 'show', 'cli-hook']);
    expect(gone.code, gone.stderr).toBe(2);
    expect(gone.stderr).toContain('no trigger named "cli-hook"');
    const bad = await cli(['trigger', 'put', file, '--name', 'Bad.Name']);
    expect(bad.code, bad.stderr).toBe(2);
    expect(bad.stderr).toMatch(/parameter "name" must be a trigger name/);
  });

  it('manages triggers: every problem at PUT, secrets shown by name only, list and delete; an admin key is needed to change them', async () => {
    const refused = await call('PUT', '/api/v1/triggers/broken', { template: 'missing', params: { a: '${trigger.query.a}' }, verify: { scheme: 'github', secret: 'no-such-secret' } });
    expect(refused.status).toBe(400);
    expect(refused.body.error.code).toBe('INVALID_TRIGGER');
    expect(refused.body.error.problems.map((p: any) => p.path)).toEqual(['params.a']);
    const missing = await call('PUT', '/api/v1/triggers/broken', { template: 'missing', params: {}, verify: { scheme: 'github', secret: 'no-such-secret' } });
    expect(missing.body.error.problems).toEqual([
      { path: 'template', message: expect.stringMatching(/^no template named "missing"/) },
      { path: 'verify.secret', message: expect.stringMatching(/^no secret named "no-such-secret"; set it first/) },
    ]);
    // A param the template's schema does not allow (additionalProperties: false) is refused at PUT.
    expect((await call('PUT', '/api/v1/templates/strict', { ...TEMPLATE, params_schema: { ...TEMPLATE.params_schema, additionalProperties: false } })).status).toBe(201);
    const extra = await call('PUT', '/api/v1/triggers/strict', { template: 'strict', params: { ...PARAMS, colour: 'red' }, verify: { scheme: 'github', secret: 'gh-hook' } });
    expect(extra.body.error.problems).toEqual([{ path: 'params.colour', message: expect.stringMatching(/^template "strict" version 1 declares no param "colour"/) }]);
    const shown = await call('GET', '/api/v1/triggers/gh');
    expect(shown.body).toMatchObject({ name: 'gh', template: 'hooked', verify: { scheme: 'github', secret: 'gh-hook' }, hook: '/api/v1/hooks/gh' });
    const listed = await call('GET', '/api/v1/triggers');
    expect(listed.body.triggers.map((t: any) => t.name)).toEqual(expect.arrayContaining(['gh', 'open', 'plain', 'stripe', 'swh']));
    for (const value of Object.values(SECRETS)) expect(JSON.stringify(listed.body)).not.toContain(value);

    const noKey = await gateway.inject({ method: 'GET', url: '/api/v1/triggers' });
    expect(noKey.statusCode).toBe(401);
    expect((await call('DELETE', '/api/v1/triggers/open')).status).toBe(204);
    expect((await call('DELETE', '/api/v1/triggers/open')).status).toBe(404);
    expect((await deliver('open', '{}', {})).status).toBe(404);
  });
});
