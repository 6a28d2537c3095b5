import type { FlowSummary, FlowView, TaskstreamClient } from '@taskstream/client';
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { isFlowFinished } from '../common/status.js';
import { throttle } from '../common/throttle.js';

export type Counts = Pick<FlowView, 'counts' | 'total' | 'duration_ms' | 'status'>;

/** Views fetched at once for the list's counts. */
const PARALLEL = 4;
const REREAD_MS = 500;

/**
 * Task counts of the listed flows, which the list's summaries do not carry: read from each flow's
 * view, kept for good once the flow has finished, read again for a running flow when `refresh`
 * names it (a task of it ended).
 */
export function useFlowCounts(client: TaskstreamClient, flows: readonly FlowSummary[]) {
  const cache = useRef(new Map<string, Counts>());
  const [, setVersion] = useState(0);
  const load = useCallback(
    async (ids: string[]) => {
      for (let i = 0; i < ids.length; i += PARALLEL) {
        const views = await Promise.all(ids.slice(i, i + PARALLEL).map((id) => client.get(id).catch(() => undefined)));
        for (const view of views) if (view) cache.current.set(view.flow_id, { counts: view.counts, total: view.total, duration_ms: view.duration_ms, status: view.status });
        setVersion((v) => v + 1);
      }
    },
    [client],
  );
  useEffect(() => {
    const stale = flows.filter((flow) => {
      const known = cache.current.get(flow.flow_id);
      return known === undefined || !isFlowFinished(known.status) || known.status !== flow.status;
    });
    if (stale.length > 0) void load(stale.map((flow) => flow.flow_id));
  }, [flows, load]);
  // Task ends come in bursts: the flows they name are read again together, at most twice a second.
  const named = useRef(new Set<string>());
  const reread = useMemo(
    () =>
      throttle(() => {
        const ids = [...named.current];
        named.current.clear();
        void load(ids);
      }, REREAD_MS),
    [load],
  );
  useEffect(() => () => reread.cancel(), [reread]);
  const refresh = useCallback(
    (flowId: string) => {
      named.current.add(flowId);
      reread.ask();
    },
    [reread],
  );
  return { counts: (flowId: string) => cache.current.get(flowId), refresh };
}
