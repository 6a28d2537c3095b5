import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  cloneState,
  decide,
  evolve,
  nextAfterAttempt,
  shownWebhookUrl,
  validateFlow,
  webhookBody,
  webhookDeliveryWindowMs,
  webhookId,
  webhookRetryDelayMs,
  webhookTarget,
  WEBHOOK_MAX_ATTEMPTS,
  type FlowDefinition,
  type FlowEvent,
  type FlowState,
} from '../src/index.js';
import { dagArbitrary, FLOW, simulate, stamp } from './fixtures.js';

const problems = (input: unknown) => {
  const result = validateFlow(input);
  return result.ok ? [] : result.problems;
};
const flowWith = (webhooks: unknown) => ({ webhooks, tasks: [{ id: 'a', executor: 'noop' }] });

describe('the flow field webhooks', () => {
  it('is recorded in the definition, nulls dropped, and is no longer an unknown field', () => {
    const result = validateFlow(flowWith({ on_complete: 'https://hooks.example.com/done?token=x', on_failure: null, secret: 'ci.hooks' }));
    expect(result.ok && result.flow.webhooks).toEqual({ on_complete: 'https://hooks.example.com/done?token=x', secret: 'ci.hooks' });
    expect(result.ok && result.flow.warnings).toBeUndefined();
    expect(result.ok && result.warnings).toEqual([]);
  });

  it('records nothing when no URL is given', () => {
    const result = validateFlow(flowWith({ on_complete: null }));
    expect(result.ok && 'webhooks' in result.flow).toBe(false);
  });

  it('refuses what could never be called, each problem at its path', () => {
    expect(
      problems(
        flowWith({ on_complete: 'ftp://example.com/x', on_failure: 'not a url', secret: 'has space', on_completed: 'https://x.example/' }),
      ),
    ).toEqual([
      { path: 'webhooks.on_complete', message: 'must use http or https, not ftp' },
      { path: 'webhooks.on_failure', message: 'must be an absolute http or https URL, such as https://hooks.example.com/flows' },
      { path: 'webhooks.secret', message: 'must name a secret: 1 to 128 letters, digits, "_", "-" or "."' },
      { path: 'webhooks.on_completed', message: 'unknown field "on_completed"; remove it or check its spelling' },
    ]);
    expect(problems(flowWith({ on_complete: 'https://user:pw@hooks.example.com/' }))).toEqual([
      { path: 'webhooks.on_complete', message: expect.stringMatching(/^must not carry a user name or password; set webhooks.secret/) },
    ]);
    expect(problems(flowWith({ on_complete: `https://hooks.example.com/${'a'.repeat(2048)}` }))).toEqual([{ path: 'webhooks.on_complete', message: 'must be at most 2048 characters' }]);
    expect(problems(flowWith('https://hooks.example.com/'))).toEqual([{ path: 'webhooks', message: expect.stringMatching(/^must be an object such as/) }]);
    expect(problems(flowWith({ on_complete: 42 }))).toEqual([{ path: 'webhooks.on_complete', message: expect.stringMatching(/must be a URL/) }]);
  });
});

describe('which webhook a flow end calls', () => {
  const def = { webhooks: { on_complete: 'https://a.example/ok', on_failure: 'https://a.example/ko', secret: 's' } } as Pick<FlowDefinition, 'webhooks'>;

  it('calls on_complete after success, on_failure after failure or cancel, nothing otherwise', () => {
    expect(webhookTarget(def, 'flow.succeeded')).toEqual({ webhook: 'on_complete', url: 'https://a.example/ok', secret: 's' });
    expect(webhookTarget(def, 'flow.failed')).toEqual({ webhook: 'on_failure', url: 'https://a.example/ko', secret: 's' });
    expect(webhookTarget(def, 'flow.cancelled')).toMatchObject({ webhook: 'on_failure' });
    expect(webhookTarget(def, 'task.failed')).toBeUndefined();
    expect(webhookTarget({ webhooks: { on_failure: 'https://a.example/ko' } }, 'flow.succeeded')).toBeUndefined();
    expect(webhookTarget({}, 'flow.failed')).toBeUndefined();
  });

  it('shows URLs without query, fragment or credentials', () => {
    expect(shownWebhookUrl('https://u:p@hooks.example.com:8443/a/b?token=secret#x')).toBe('https://hooks.example.com:8443/a/b?…');
    expect(shownWebhookUrl('http://127.0.0.1:9/done')).toBe('http://127.0.0.1:9/done');
    expect(webhookId(FLOW)).toBe(`msg_${FLOW}`);
  });
});

describe('the retry schedule', () => {
  it('doubles from 1 s for at most WEBHOOK_MAX_ATTEMPTS attempts', () => {
    const delays = Array.from({ length: WEBHOOK_MAX_ATTEMPTS + 1 }, (_, i) => webhookRetryDelayMs(i + 1));
    expect(delays).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, undefined, undefined]);
    expect(webhookRetryDelayMs(0)).toBeUndefined();
    expect(webhookRetryDelayMs(1.5)).toBeUndefined();
    // Documented in docs/flows.md: 127 s of waits plus 10 s per attempt at most.
    expect(webhookDeliveryWindowMs()).toBe(127_000 + 8 * 10_000);
  });

  it('delivers on 2xx, retries other answers and failures, gives up when attempts or deliveries run out', () => {
    expect(nextAfterAttempt(1, { kind: 'answered', status: 204 }, false)).toEqual({ kind: 'delivered' });
    expect(nextAfterAttempt(1, { kind: 'answered', status: 500 }, false)).toEqual({ kind: 'retry', delayMs: 1_000 });
    expect(nextAfterAttempt(3, { kind: 'answered', status: 302 }, false)).toEqual({ kind: 'retry', delayMs: 4_000 });
    expect(nextAfterAttempt(2, { kind: 'failed', failure: 'request failed: ECONNREFUSED' }, false)).toEqual({ kind: 'retry', delayMs: 2_000 });
    expect(nextAfterAttempt(8, { kind: 'answered', status: 503 }, false)).toEqual({ kind: 'abandon', code: 'ATTEMPTS_EXHAUSTED', reason: 'gave up after 8 attempts; the last answer was HTTP 503' });
    expect(nextAfterAttempt(2, { kind: 'failed', failure: 'x' }, true)).toMatchObject({ kind: 'abandon', code: 'DELIVERIES_EXHAUSTED' });
    expect(nextAfterAttempt(1, { kind: 'refused', code: 'SSRF_BLOCKED', failure: 'loopback addresses are blocked' }, false)).toEqual({
      kind: 'abandon',
      code: 'SSRF_BLOCKED',
      reason: 'loopback addresses are blocked',
    });
    expect(nextAfterAttempt(8, { kind: 'answered', status: 200 }, true)).toEqual({ kind: 'delivered' });
  });
});

const webhookEvents = (flow = FLOW): FlowEvent[] => [
  stamp({ type: 'flow.webhook_attempted', flow_id: flow, data: { webhook: 'on_complete', url: 'https://a.example/', webhook_id: webhookId(flow), attempt: 1, event: 'flow_completed', status: 500, failure: 'answered HTTP 500', duration_ms: 3, signed: true, secret: 'webhooks', retry_in_ms: 1000 } }),
  stamp({ type: 'flow.webhook_attempted', flow_id: flow, data: { webhook: 'on_complete', url: 'https://a.example/', webhook_id: webhookId(flow), attempt: 2, event: 'flow_completed', status: 200, duration_ms: 3, signed: false } }),
  stamp({ type: 'flow.webhook_delivered', flow_id: flow, data: { webhook: 'on_complete', url: 'https://a.example/', webhook_id: webhookId(flow), attempts: 2, status: 200 } }),
  stamp({ type: 'flow.webhook_abandoned', flow_id: flow, data: { webhook: 'on_complete', url: 'https://a.example/', webhook_id: webhookId(flow), attempts: 2, reason: 'x', code: 'SSRF_BLOCKED' } }),
];

describe('webhook events never change a flow', () => {
  it('leave every finished flow as it was, and the decider decides nothing on them', () => {
    fc.assert(
      fc.property(dagArbitrary, fc.array(fc.nat(), { minLength: 1, maxLength: 20 }), fc.option(fc.nat({ max: 10 }), { nil: undefined }), (dag, choices, cancelAt) => {
        const { state } = simulate(dag.def, dag.outcomes, choices, cancelAt);
        expect(['succeeded', 'failed', 'cancelled']).toContain(state!.status);
        const before = cloneState(state!);
        let after: FlowState | null = state;
        for (const event of webhookEvents()) {
          after = evolve(after, event);
          expect(decide(after, event)).toEqual([]);
        }
        expect(after).toEqual(before);
        expect(webhookBody(after!)).toEqual(webhookBody(before));
      }),
      { numRuns: 100 },
    );
  });

  it('describes the ended flow in Tasked terms', () => {
    const def = validateFlow({ queue: 'ci', tasks: [{ id: 'a', executor: 'noop' }, { id: 'b', executor: 'noop', depends_on: ['a'] }, { id: 'c', executor: 'noop' }] });
    if (!def.ok) throw new Error('invalid');
    const { state } = simulate(def.flow, new Map([['a', true], ['b', true], ['c', false]]), [0]);
    expect(webhookBody(state!)).toEqual({ event: 'flow_failed', flow_id: FLOW, queue_id: 'ci', state: 'failed', task_count: 3, tasks_succeeded: 2, tasks_failed: 1 });
    const ok = simulate(def.flow, new Map([['a', true], ['b', true], ['c', true]]), [0]).state!;
    expect(webhookBody(ok)).toEqual({ event: 'flow_completed', flow_id: FLOW, queue_id: 'ci', state: 'succeeded', task_count: 3, tasks_succeeded: 3, tasks_failed: 0 });
    const running = evolve(null, stamp({ type: 'flow.submitted', flow_id: FLOW, data: { definition: def.flow } }))!;
    expect(() => webhookBody(running)).toThrow(/has ended/);
  });
});
