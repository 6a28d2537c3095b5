import { createServer } from 'node:http';
import { waitFor } from '@taskstream/testing';
import { describe, expect, it } from 'vitest';
import { cleanupAfterEach, expectSettled, startDeployment } from '../support/deployment.js';
import { recordingEndpoint } from '../support/stack.js';

interface ReceivedSpan {
  /** The span as it arrived, to search for what must never be in one. */
  raw: string;
  service: string;
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  attributes: Record<string, unknown>;
}

type OtlpValue = { stringValue?: string; intValue?: string | number; boolValue?: boolean };
type OtlpAttribute = { key: string; value: OtlpValue };
interface OtlpTraces {
  resourceSpans: Array<{
    resource: { attributes: OtlpAttribute[] };
    scopeSpans: Array<{ spans: Array<{ name: string; traceId: string; spanId: string; parentSpanId?: string; attributes?: OtlpAttribute[] }> }>;
  }>;
}

const valueOf = (value: OtlpValue) => value.stringValue ?? (value.intValue !== undefined ? Number(value.intValue) : value.boolValue);
const attributesOf = (list: OtlpAttribute[] = []) => Object.fromEntries(list.map((a) => [a.key, valueOf(a.value)]));

/** A local OTLP/HTTP receiver (JSON encoding), keeping every span it is sent. */
async function otlpReceiver() {
  const spans: ReceivedSpan[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      if (req.url === '/v1/traces') {
        for (const resourceSpans of (JSON.parse(body) as OtlpTraces).resourceSpans) {
          const service = String(attributesOf(resourceSpans.resource.attributes)['service.name']);
          for (const scope of resourceSpans.scopeSpans) {
            for (const span of scope.spans) spans.push({ raw: JSON.stringify(span), service, name: span.name, traceId: span.traceId, spanId: span.spanId, parentSpanId: span.parentSpanId ?? '', attributes: attributesOf(span.attributes) });
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { url: `http://127.0.0.1:${port}`, spans, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

const cleanup = cleanupAfterEach();

describe('traces', () => {
  it('one trace follows a flow from the caller through every service to each step’s own HTTP call', async () => {
    const receiver = await otlpReceiver();
    const target = await recordingEndpoint((req) => (req.url?.startsWith('/fail') ? 500 : 200));
    cleanup(receiver.close, target.close);
    const { gateway } = await startDeployment(cleanup, {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_BSP_SCHEDULE_DELAY: '100',
    });

    // The caller's own trace: the flow continues it.
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const callerSpan = '00f067aa0ba902b7';
    const flow = {
      name: 'traced',
      tasks: [
        { id: 'fetch', executor: 'http', config: { url: `${target.url}/fetch`, method: 'GET' } },
        { id: 'report', executor: 'http', depends_on: ['fetch'], config: { url: `${target.url}/report`, method: 'POST', body: { n: '${tasks.fetch.output.json.n}' } } },
      ],
    };
    const response = await fetch(`${gateway()}/api/v1/flows`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-${callerSpan}-01` },
      body: JSON.stringify(flow),
    });
    expect(response.status).toBe(202);
    const { flow_id } = (await response.json()) as { flow_id: string };
    await expectSettled(gateway, [flow_id]);

    // The call `report` made carries the span that made it, in the caller's trace.
    const reportCall = target.requests.find((r) => r.url === '/report')!;
    const [, calledTrace, calledParent] = String(reportCall.headers.traceparent).split('-');
    expect(calledTrace).toBe(traceId);
    const byId = () => new Map(receiver.spans.map((s) => [s.spanId, s]));
    await waitFor('the span of the call report made', () => byId().get(calledParent!), 15_000);

    // Walk up from that call to the caller: every hop is a service's span, parent to the next.
    const chain = await waitFor(
      'the whole chain of spans up to the caller',
      () => {
        const spans = byId();
        const walked: ReceivedSpan[] = [];
        for (let span = spans.get(calledParent!); span !== undefined; span = spans.get(span.parentSpanId)) walked.push(span);
        return walked.at(-1)?.parentSpanId === callerSpan ? walked : undefined;
      },
      15_000,
    );
    expect(chain.map((s) => `${s.service}: ${s.name}`)).toEqual([
      'taskstream-executor: HTTP POST',
      'taskstream-executor: attempt 1',
      'taskstream-executor: run task',
      'taskstream-dispatcher: dispatch task',
      'taskstream-dispatcher: admit task.ready',
      'taskstream-planner: plan task.succeeded',
      'taskstream-executor: run task',
      'taskstream-dispatcher: dispatch task',
      'taskstream-dispatcher: admit task.ready',
      'taskstream-planner: plan flow.submitted',
      'taskstream-gateway: POST /api/v1/flows',
    ]);
    expect(new Set(chain.map((s) => s.traceId))).toEqual(new Set([traceId]));
    expect(chain[0]!.attributes).toMatchObject({ 'http.request.method': 'POST', 'server.address': '127.0.0.1', 'http.response.status_code': 200 });
    expect(chain[2]!.attributes).toMatchObject({ 'taskstream.flow_id': flow_id, 'taskstream.task_id': 'report' });
    expect(chain[6]!.attributes).toMatchObject({ 'taskstream.flow_id': flow_id, 'taskstream.task_id': 'fetch' });
    expect(chain.at(-1)!.attributes).toMatchObject({ 'taskstream.flow_id': flow_id, 'http.route': '/api/v1/flows', 'http.response.status_code': 202 });
    // No span names a URL's path or query: a secret may be in either.
    expect(receiver.spans.filter((s) => JSON.stringify(s.attributes).includes('/report'))).toEqual([]);

    // A failed step's error text (its URL, the answer's body) stays out of spans: only its code is there.
    const failing = await fetch(`${gateway()}/api/v1/flows`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ tasks: [{ id: 'leaky', executor: 'http', retries: 0, config: { url: `${target.url}/fail?token=span-secret-token`, method: 'GET' } }] }),
    });
    const failed = ((await failing.json()) as { flow_id: string }).flow_id;
    await expectSettled(gateway, [failed], 'failed');
    const attemptSpan = await waitFor('the failed attempt’s span', () => receiver.spans.find((s) => s.name === 'attempt 1' && s.raw.includes('HTTP_STATUS')), 15_000);
    expect(attemptSpan.attributes).toMatchObject({ 'error.type': 'HTTP_STATUS' });
    expect(receiver.spans.filter((s) => s.raw.includes('span-secret-token'))).toEqual([]);
  });
});
