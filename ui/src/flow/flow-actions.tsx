import type { FlowView, TaskstreamClient } from '@taskstream/client';
import { useState } from 'react';
import { useLocation } from 'wouter';
import { ErrorMessage } from '../common/components.js';
import { isFlowFinished } from '../common/status.js';
import { useAction } from '../common/use-async.js';

/** Cancel (asked twice), and rerun from failure once the flow has ended; shown to keys with the `submit` scope only. */
export function FlowActions({ client, view }: { client: TaskstreamClient; view: FlowView }) {
  const [, navigate] = useLocation();
  const [confirming, setConfirming] = useState(false);
  const { busy, error, run } = useAction();
  const finished = isFlowFinished(view.status);
  const cancel = async () => {
    setConfirming(false);
    await run(() => client.cancel(view.flow_id, 'cancelled from the web UI'));
  };
  const rerun = async () => {
    const answer = await run(() => client.rerun(view.flow_id));
    if (answer) navigate(`/flows/${answer.flow_id}`);
  };
  return (
    <div className="flow-actions" role="group" aria-label="Flow actions">
      {!finished && view.status !== 'cancelling' && !confirming && (
        <button type="button" className="danger" onClick={() => setConfirming(true)}>
          Cancel flow
        </button>
      )}
      {confirming && (
        <span role="group" aria-label="Confirm cancel">
          Cancel this flow?{' '}
          <button type="button" className="danger" disabled={busy} onClick={() => void cancel()}>
            Yes, cancel it
          </button>{' '}
          <button type="button" onClick={() => setConfirming(false)}>
            Keep it running
          </button>
        </span>
      )}
      {finished && view.status !== 'succeeded' && (
        <button type="button" disabled={busy} onClick={() => void rerun()}>
          Rerun from failure
        </button>
      )}
      <ErrorMessage error={error} />
    </div>
  );
}
