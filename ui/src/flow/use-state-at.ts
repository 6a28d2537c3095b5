import type { FlowView, TaskstreamClient } from '@taskstream/client';
import { useEffect, useState } from 'react';

/** How long the slider must rest on an event before its state is read: dragging across many asks for one. */
const SETTLE_MS = 120;

/**
 * The flow as it was at sequence `seq` (GET …/state?at=). While a new sequence is read, the state
 * last read stays (`current` false), so dragging the slider does not blank the DAG.
 */
export function useStateAt(client: TaskstreamClient, flowId: string, seq: number | undefined): { view: FlowView | undefined; current: boolean; error: unknown } {
  const [answer, setAnswer] = useState<{ seq: number; view: FlowView } | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  useEffect(() => {
    if (seq === undefined) return;
    let current = true;
    const timer = setTimeout(() => {
      client
        .stateAt(flowId, seq)
        .then(({ state }) => current && (setAnswer({ seq, view: state }), setError(undefined)))
        .catch((failure: unknown) => current && setError(failure));
    }, SETTLE_MS);
    return () => {
      current = false;
      clearTimeout(timer);
    };
  }, [client, flowId, seq]);
  return { view: answer?.view, current: seq !== undefined && answer?.seq === seq, error };
}
