import { createHash } from 'node:crypto';
import { EVENT_VERSION, evolve, taskedCounts, taskedFlowState, taskedTaskState, toFlowView, validateFlow, type FlowEvent, type FlowState, type TaskStatus } from '@taskstream/domain';
import { describe, expect, it } from 'vitest';
import { apiError, problemsError } from '../src/errors.js';
import { flowProblems, fromApiError, notFound, scheduleProblems, TaskedError, toTasked } from '../src/tasked/errors.js';
import { exportDocument, flowDetail, flowResponse, fromTaskedFlow, policyFromTasked, retriesRemaining, taskedBackoff, taskedQueueConfig, type TaskFacts } from '../src/tasked/shapes.js';
import { eventsFor } from '../src/tasked/sse.js';

const FLOW = '01JAAAAAAAAAAAAAAAAAAAAAAA';
let counter = 0;
const stamp = (event: Record<string, unknown>): FlowEvent => {
  counter++;
  const id = `01J${counter.toString(32).toUpperCase().replace(/[ILOU]/g, 'X').padStart(23, '0')}`;
  return { ...event, id, version: EVENT_VERSION, flow_id: FLOW, time: new Date(Date.UTC(2026, 0, 1) + counter * 1000).toISOString() } as FlowEvent;
};

/** A flow as Tasked's Rust client serialises it: every absent option written as null. */
const rustClientFlow = {
  tasks: [
    { id: 'build.linux', executor: 'noop', config: null, input: null, depends_on: [], timeout_secs: null, retries: null, backoff: null, condition: null, spawn_output: [] },
    { id: 'a/b', executor: 'noop', config: null, input: { n: 1 }, depends_on: ['build.linux'], timeout_secs: 30, retries: 2, backoff: { fixed: { delay_ms: 100 } }, condition: null, spawn_output: [] },
  ],
  webhooks: null,
  fail_fast: false,
};

describe("Tasked's states", () => {
  it('maps every Taskstream task status onto one of Tasked\'s seven', () => {
    const table: Record<TaskStatus, string> = {
      pending: 'pending',
      ready: 'ready',
      waiting: 'running',
      dispatched: 'running',
      running: 'running',
      succeeded: 'succeeded',
      skipped: 'succeeded',
      failed: 'failed',
      timed_out: 'failed',
      upstream_failed: 'cancelled',
      cancelled: 'cancelled',
    };
    for (const [status, state] of Object.entries(table)) expect(taskedTaskState(status as TaskStatus), status).toBe(state);
  });

  it('calls a task between attempts delayed, as Tasked does while a retry waits', () => {
    expect(taskedTaskState('running', 'failed')).toBe('delayed');
    expect(taskedTaskState('dispatched', 'timed_out')).toBe('delayed');
    expect(taskedTaskState('running', undefined)).toBe('running');
    expect(taskedTaskState('failed', 'failed')).toBe('failed');
  });

  it('keeps a flow running until it has ended, cancelling included', () => {
    expect(['submitted', 'running', 'cancelling', 'succeeded', 'failed', 'cancelled'].map((s) => taskedFlowState(s as never))).toEqual(['running', 'running', 'running', 'succeeded', 'failed', 'cancelled']);
  });

  it('counts skipped tasks as succeeded and timed-out ones as failed, never cascaded ones', () => {
    expect(taskedCounts({ succeeded: 2, skipped: 1, failed: 1, timed_out: 1, upstream_failed: 3, cancelled: 2 })).toEqual({ tasks_succeeded: 3, tasks_failed: 2 });
  });

  it("counts retries left from the task's, else the queue's, else Tasked's 3", () => {
    const facts = (attempts: Array<{ outcome?: string }>, retries?: number): TaskFacts => ({
      id: 'a',
      executor: 'noop',
      queue: 'q',
      status: 'running',
      attempts,
      attemptsTotal: attempts.length,
      spec: { config: {}, depends_on: [], ...(retries !== undefined && { retries }) },
    });
    expect(retriesRemaining(facts([]), undefined)).toBe(3);
    expect(retriesRemaining(facts([{}]), { max_retries: 5 })).toBe(5);
    expect(retriesRemaining(facts([{ outcome: 'failed' }, {}], 2), undefined)).toBe(1);
    expect(retriesRemaining(facts([{ outcome: 'failed' }, { outcome: 'failed' }, { outcome: 'failed' }], 2), undefined)).toBe(0);
  });
});

describe("flows as Tasked's clients send them", () => {
  it('reads the nulls and empty lists a Tasked client writes, taking the queue from the URL', () => {
    const flow = fromTaskedFlow({ ...rustClientFlow, queue: 'elsewhere' }, 'emails');
    const checked = validateFlow(flow);
    expect(checked.ok, JSON.stringify(checked)).toBe(true);
    if (!checked.ok) return;
    expect(checked.flow.queue).toBe('emails');
    expect(checked.flow.tasks.map((t) => [t.id, t.queue, t.retries, t.timeout_secs, t.backoff?.type, t.input])).toEqual([
      ['build.linux', 'emails', undefined, undefined, undefined, undefined],
      ['a/b', 'emails', 2, 30, 'fixed', { n: 1 }],
    ]);
    expect(checked.flow.fail_fast).toBeUndefined();
  });

  it("names a flow's problems with Tasked's code for the first", () => {
    const codeOf = (flow: unknown) => {
      const checked = validateFlow(fromTaskedFlow(flow, 'q'));
      if (checked.ok) throw new Error('valid');
      const error = flowProblems(checked.problems);
      return [error.status, error.error];
    };
    expect(codeOf({ tasks: [{ id: 'a', executor: 'teleport' }] })).toEqual([400, 'no_executor']);
    expect(codeOf({ tasks: [{ id: 'a', executor: 'noop', depends_on: ['x'] }] })).toEqual([400, 'invalid_graph']);
    expect(codeOf({ tasks: [{ id: 'a', executor: 'noop', depends_on: ['a'] }] })).toEqual([400, 'invalid_graph']);
    expect(codeOf({ tasks: [{ id: 'a', executor: 'noop' }, { id: 'a', executor: 'noop' }] })).toEqual([400, 'invalid_graph']);
    expect(codeOf({ tasks: [] })).toEqual([400, 'invalid_graph']);
    expect(codeOf({ tasks: [{ id: 'a' }] })).toEqual([422, 'invalid_flow']);
    const two = validateFlow({ tasks: [{ id: 'a', executor: 'teleport' }, { id: 'b', executor: 'noop', depends_on: ['x'] }] });
    if (two.ok) throw new Error('valid');
    const body = flowProblems(two.problems).toJSON();
    expect(body).toMatchObject({ error: 'no_executor', message: expect.stringMatching(/^tasks\[0\]\.executor: .*\(and 1 more, listed in "problems"\)$/) });
    expect(body.problems).toHaveLength(2);
  });
});

describe("Taskstream's errors as Tasked's", () => {
  it("answers Tasked's code and status, with Taskstream's message", () => {
    const cases: Array<[TaskedError, number, string]> = [
      [fromApiError(apiError('UNAUTHORIZED')), 401, 'unauthorized'],
      [fromApiError(apiError('INVALID_APPROVAL_CODE', 'gate')), 403, 'invalid_approval_code'],
      [fromApiError(apiError('TASK_NOT_WAITING', 'gate', 'it was already approved')), 409, 'invalid_state_transition'],
      [fromApiError(apiError('BODY_TOO_LARGE', 1024)), 413, 'payload_too_large'],
      [fromApiError(apiError('INVALID_PARAMETER', 'with_artifacts', 'must be true or false')), 400, 'invalid_parameter'],
      [fromApiError(problemsError('INVALID_QUEUE_POLICY', [{ path: 'concurrency', message: 'must be at least 1' }])), 400, 'invalid_queue_config'],
      [fromApiError(apiError('INTERNAL')), 500, 'internal_error'],
    ];
    for (const [error, status, code] of cases) expect([error.status, error.error], code).toEqual([status, code]);
    expect(fromApiError(apiError('UNAUTHORIZED')).toJSON()).toEqual({ error: 'unauthorized', message: 'Invalid or missing API key' });
    expect(fromApiError(apiError('INTERNAL')).toJSON()).toEqual({ error: 'internal_error', message: 'internal error' });
    expect(fromApiError(problemsError('INVALID_QUEUE_POLICY', [{ path: 'concurrency', message: 'must be at least 1' }])).message).toBe('concurrency: must be at least 1');
  });

  it("answers fastify's own refusals as Tasked's, and a failure of the gateway as nothing it knows", () => {
    const framework = (code: string, statusCode: number) => Object.assign(new Error(code), { code, statusCode });
    expect(toTasked(framework('FST_ERR_CTP_BODY_TOO_LARGE', 413), 1024, 'application/json')?.toJSON()).toMatchObject({ error: 'payload_too_large' });
    expect(toTasked(framework('FST_ERR_CTP_INVALID_MEDIA_TYPE', 415), 1024, 'application/xml')?.toJSON()).toMatchObject({ error: 'unsupported_media_type', message: expect.stringContaining('application/xml') });
    expect(toTasked(framework('FST_ERR_SOMETHING', 400), 1024, 'x')?.status).toBe(400);
    expect(toTasked(new Error('a bug'), 1024, 'x')).toBeUndefined();
    expect(toTasked(notFound.flow('f'), 0, '')?.toJSON()).toEqual({ error: 'flow_not_found', message: "Flow 'f' not found" });
  });

  it("answers a schedule's cron problem as invalid_cron_expression, its flow's as a submission's", () => {
    expect(scheduleProblems([{ path: 'cron', message: 'has 4 fields' }]).error).toBe('invalid_cron_expression');
    expect(scheduleProblems([{ path: 'flow.tasks[0].executor', message: 'unknown executor "x"; use one of noop' }]).error).toBe('no_executor');
    expect(scheduleProblems([{ path: 'name', message: 'too long' }]).status).toBe(422);
  });
});

describe("queues as Tasked's QueueConfig", () => {
  it("gives a queue created without a config Tasked's defaults, and reads a Tasked client's config", () => {
    expect(policyFromTasked(undefined)).toEqual({ policy: { concurrency: 10, max_retries: 3, timeout_secs: 300, backoff: { exponential: { initial_delay_ms: 1000 } } } });
    const sent = { concurrency: 2, max_retries: 1, timeout_secs: 60, backoff: { exponential_jitter: { initial_delay_ms: 50 } }, rate_limit: null, retention_secs: 2592000 };
    expect(policyFromTasked(sent)).toEqual({ policy: { concurrency: 2, max_retries: 1, timeout_secs: 60, backoff: { exponential_jitter: { initial_delay_ms: 50 } } } });
    expect(policyFromTasked({ max_pending_flows: 5 })).toEqual({ problems: [{ path: 'config.max_pending_flows', message: expect.stringContaining('not supported') }] });
  });

  it("answers a policy as Tasked's QueueConfig", () => {
    expect(taskedBackoff({ type: 'exponential', initial_delay_ms: 50, max_delay_ms: 1, multiplier: 2, jitter: true })).toEqual({ exponential_jitter: { initial_delay_ms: 50 } });
    expect(taskedBackoff({ type: 'fixed', initial_delay_ms: 20, max_delay_ms: 1, multiplier: 2, jitter: false })).toEqual({ fixed: { delay_ms: 20 } });
    expect(taskedQueueConfig({ concurrency: 3, rate_limit: { per_second: 2.5 } })).toEqual({ concurrency: 3, rate_limit: { max_burst: 3, per_second: 2.5 }, retention_secs: null });
    // Tasked's timeouts are whole seconds: a fractional one is rounded up.
    expect(taskedQueueConfig({ timeout_secs: 0.5 })).toMatchObject({ timeout_secs: 1 });
  });
});

/** Folds `events`, collecting what a Tasked client is sent after each. */
function stream(events: FlowEvent[]): { state: FlowState; sent: string[] } {
  let state: FlowState | null = null;
  const sent = new Map();
  const outputs = new Map();
  const out: string[] = [];
  for (const [i, event] of events.entries()) {
    state = evolve(state, event, i + 1);
    out.push(...eventsFor(state!, event, sent, outputs));
  }
  return { state: state!, sent: out };
}

const parse = (text: string) => {
  const [, event, data] = /^event: (\w+)\ndata: (.*)\n\n$/s.exec(text)!;
  return { event, data: JSON.parse(data!) };
};

describe("the event stream's events", () => {
  const checked = validateFlow(fromTaskedFlow({ tasks: [{ id: 'gate', executor: 'approval', config: { message: 'ship?' } }, { id: 'b', executor: 'noop', depends_on: ['gate'] }] }, 'q'));
  if (!checked.ok) throw new Error('fixture');
  const definition = checked.flow;
  const history = [
    stamp({ type: 'flow.submitted', data: { definition } }),
    stamp({ type: 'task.waiting', task_id: 'gate', data: { output: { awaiting_approval: true, message: 'ship?', code: 'c'.repeat(32) } } }),
    stamp({ type: 'task.succeeded', task_id: 'gate', attempt: 1, data: { output: { approved: true }, duration_ms: 5 } }),
    stamp({ type: 'task.ready', task_id: 'b', data: { queue: 'q', priority: 0, spec: definition.tasks[1] } }),
    stamp({ type: 'task.started', task_id: 'b', attempt: 1, data: { executor_id: 'x' } }),
    stamp({ type: 'task.attempt_failed', task_id: 'b', attempt: 1, data: { error: { message: 'boom', code: 'X', retryable: true }, duration_ms: 1 } }),
    stamp({ type: 'task.started', task_id: 'b', attempt: 2, data: { executor_id: 'x' } }),
    stamp({ type: 'task.succeeded', task_id: 'b', attempt: 2, data: { output: null, duration_ms: 1 } }),
    stamp({ type: 'flow.succeeded', data: {} }),
  ];

  it("sends Tasked's task_state on each change, task_output for a running task's output, then flow_complete", () => {
    const { sent } = stream(history);
    const events = sent.map(parse);
    expect(events.map((e) => `${e.event}:${e.data.task_id ?? e.data.flow_id}:${e.data.state ?? ''}`)).toEqual([
      'task_state:gate:pending',
      'task_state:b:pending',
      'task_state:gate:running',
      'task_output:gate:',
      'task_state:gate:succeeded',
      'task_state:b:ready',
      'task_state:b:running',
      'task_state:b:delayed',
      'task_state:b:running',
      'task_state:b:succeeded',
      `flow_complete:${FLOW}:succeeded`,
    ]);
    expect(events[2]!.data).toEqual({ task_id: 'gate', state: 'running', output: { awaiting_approval: true, message: 'ship?', code: 'c'.repeat(32) }, error: null, started_at: null, completed_at: null });
    expect(events.at(-1)!.data).toEqual({ flow_id: FLOW, state: 'succeeded', task_count: 2, tasks_succeeded: 2, tasks_failed: 0 });
  });

  it("answers the flow's view as Tasked's FlowResponse and FlowDetailResponse", () => {
    const { state } = stream(history.slice(0, 6));
    const view = toFlowView(state);
    expect(flowResponse(view, true)).toEqual({
      id: FLOW,
      queue_id: 'q',
      state: 'running',
      task_count: 2,
      tasks_succeeded: 1,
      tasks_failed: 0,
      fail_fast: true,
      created_at: view.submitted_at,
      // The latest start or end of a task: b's start (its failed attempt records no task time).
      updated_at: history[4]!.time,
    });
    const detail = flowDetail(view, definition, () => ({ max_retries: 2, timeout_secs: 30 }));
    expect(detail.tasks.map((t) => [t.id, t.state, t.retries_remaining, t.timeout_secs, t.error])).toEqual([
      ['gate', 'succeeded', 2, 30, null],
      ['b', 'delayed', 1, 30, 'boom'],
    ]);
    expect(detail.tasks[0]).toMatchObject({ flow_id: FLOW, queue_id: 'q', executor_type: 'approval', input: null, output: { approved: true }, created_at: view.submitted_at, completed_at: history[2]!.time });
  });

  it("exports Tasked's document, its checksum the SHA-256 of the document without it", () => {
    const { state } = stream(history);
    const document = exportDocument(state, () => ({ max_retries: 4 }), [{ name: 'out.txt', size_bytes: 2, data_base64: 'aGk=' }], '2026-01-02T00:00:00.000Z');
    const { checksum, ...rest } = document;
    expect(checksum).toBe(createHash('sha256').update(JSON.stringify(rest)).digest('hex'));
    expect(Object.keys(document)).toEqual(['version', 'flow', 'tasks', 'artifacts', 'checksum', 'exported_at']);
    expect(document.flow).toMatchObject({ id: FLOW, queue_id: 'q', state: 'succeeded', task_count: 2, tasks_succeeded: 2, tasks_failed: 0, trigger_depth: 0, flow_def: { fail_fast: false, webhooks: null } });
    expect(document.tasks[1]).toMatchObject({ id: 'b', executor_type: 'noop', state: 'succeeded', depends_on: ['gate'], retries_remaining: 3, timeout_secs: 300 });
    expect(document.tasks[0]).not.toHaveProperty('depends_on');
  });
});
