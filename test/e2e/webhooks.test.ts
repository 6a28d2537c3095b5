import { createHmac } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { EVENT_VERSION, eventSubject, type FlowEvent } from '@taskstream/domain';
import { connectNats, EventLog, jetstream, jetstreamManager, newId, topology, WEBHOOKS_HINT, type NatsConnection } from '@taskstream/nats';
import { NatsServer, waitFor } from '@taskstream/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_SERVICES, Deployment, FAST_FAILOVER } from '../support/deployment.js';
import { recordingEndpoint } from '../support/stack.js';

type Endpoint = Awaited<ReturnType<typeof recordingEndpoint>>;
type Received = Endpoint['requests'][number];

/** A Standard Webhooks check written here, apart from the executor's signing code. */
function verify(request: Received, secret: string): boolean {
  const id = request.headers['webhook-id'] as string;
  const timestamp = request.headers['webhook-timestamp'] as string;
  const expected = createHmac('sha256', Buffer.from(secret.replace(/^whsec_/, ''), 'base64')).update(`${id}.${timestamp}.${request.body}`).digest('base64');
  const signatures = String(request.headers['webhook-signature'] ?? '').split(' ');
  return signatures.includes(`v1,${expected}`) && Math.abs(Date.now() / 1000 - Number(timestamp)) < 300;
}

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const OPERATOR_SECRET = 'whsec_c2VjcmV0LW9mLXRoZS1vcGVyYXRvcg==';

describe('completion webhooks, delivered by the executors from a durable consumer', () => {
  let nats: NatsServer;
  let deployment: Deployment;
  let base: string;
  let nc: NatsConnection;
  const endpoints: Endpoint[] = [];

  const endpoint = async (status?: (req: IncomingMessage, n: number) => number) => {
    const started = await recordingEndpoint(status);
    endpoints.push(started);
    return started;
  };
  const submit = async (flow: unknown): Promise<string> => {
    const response = await fetch(`${base}/api/v1/flows`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(flow) });
    const text = await response.text();
    if (response.status !== 202) throw new Error(`submission failed: ${response.status} ${text}`);
    return JSON.parse(text).flow_id;
  };
  const putSecret = async (name: string, value: string) => {
    const response = await fetch(`${base}/api/v1/secrets/${name}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ value }) });
    expect(response.status).toBe(200);
  };
  const view = async (id: string) => (await (await fetch(`${base}/api/v1/flows/${id}`)).json()) as any;
  const events = async (id: string): Promise<any[]> => ((await (await fetch(`${base}/api/v1/flows/${id}/events`)).json()) as any).events.map((e: any) => e.event);
  const settled = (id: string) =>
    waitFor(`flow ${id} to finish`, async () => {
      const current = await view(id);
      return ['succeeded', 'failed', 'cancelled'].includes(current.status) ? current : undefined;
    }, 30_000);
  /** The flow's webhook events once delivery ended (delivered or abandoned). */
  const deliveryEnded = (id: string) =>
    waitFor(`the webhook of flow ${id} to be delivered or abandoned`, async () => {
      const all = await events(id);
      return all.some((e) => e.type === 'flow.webhook_delivered' || e.type === 'flow.webhook_abandoned') ? all : undefined;
    }, 60_000);
  /** What a view says of the flow's outcome: status, counts and every task. */
  const outcome = (v: any) => ({ status: v.status, error: v.error, tasks: v.tasks });

  beforeAll(async () => {
    nats = await NatsServer.start();
    // The executor may reach 127.0.0.1 (the receivers), not the rest of the loopback range.
    deployment = await Deployment.start(nats.url, ALL_SERVICES, { ...FAST_FAILOVER, TASKSTREAM_HTTP_ALLOW: '127.0.0.0/8', TASKSTREAM_WEBHOOK_ALLOW: '127.0.0.1/32' });
    base = deployment.gatewayUrl;
    nc = await connectNats({ servers: nats.url, name: 'webhooks-test' });
  });
  afterAll(async () => {
    await nc?.close();
    await Promise.all(endpoints.map((e) => e.close()));
    await deployment?.stop();
    await nats?.stop();
  });

  it('sends unsigned, and says so in the history, when neither the flow nor the operator set a secret', async () => {
    const receiver = await endpoint();
    const id = await submit({ webhooks: { on_complete: `${receiver.url}/done` }, tasks: [{ id: 'a', executor: 'noop' }] });
    const history = await deliveryEnded(id);
    const attempts = history.filter((e) => e.type === 'flow.webhook_attempted');
    expect(attempts.map((e) => e.data)).toEqual([expect.objectContaining({ attempt: 1, status: 200, signed: false, webhook: 'on_complete', event: 'flow_completed' })]);
    expect(attempts[0].data).not.toHaveProperty('secret');
    expect(receiver.requests).toHaveLength(1);
    expect(receiver.requests[0]!.headers).not.toHaveProperty('webhook-signature');
    expect(receiver.requests[0]!.headers['webhook-id']).toBe(`msg_${id}`);
  });

  it('calls the webhook of a flow whose definition is too large to travel in its submission', async () => {
    const receiver = await endpoint();
    const output = 'x'.repeat(100_000);
    const id = await submit({ webhooks: { on_complete: `${receiver.url}/done` }, tasks: [0, 1, 2].map((i) => ({ id: `big${i}`, executor: 'noop', config: { output } })) });
    const history = await deliveryEnded(id);
    // Over 256 KiB: the definition is in the definitions store, which the executor reads to find the webhook.
    expect(history[0].data.definition).toBeUndefined();
    expect(history[0].data.definition_ref).toMatchObject({ object: id, tasks: 3 });
    expect(history.filter((e) => e.type === 'flow.webhook_delivered').map((e) => e.data)).toEqual([expect.objectContaining({ attempts: 1, status: 200 })]);
    expect(receiver.requests).toHaveLength(1);
    expect(JSON.parse(receiver.requests[0]!.body)).toMatchObject({ event: 'flow_completed', flow_id: id });
  });

  it('retries a receiver that fails twice, with the same id and a signature made with the flow secret, and leaves the outcome alone', async () => {
    await putSecret('hooks.ci', SECRET);
    const receiver = await endpoint((_req, n) => (n <= 2 ? 500 : 200));
    const id = await submit({
      queue: 'default',
      webhooks: { on_complete: `${receiver.url}/done?token=kept-out-of-the-log`, secret: 'hooks.ci' },
      tasks: [{ id: 'a', executor: 'noop' }, { id: 'b', executor: 'noop', depends_on: ['a'] }],
    });
    const before = await settled(id);
    expect(before.status).toBe('succeeded');
    const history = await deliveryEnded(id);

    const attempts = history.filter((e) => e.type === 'flow.webhook_attempted').map((e) => e.data);
    expect(attempts.map((a) => [a.attempt, a.status, a.signed, a.secret, a.retry_in_ms])).toEqual([
      [1, 500, true, 'hooks.ci', 1000],
      [2, 500, true, 'hooks.ci', 2000],
      [3, 200, true, 'hooks.ci', undefined],
    ]);
    expect(attempts[0].failure).toBe('answered HTTP 500');
    expect(attempts.every((a) => a.url === `${receiver.url}/done?…` && a.webhook_id === `msg_${id}`)).toBe(true);
    expect(history.filter((e) => e.type === 'flow.webhook_delivered').map((e) => e.data)).toEqual([
      { webhook: 'on_complete', url: `${receiver.url}/done?…`, webhook_id: `msg_${id}`, attempts: 3, status: 200 },
    ]);
    expect(history.some((e) => e.type === 'flow.webhook_abandoned')).toBe(false);
    // The definition holds the URL as given; the delivery records keep its query out.
    expect(JSON.stringify(history.filter((e) => e.type.startsWith('flow.webhook_')))).not.toContain('kept-out-of-the-log');

    expect(receiver.requests).toHaveLength(3);
    for (const request of receiver.requests) {
      expect(request.url).toBe('/done?token=kept-out-of-the-log');
      expect(request.headers['webhook-id']).toBe(`msg_${id}`);
      expect(verify(request, SECRET)).toBe(true);
      expect(verify(request, OPERATOR_SECRET)).toBe(false);
      expect(JSON.parse(request.body)).toEqual({ event: 'flow_completed', flow_id: id, queue_id: 'default', state: 'succeeded', task_count: 2, tasks_succeeded: 2, tasks_failed: 0 });
    }
    // JetStream held the message back between attempts: about 1 s, then about 2 s.
    const times = history.filter((e) => e.type === 'flow.webhook_attempted').map((e) => Date.parse(e.time));
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(900);
    expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(1900);

    // The flow's terminal event is still the last word on its outcome, and its view says the same.
    expect(history.filter((e) => e.type.startsWith('flow.') && ['flow.succeeded', 'flow.failed', 'flow.cancelled'].includes(e.type)).map((e) => e.type)).toEqual(['flow.succeeded']);
    const lastSeq = ((await (await fetch(`${base}/api/v1/flows/${id}/events`)).json()) as any).events.at(-1).seq as number;
    const after = await waitFor('the view to fold every webhook event', async () => {
      const current = await view(id);
      return current.last_seq >= lastSeq ? current : undefined;
    }, 10_000);
    expect(after.last_seq).toBeGreaterThan(before.last_seq);
    expect(outcome(after)).toEqual(outcome(before));
  });

  it("calls on_failure for a failed flow, signed with the operator's secret when the flow names none", async () => {
    await putSecret('webhooks', OPERATOR_SECRET);
    const receiver = await endpoint();
    const id = await submit({
      webhooks: { on_complete: `${receiver.url}/never`, on_failure: `${receiver.url}/failed` },
      tasks: [{ id: 'ok', executor: 'noop' }, { id: 'broken', executor: 'shell', retries: 0, config: { command: 'exit 3' } }],
    });
    expect((await settled(id)).status).toBe('failed');
    const history = await deliveryEnded(id);
    expect(history.filter((e) => e.type === 'flow.webhook_attempted').map((e) => e.data)).toEqual([
      expect.objectContaining({ webhook: 'on_failure', event: 'flow_failed', attempt: 1, status: 200, signed: true, secret: 'webhooks' }),
    ]);
    expect(receiver.requests.map((r) => r.url)).toEqual(['/failed']);
    expect(verify(receiver.requests[0]!, OPERATOR_SECRET)).toBe(true);
    expect(JSON.parse(receiver.requests[0]!.body)).toEqual({ event: 'flow_failed', flow_id: id, queue_id: 'default', state: 'failed', task_count: 2, tasks_succeeded: 1, tasks_failed: 1 });
  });

  it('abandons a URL the SSRF policy refuses, naming the rule, and the flow still succeeded', async () => {
    const receiver = await endpoint();
    const blocked = receiver.url.replace('127.0.0.1', '127.0.0.2');
    const id = await submit({ webhooks: { on_complete: `${blocked}/done` }, tasks: [{ id: 'a', executor: 'noop' }] });
    const before = await settled(id);
    const history = await deliveryEnded(id);
    const abandoned = history.filter((e) => e.type === 'flow.webhook_abandoned').map((e) => e.data);
    expect(abandoned).toEqual([expect.objectContaining({ code: 'SSRF_BLOCKED', attempts: 1, url: `${blocked}/done` })]);
    expect(abandoned[0].reason).toMatch(/^webhook refused to connect to 127\.0\.0\.2: loopback addresses are blocked; allow them with TASKSTREAM_WEBHOOK_ALLOW/);
    expect(history.filter((e) => e.type === 'flow.webhook_attempted').map((e) => e.data)).toEqual([
      expect.objectContaining({ attempt: 1, failure: abandoned[0].reason }),
    ]);
    expect(receiver.requests).toHaveLength(0);
    expect(outcome(await view(id))).toEqual(outcome(before));
    expect(before.status).toBe('succeeded');
    expect(deployment.logs()).not.toMatch(/setting aside/);
  });

  it('stores a flow\'s end with a hint naming the webhooks its definition sets, for the executors to read instead of the definition', async () => {
    const receiver = await endpoint();
    const id = await submit({ webhooks: { on_failure: `${receiver.url}/failed` }, tasks: [{ id: 'a', executor: 'noop' }] });
    expect((await settled(id)).status).toBe('succeeded');
    const topo = topology();
    const end = await (await jetstreamManager(nc)).direct.getMessage(topo.eventsStream, { last_by_subj: eventSubject(topo.layout, id, 'flow.succeeded') });
    expect(end?.header?.get(WEBHOOKS_HINT)).toBe('on_failure');
  });

  it('reads the definition of a flow whose end carries no hint (stored before hints), and trusts a hint that names none', async () => {
    const receiver = await endpoint();
    // Tasks on a queue no executor serves: the flows stay running until this test ends them.
    const flow = { webhooks: { on_complete: `${receiver.url}/done` }, tasks: [{ id: 'waits', executor: 'noop', queue: 'nobody-serves' }] };
    const [hinted, unhinted] = [await submit(flow), await submit(flow)];
    await waitFor('both flows to start', async () => ((await view(hinted)).status === 'running' && (await view(unhinted)).status === 'running' ? true : undefined));
    const log = new EventLog(jetstream(nc), topology());
    const ended = (flowId: string): FlowEvent => ({ id: newId(), type: 'flow.succeeded', version: EVENT_VERSION, flow_id: flowId, time: new Date().toISOString(), data: { succeeded: 1, total: 1 } });
    await log.append(ended(hinted), undefined, { [WEBHOOKS_HINT]: 'none' });
    await log.append(ended(unhinted));
    const history = await deliveryEnded(unhinted);
    expect(history.filter((e) => e.type === 'flow.webhook_delivered')).toHaveLength(1);
    expect(JSON.parse(receiver.requests[0]!.body)).toMatchObject({ event: 'flow_completed', flow_id: unhinted });
    // Once the webhook consumer holds nothing more, the hinted end was handled too.
    const consumer = await jetstream(nc).consumers.get(topology().eventsStream, 'executor-webhook-succeeded');
    await waitFor('every flow end to be handled', async () => {
      const info = await consumer.info();
      return info.num_pending === 0 && info.num_ack_pending === 0 ? true : undefined;
    });
    expect(receiver.requests.map((r) => JSON.parse(r.body).flow_id)).toEqual([unhinted]);
    expect((await events(hinted)).filter((e) => e.type.startsWith('flow.webhook'))).toEqual([]);
  });
});
