import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  assemblePagedView,
  fold,
  INLINE_TASK_VIEW_BYTES,
  MAX_VIEW_BYTES,
  pageCount,
  TASK_PAGE_SIZE,
  tasksFromPages,
  toFlowView,
  toFlowViewHeader,
  toStoredTaskView,
  toTaskView,
  VIEW_ATTEMPTS,
  VIEW_MESSAGE_CHARS,
  VIEW_TAIL_CHARS,
  VIEW_TASK_IDS,
  VIEW_TEXT_CHARS,
  type AttemptRecord,
  type FlowState,
  type StoredTaskPage,
  type StoredTaskView,
  type TaskError,
  type TaskState,
} from '../src/index.js';
import { dagArbitrary, definition, ev, FLOW, simulate, stamp } from './fixtures.js';

const bytes = (value: unknown) => new TextEncoder().encode(JSON.stringify(value)).length;
const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function attemptFailed(task: string, attempt: number, error: TaskError) {
  return stamp({ type: 'task.attempt_failed', flow_id: FLOW, task_id: task, attempt, data: { error, duration_ms: 5 } });
}

/** One task run `attempts` times, every attempt failing with `error`. */
function failedTask(attempts: number, error: TaskError): FlowState {
  const def = definition([{ id: 'a' }]);
  const events = [ev.submitted(def), ev.started(), ev.ready('a', def)];
  for (let n = 1; n <= attempts; n++) events.push(ev.taskStarted('a', n), attemptFailed('a', n, error));
  events.push(stamp({ type: 'task.failed', flow_id: FLOW, task_id: 'a', attempt: attempts, data: { error, duration_ms: 5 } }));
  return fold(events)!;
}

describe('task views are bounded', () => {
  it('keep the last attempts and count them all', () => {
    const state = failedTask(25, { message: 'boom', code: 'EXIT_CODE', retryable: true });
    const view = toFlowView(state).tasks[0]!;
    expect(view.attempts_total).toBe(25);
    expect(view.attempts.map((a) => a.attempt)).toEqual(Array.from({ length: VIEW_ATTEMPTS }, (_, i) => 16 + i));
    expect(state.tasks.a!.attempts).toHaveLength(25);
  });

  it('keep the start of messages and the end of output tails, saying how much the events hold besides', () => {
    const message = `command failed: ${'m'.repeat(5_000)}`;
    const stderr = `${'early '.repeat(1_000)}the last line`;
    const state = failedTask(1, { message, code: 'EXIT_CODE', retryable: true, stderr_tail: stderr, stdout_tail: 'short' });
    const { error, attempts } = toFlowView(state).tasks[0]!;
    expect(error!.message.startsWith(message.slice(0, VIEW_MESSAGE_CHARS))).toBe(true);
    expect(error!.message).toContain(`${message.length - VIEW_MESSAGE_CHARS} more characters in the events`);
    expect(error!.stderr_tail!.endsWith(stderr.slice(-VIEW_TAIL_CHARS))).toBe(true);
    expect(error!.stderr_tail).toContain(`${stderr.length - VIEW_TAIL_CHARS} earlier characters in the events`);
    expect(error!.stdout_tail).toBe('short');
    expect(attempts[0]!.error).toEqual(error);
    expect(state.tasks.a!.error!.message).toBe(message);
  });

  it('never cut a character in half', () => {
    const message = `${'x'.repeat(VIEW_MESSAGE_CHARS - 1)}${'😀'.repeat(10)}`;
    const tail = `${'😀'.repeat(10)}${'y'.repeat(VIEW_TAIL_CHARS - 1)}`;
    const { error } = toFlowView(failedTask(1, { message, code: 'EXIT_CODE', retryable: true, stdout_tail: tail })).tasks[0]!;
    expect(error!.message).not.toMatch(loneSurrogate);
    expect(error!.stdout_tail).not.toMatch(loneSurrogate);
  });

  it('list at most VIEW_TASK_IDS upstream tasks, with their number', () => {
    const upstream = Array.from({ length: VIEW_TASK_IDS + 200 }, (_, i) => `u${i}`);
    const def = definition([...upstream.map((id) => ({ id })), { id: 'last', depends_on: upstream }]);
    const state = fold([ev.submitted(def), stamp({ type: 'task.upstream_failed', flow_id: FLOW, task_id: 'last', data: { reason: 'upstream failed', upstream } })])!;
    const view = toFlowView(state).tasks.at(-1)!;
    expect(view.depends_on).toEqual(upstream.slice(0, VIEW_TASK_IDS));
    expect(view.depends_on_total).toBe(upstream.length);
    expect(view.upstream).toEqual(upstream.slice(0, VIEW_TASK_IDS));
    expect(view.upstream_total).toBe(upstream.length);
    expect(toFlowView(state).tasks[0]).not.toHaveProperty('depends_on_total');
  });

  it('fit one stored value in the worst case: every bound reached with characters JSON escapes to six bytes', () => {
    const nasty = (n: number) => '\u0001'.repeat(n);
    const id = (i: number) => `t${String(i).padStart(127, '0')}`;
    const ids = Array.from({ length: 5_000 }, (_, i) => id(i));
    const error: TaskError = { message: nasty(100_000), code: nasty(10_000), retryable: true, exit_code: 1, signal: nasty(10_000), http_status: 500, stdout_tail: nasty(100_000), stderr_tail: nasty(100_000) };
    const attempt = (n: number): AttemptRecord => ({ attempt: n, started_at: '2026-01-01T00:00:00.000Z', finished_at: '2026-01-01T00:00:01.000Z', duration_ms: 1000, outcome: 'failed', error, retry_delay_ms: 1000, executor_id: nasty(10_000) });
    const task: TaskState = {
      id: id(99_999),
      spec: { id: id(99_999), name: nasty(10_000), executor: 'shell', config: {}, depends_on: ids, queue: 'q'.repeat(64), priority: 0 },
      status: 'failed',
      attempts: Array.from({ length: 100 }, (_, i) => attempt(i + 1)),
      ready_at: '2026-01-01T00:00:00.000Z',
      started_at: '2026-01-01T00:00:00.000Z',
      finished_at: '2026-01-01T00:00:01.000Z',
      duration_ms: 1000,
      error,
      output: { text: '中'.repeat(1_300) },
      upstream: ids,
      reason: nasty(100_000),
    };
    const view = toTaskView(task);
    expect(bytes({ index: 99_999, task: view })).toBeLessThanOrEqual(MAX_VIEW_BYTES);
    expect(view.name!.length).toBeLessThan(VIEW_TEXT_CHARS + 50);
    expect(view.attempts[0]!.executor_id!.length).toBeLessThan(VIEW_TEXT_CHARS + 50);
  });

  it("cut the flow's error, which lists every failed task", () => {
    const state = failedTask(1, { message: 'boom', code: 'EXIT_CODE', retryable: true });
    state.error = `10000 tasks failed: ${'t'.repeat(1_300_000)}`;
    expect(toFlowViewHeader(state).error!.length).toBeLessThan(VIEW_MESSAGE_CHARS + 50);
  });
});

describe('paged views', () => {
  it('put back together from a header and tasks in any order equal the whole view', () => {
    fc.assert(
      fc.property(dagArbitrary, fc.nat(), ({ def, outcomes, choices, cancelAt }, seed) => {
        const { log } = simulate(def, outcomes, choices, cancelAt);
        const state = fold(log)!;
        const stored = def.tasks.map((_, i) => toStoredTaskView(state, i));
        const shuffled = stored.map((s, i) => ({ s, k: (i * 7919 + seed) % 104_729 })).sort((a, b) => a.k - b.k).map(({ s }) => s);
        const header = toFlowViewHeader(state);
        expect(header.tasks).toEqual([]);
        expect(header.tasks_paged).toBe(true);
        expect(assemblePagedView(header, shuffled)).toEqual(toFlowView(state));
      }),
    );
  });

  it('put back together from pages in any order, large tasks stored on their own, equal the whole view', () => {
    fc.assert(
      fc.property(dagArbitrary, fc.nat(), fc.nat(), ({ def, outcomes, choices, cancelAt }, seed, ownEvery) => {
        const { log } = simulate(def, outcomes, choices, cancelAt);
        const state = fold(log)!;
        const own: StoredTaskView[] = [];
        const pages: StoredTaskPage[] = Array.from({ length: pageCount(def.tasks.length) }, (_, page) => {
          const first = page * TASK_PAGE_SIZE;
          const tasks = def.tasks.slice(first, first + TASK_PAGE_SIZE).map((_, i) => {
            const stored = toStoredTaskView(state, first + i);
            if ((first + i) % (ownEvery + 2) !== 0) return stored.task;
            own.push(stored);
            return null;
          });
          return { first, tasks };
        });
        const shuffled = pages.map((p, i) => ({ p, k: (i * 7919 + seed) % 104_729 })).sort((a, b) => a.k - b.k).map(({ p }) => p);
        expect(assemblePagedView(toFlowViewHeader(state), tasksFromPages(shuffled, own)!)).toEqual(toFlowView(state));
      }),
    );
  });

  it('are not put together from pages that leave a task out or are out of place', () => {
    const def = definition(Array.from({ length: 40 }, (_, i) => ({ id: `t${i}` })));
    const state = fold([ev.submitted(def), ev.started()])!;
    const page = (first: number) => ({ first, tasks: def.tasks.slice(first, first + TASK_PAGE_SIZE).map((_, i) => toTaskView(state.tasks[`t${first + i}`]!)) });
    const [p0, p1] = [page(0), page(TASK_PAGE_SIZE)];
    expect(tasksFromPages([p1, p0], [])).toHaveLength(40);
    expect(tasksFromPages([p0, { ...p1, tasks: [null, ...p1.tasks.slice(1)] }], [])).toBeNull();
    expect(tasksFromPages([p0, { ...p1, tasks: [null, ...p1.tasks.slice(1)] }], [toStoredTaskView(state, TASK_PAGE_SIZE)])).toHaveLength(40);
    expect(tasksFromPages([p0, { ...p1, first: TASK_PAGE_SIZE + 1 }], [])).toBeNull();
    expect(assemblePagedView(toFlowViewHeader(state), tasksFromPages([p1], [])!)).toBeNull();
  });

  it('keep every page under MAX_VIEW_BYTES: a page holds tasks of INLINE_TASK_VIEW_BYTES at most', () => {
    const emptyPage = JSON.stringify({ first: Number.MAX_SAFE_INTEGER, tasks: Array.from({ length: TASK_PAGE_SIZE }, () => null) }).length;
    expect(emptyPage + TASK_PAGE_SIZE * INLINE_TASK_VIEW_BYTES).toBeLessThanOrEqual(MAX_VIEW_BYTES);
  });

  it('are not put together from tasks that do not make up the header, such as during a layout change', () => {
    const def = definition([{ id: 'a' }, { id: 'b', depends_on: ['a'] }, { id: 'c' }]);
    const state = fold([ev.submitted(def), ev.started(), ev.ready('a', def)])!;
    const header = toFlowViewHeader(state);
    const [a, b, c] = [0, 1, 2].map((i) => toStoredTaskView(state, i));
    expect(assemblePagedView(header, [a!, b!])).toBeNull();
    expect(assemblePagedView(header, [a!, b!, b!])).toBeNull();
    expect(assemblePagedView(header, [a!, b!, { ...c!, index: 3 }])).toBeNull();
    expect(assemblePagedView(header, [c!, a!, b!])).toEqual(toFlowView(state));
  });

  it('take their counts from the tasks, which may be one write ahead of the header', () => {
    const def = definition([{ id: 'a' }, { id: 'b' }]);
    const events = [ev.submitted(def), ev.started(), ev.ready('a', def)];
    const header = toFlowViewHeader(fold(events)!);
    const later = fold([...events, ev.taskStarted('a'), ev.succeeded('a')])!;
    const view = assemblePagedView(header, [0, 1].map((i) => toStoredTaskView(later, i)))!;
    expect(view.counts).toMatchObject({ succeeded: 1, pending: 1, ready: 0 });
    expect(view.tasks[0]!.status).toBe('succeeded');
  });
});
