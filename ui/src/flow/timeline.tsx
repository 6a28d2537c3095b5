import type { FlowView } from '@taskstream/client';
import type { TaskView } from '@taskstream/domain';
import { formatDuration } from '../common/time.js';

type SpanKind = 'queued' | 'attempt-succeeded' | 'attempt-failed' | 'attempt-running' | 'retry-wait' | 'waiting';

interface Span {
  kind: SpanKind;
  start: number;
  end: number;
  label: string;
}

const KIND_WORDS: Record<SpanKind, string> = {
  queued: 'queued',
  'attempt-succeeded': 'succeeded',
  'attempt-failed': 'failed',
  'attempt-running': 'running',
  'retry-wait': 'retry wait',
  waiting: 'waiting',
};

const at = (iso: string | undefined) => (iso === undefined ? undefined : Date.parse(iso));

/** What a task's time went to: waiting for its queue, each attempt, the waits between retries, a wait for an approval or signal. */
export function spansOf(task: TaskView, now: number): Span[] {
  const spans: Span[] = [];
  const firstStart = at(task.attempts[0]?.started_at);
  const ready = at(task.ready_at);
  // A task that ended without an attempt waited for something else than an executor: an approval, a signal, a child flow, its map instances.
  const waitedInstead = task.status === 'waiting' || (task.attempts.length === 0 && ['succeeded', 'failed', 'timed_out'].includes(task.status) && !task.reused);
  if (waitedInstead) {
    if (ready !== undefined) spans.push({ kind: 'waiting', start: ready, end: at(task.finished_at) ?? now, label: 'waiting' });
    return spans;
  }
  if (ready !== undefined && (firstStart ?? now) > ready) spans.push({ kind: 'queued', start: ready, end: firstStart ?? at(task.finished_at) ?? now, label: 'queued' });
  task.attempts.forEach((attempt, i) => {
    const start = at(attempt.started_at);
    if (start === undefined) return;
    const end = at(attempt.finished_at) ?? (task.status === 'running' ? now : start);
    const kind: SpanKind = attempt.outcome === undefined ? 'attempt-running' : attempt.outcome === 'succeeded' ? 'attempt-succeeded' : 'attempt-failed';
    spans.push({ kind, start, end, label: `attempt ${attempt.attempt}` });
    if (attempt.retry_delay_ms !== undefined && attempt.finished_at !== undefined) {
      const nextStart = at(task.attempts[i + 1]?.started_at);
      spans.push({ kind: 'retry-wait', start: end, end: nextStart ?? Math.min(now, end + attempt.retry_delay_ms), label: `retry in ${formatDuration(attempt.retry_delay_ms)}` });
    }
  });
  return spans;
}

/** A Gantt chart of the flow: one row a task, its spans placed on the flow's own time line. */
export function Timeline({ view, now = Date.now() }: { view: FlowView; now?: number }) {
  const start = Date.parse(view.submitted_at);
  const end = Math.max(at(view.finished_at) ?? now, start + 1);
  const place = (span: Span) => ({ left: `${((span.start - start) / (end - start)) * 100}%`, width: `${Math.max(0.5, ((span.end - span.start) / (end - start)) * 100)}%` });
  return (
    <div className="timeline">
      <p className="muted">
        From submission to {view.finished_at ? 'the end' : 'now'}: {formatDuration(end - start)}.
      </p>
      <ol className="gantt" aria-label="Timeline of attempts">
        {view.tasks.map((task) => {
          const spans = spansOf(task, now);
          return (
            <li key={task.id} className="gantt-row">
              <span className="gantt-task" title={task.id}>
                {task.id}
              </span>
              <span className="gantt-track">
                {spans.map((span, i) => (
                  <span key={i} className={`gantt-span ${span.kind}`} style={place(span)} title={`${span.label}: ${formatDuration(span.end - span.start)}`}>
                    <span className="visually-hidden">
                      {span.label} ({KIND_WORDS[span.kind]}), {formatDuration(span.end - span.start)};
                    </span>
                  </span>
                ))}
                {spans.length === 0 && <span className="visually-hidden">not started</span>}
              </span>
            </li>
          );
        })}
      </ol>
      <ul className="legend" aria-label="Legend">
        {(Object.keys(KIND_WORDS) as SpanKind[]).map((kind) => (
          <li key={kind}>
            <span className={`gantt-span swatch ${kind}`} aria-hidden="true" /> {KIND_WORDS[kind]}
          </li>
        ))}
      </ul>
    </div>
  );
}
