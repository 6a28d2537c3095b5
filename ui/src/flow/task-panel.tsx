import type { FlowView, QueueView, StoredEvent } from '@taskstream/client';
import type { TaskView } from '@taskstream/domain';
import { useEffect, useState } from 'react';
import { Json } from '../common/components.js';
import { TASK_LOOK } from '../common/status.js';
import { StatusBadge } from '../common/status-badge.js';
import { formatDuration, formatTime } from '../common/time.js';
import { useSession } from '../session/session.js';
import { ApprovalForm } from './approval-form.js';
import { SignalForm } from '../actions/signal-form.js';
import { awaitedSignal, resolvedInput, waitingReason } from './waiting-reason.js';

interface TaskPanelProps {
  flowId: string;
  task: TaskView;
  view: FlowView;
  /** The events up to the state shown. */
  events: readonly StoredEvent[];
  /** The live state (actions are offered), or a past one (time travel: read only). */
  live: boolean;
}

/** One task: why it waits, its resolved input, output, error and attempts; an approval or a signal to send when it waits for one. */
export function TaskPanel({ flowId, task, view, events, live }: TaskPanelProps) {
  const { client, can } = useSession();
  const queue = useQueueWhenHeld(task);
  const reason = waitingReason(task, view, events, queue);
  const input = resolvedInput(task, events);
  const approval = task.status === 'waiting' && (task.output as { awaiting_approval?: boolean } | undefined)?.awaiting_approval === true;
  const signal = awaitedSignal(task, events);
  return (
    <section className="panel task-panel" aria-label={`Task ${task.id}`}>
      <header className="panel-header">
        <h2>Task {task.id}</h2>
        <StatusBadge look={TASK_LOOK[task.status]} />
      </header>
      <TaskFacts task={task} reason={reason} />
      {live && approval && can('submit') && <ApprovalForm client={client} flowId={flowId} task={task} />}
      {live && signal !== undefined && can('submit') && <SignalForm client={client} fixedName={signal} />}
      <h3>{input?.resolved ? 'Input (resolved)' : 'Input (as written; references resolve when the task is ready)'}</h3>
      <Json value={input?.input} label="Input" />
      <details>
        <summary>Config{input?.resolved ? ' (resolved)' : ''}</summary>
        <Json value={input?.config} label="Config" />
      </details>
      <h3>Output</h3>
      <Json value={task.output} label="Output" />
      {task.error && (
        <>
          <h3>Error</h3>
          <div className="task-error" role="note">
            <p>
              <strong>{task.error.code}</strong>: {task.error.message}
            </p>
            {task.error.stderr_tail && <pre className="json">{task.error.stderr_tail}</pre>}
          </div>
        </>
      )}
      <Attempts task={task} />
    </section>
  );
}

/** Where and how the task runs, and why it waits. */
function TaskFacts({ task, reason }: { task: TaskView; reason: string | undefined }) {
  return (
    <dl className="facts">
      <dt>Executor</dt>
      <dd>{task.executor}</dd>
      <dt>Queue</dt>
      <dd>{task.queue}</dd>
      {task.depends_on.length > 0 && (
        <>
          <dt>Depends on</dt>
          <dd>{task.depends_on.join(', ')}</dd>
        </>
      )}
      {reason !== undefined && (
        <>
          <dt>Waiting</dt>
          <dd className="waiting-reason">{reason}</dd>
        </>
      )}
      <dt>Duration</dt>
      <dd>{formatDuration(task.duration_ms)}</dd>
      {task.instance_of !== undefined && (
        <>
          <dt>Instance of</dt>
          <dd>{task.instance_of}</dd>
        </>
      )}
      {task.reason !== undefined && (
        <>
          <dt>Reason</dt>
          <dd>{task.reason}</dd>
        </>
      )}
    </dl>
  );
}

/** Every attempt the view keeps: when it started, how long it took, how it ended, the retry delay after it. */
function Attempts({ task }: { task: TaskView }) {
  return (
    <>
      <h3>Attempts ({task.attempts_total})</h3>
      {task.attempts.length === 0 ? (
        <p className="muted">No attempt yet.</p>
      ) : (
        <table className="attempts">
          <thead>
            <tr>
              <th scope="col">#</th>
              <th scope="col">Started</th>
              <th scope="col">Took</th>
              <th scope="col">Outcome</th>
              <th scope="col">Retry after</th>
            </tr>
          </thead>
          <tbody>
            {task.attempts.map((attempt) => (
              <tr key={attempt.attempt}>
                <td>{attempt.attempt}</td>
                <td>{formatTime(attempt.started_at)}</td>
                <td>{formatDuration(attempt.duration_ms)}</td>
                <td>
                  {attempt.outcome ?? 'running'}
                  {attempt.error ? `: ${attempt.error.message}` : ''}
                </td>
                <td>{attempt.retry_delay_ms === undefined ? '—' : formatDuration(attempt.retry_delay_ms)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

/** The task's queue (its policy and running count) while the dispatcher holds the task, for the waiting reason's numbers. */
function useQueueWhenHeld(task: TaskView): QueueView | undefined {
  const { client } = useSession();
  const [queue, setQueue] = useState<QueueView | undefined>(undefined);
  const held = task.status === 'ready' && task.waiting_reason !== undefined;
  useEffect(() => {
    if (!held) return setQueue(undefined);
    let current = true;
    client.queues
      .get(task.queue)
      .then((answer) => current && setQueue(answer))
      .catch(() => current && setQueue(undefined));
    return () => {
      current = false;
    };
  }, [client, held, task.queue, task.attempts_total]);
  return queue;
}
