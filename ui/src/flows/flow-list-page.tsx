import type { FlowPage, FlowSummary } from '@taskstream/client';
import { useEffect, useMemo, useState } from 'react';
import { Link } from 'wouter';
import { ErrorMessage } from '../common/components.js';
import { FLOW_LOOK } from '../common/status.js';
import { StatusBadge } from '../common/status-badge.js';
import { elapsed, formatDuration, formatTime } from '../common/time.js';
import { useSession } from '../session/session.js';
import { FilterBar } from './filter-bar.js';
import { NO_FILTERS, toFilters, type FilterForm } from './filters.js';
import { useFlowCounts, type Counts } from './use-flow-counts.js';
import { useListFeed } from './use-list-feed.js';

const PAGE_SIZE = 25;

/** The flows, newest first, filtered and paged as the API does, kept current by the global feed. */
export function FlowListPage() {
  const { client } = useSession();
  const [form, setForm] = useState<FilterForm>(NO_FILTERS);
  // Cursors of the pages before this one: "Previous" pops, "Next" pushes.
  const [cursors, setCursors] = useState<Array<string | undefined>>([undefined]);
  const [page, setPage] = useState<FlowPage | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [reloads, setReloads] = useState(0);
  const cursor = cursors[cursors.length - 1];
  const filters = useMemo(() => toFilters(form, PAGE_SIZE), [form]);

  useEffect(() => {
    if (typeof filters === 'string') return setError(new Error(filters));
    let current = true;
    client
      .listPage({ ...filters, ...(cursor !== undefined && { cursor }) })
      .then((answer) => current && (setPage(answer), setError(undefined)))
      .catch((failure: unknown) => current && setError(failure));
    return () => {
      current = false;
    };
  }, [client, filters, cursor, reloads]);

  const flows = useMemo(() => page?.flows ?? [], [page]);
  const { counts, refresh } = useFlowCounts(client, flows);
  const visible = useMemo(() => new Set(flows.map((f) => f.flow_id)), [flows]);
  useListFeed(client, {
    onFlowChange: () => setReloads((n) => n + 1),
    onTaskEnd: (flowId) => {
      if (visible.has(flowId)) refresh(flowId);
    },
    onError: setError,
  });

  const apply = (next: FilterForm) => {
    setForm(next);
    setCursors([undefined]);
  };

  return (
    <div className="page">
      <h1>Flows</h1>
      <FilterBar value={form} onApply={apply} />
      <ErrorMessage error={error} />
      <div className="table-scroll">
        <table className="flows">
          <caption className="visually-hidden">Flows, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Flow</th>
              <th scope="col">Status</th>
              <th scope="col">Queue</th>
              <th scope="col">Labels</th>
              <th scope="col">Template</th>
              <th scope="col">Submitted</th>
              <th scope="col">Duration</th>
              <th scope="col">Tasks</th>
            </tr>
          </thead>
          <tbody>
            {flows.map((flow) => (
              <FlowRow key={flow.flow_id} flow={flow} counts={counts(flow.flow_id)} />
            ))}
          </tbody>
        </table>
      </div>
      {page && flows.length === 0 && <p>No flows match these filters.</p>}
      <nav className="pager" aria-label="Pages">
        <button type="button" disabled={cursors.length <= 1} onClick={() => setCursors((c) => c.slice(0, -1))}>
          Previous page
        </button>
        <button type="button" disabled={page?.next_cursor === undefined} onClick={() => page?.next_cursor && setCursors((c) => [...c, page.next_cursor])}>
          Next page
        </button>
      </nav>
    </div>
  );
}

function FlowRow({ flow, counts }: { flow: FlowSummary; counts: Counts | undefined }) {
  const template = flow.origin?.template;
  const duration = counts?.duration_ms ?? elapsed(flow.submitted_at, flow.finished_at);
  const done = counts ? counts.counts.succeeded + counts.counts.skipped : undefined;
  const failed = counts ? counts.counts.failed + counts.counts.timed_out : 0;
  return (
    <tr data-flow={flow.flow_id}>
      <td>
        <Link href={`/flows/${flow.flow_id}`}>{flow.name ?? flow.flow_id}</Link>
        {flow.name !== undefined && <div className="muted mono">{flow.flow_id}</div>}
      </td>
      <td>
        <StatusBadge look={FLOW_LOOK[flow.status]} />
      </td>
      <td>{flow.queue}</td>
      <td>
        {Object.entries(flow.labels ?? {}).map(([k, v]) => (
          <span key={k} className="label">
            {k}:{v}
          </span>
        ))}
      </td>
      <td>{template ? `${template.name} v${template.version}` : '—'}</td>
      <td>{formatTime(flow.submitted_at)}</td>
      <td>{formatDuration(duration)}</td>
      <td className="task-counts">
        {done === undefined ? `${flow.total} tasks` : `${done}/${flow.total} done${failed > 0 ? `, ${failed} failed` : ''}`}
      </td>
    </tr>
  );
}
