import type { FlowView } from '@taskstream/client';
import { useMemo, useState } from 'react';
import { Link } from 'wouter';
import { ErrorMessage } from '../common/components.js';
import { FLOW_LOOK, TASK_LOOK } from '../common/status.js';
import { StatusBadge } from '../common/status-badge.js';
import { elapsed, formatDuration, formatTime } from '../common/time.js';
import { useSession } from '../session/session.js';
import { Dag } from './dag.js';
import { FlowActions } from './flow-actions.js';
import { TaskPanel } from './task-panel.js';
import { TimeTravel } from './time-travel.js';
import { Timeline } from './timeline.js';
import { useFlowLive } from './use-flow-live.js';
import { useStateAt } from './use-state-at.js';

/** One flow: its DAG live, a timeline of its attempts, a task's details, time travel over its events, and what the key may do to it. */
export function FlowPage({ flowId }: { flowId: string }) {
  const { client, can } = useSession();
  const live = useFlowLive(client, flowId);
  const [cursor, setCursor] = useState<number | undefined>(undefined);
  const [chosen, setChosen] = useState<string | undefined>(undefined);
  const past = useStateAt(client, flowId, cursor === undefined ? undefined : live.events[cursor]?.seq);
  const traveling = cursor !== undefined;
  // Until the first past state arrives, the live one stays on screen.
  const view = traveling ? (past.view ?? live.view) : live.view;
  const shownState = !traveling ? 'live' : past.current ? 'past' : 'loading';
  const events = useMemo(() => (cursor === undefined ? live.events : live.events.slice(0, cursor + 1)), [live.events, cursor]);
  const selected = view?.tasks.find((t) => t.id === chosen) ?? view?.tasks[0];

  if (!live.view) {
    return (
      <div className="page">
        <h1>Flow {flowId}</h1>
        {live.error ? <ErrorMessage error={live.error} /> : <p className="loading">Loading…</p>}
      </div>
    );
  }
  return (
    <div className="page flow-page">
      <FlowHeader view={live.view} reconnecting={live.reconnecting} />
      <ErrorMessage error={live.error ?? past.error} />
      {can('submit') && <FlowActions client={client} view={live.view} />}
      <TimeTravel client={client} flowId={flowId} events={live.events} cursor={cursor} onCursor={setCursor} canFork={can('submit')} />
      {shownState === 'loading' && (
        <p className="loading" role="status">
          Reading the flow as it was…
        </p>
      )}
      {view && (
        <div className="flow-body" data-state={shownState} data-seq={view.last_seq}>
          <div className="flow-main">
            <Dag view={view} selected={selected?.id} onSelect={setChosen} />
            <TaskList view={view} selected={selected?.id} onSelect={setChosen} />
            <details className="panel" open>
              <summary>
                <h2>Timeline</h2>
              </summary>
              <Timeline view={view} />
            </details>
          </div>
          {selected && <TaskPanel flowId={flowId} task={selected} view={view} events={events} live={!traveling} />}
        </div>
      )}
    </div>
  );
}

function FlowHeader({ view, reconnecting }: { view: FlowView; reconnecting: boolean }) {
  const template = view.origin?.template;
  return (
    <header className="flow-header">
      <h1>
        {view.name ?? 'Flow'} <span className="mono muted">{view.flow_id}</span>
      </h1>
      <div className="flow-facts">
        <span data-testid="flow-status">
          <StatusBadge look={FLOW_LOOK[view.status]} />
        </span>
        <span>queue {view.queue}</span>
        <span>submitted {formatTime(view.submitted_at)}</span>
        <span>took {formatDuration(view.duration_ms ?? elapsed(view.submitted_at, view.finished_at))}</span>
        <span>
          {view.counts.succeeded}/{view.total} succeeded
        </span>
        {template && (
          <span>
            template {template.name} v{template.version}
          </span>
        )}
        {Object.entries(view.labels ?? {}).map(([k, v]) => (
          <span key={k} className="label">
            {k}:{v}
          </span>
        ))}
        {reconnecting && (
          <span role="status" className="reconnecting">
            reconnecting to the live feed…
          </span>
        )}
      </div>
      {view.error && <p className="task-error">{view.error}</p>}
      {view.lineage && (
        <p>
          A {view.lineage.kind} of <Link href={`/flows/${view.lineage.parent_flow_id}`}>{view.lineage.parent_flow_id}</Link> at event #{view.lineage.at_seq}.
        </p>
      )}
      {view.derived && view.derived.length > 0 && (
        <p>
          Derived:{' '}
          {view.derived.map((d) => (
            <Link key={d.child_flow_id} href={`/flows/${d.child_flow_id}`} className="derived">
              {d.kind} {d.child_flow_id}
            </Link>
          ))}
        </p>
      )}
    </header>
  );
}

/** The tasks as a compact list of buttons beside the DAG (whose nodes are buttons too): handy on narrow screens, where the DAG is small. */
function TaskList({ view, selected, onSelect }: { view: FlowView; selected: string | undefined; onSelect: (id: string) => void }) {
  return (
    <nav className="task-list" aria-label="Tasks">
      <ul>
        {view.tasks.map((task) => (
          <li key={task.id}>
            <button type="button" aria-pressed={task.id === selected} onClick={() => onSelect(task.id)} data-task={task.id} data-status={task.status}>
              <span aria-hidden="true">{TASK_LOOK[task.status].icon}</span> {task.id} <span className="muted">{TASK_LOOK[task.status].label}</span>
            </button>
          </li>
        ))}
      </ul>
    </nav>
  );
}
