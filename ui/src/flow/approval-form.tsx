import type { TaskstreamClient } from '@taskstream/client';
import type { TaskView } from '@taskstream/domain';
import { useState, type FormEvent } from 'react';
import { ErrorMessage } from '../common/components.js';
import { useAction } from '../common/use-async.js';

/**
 * Approves or rejects a waiting approval task with its code. The code is filled in from the task's
 * output (which a `submit` key may read anyway); the gateway compares it and refuses a wrong one.
 */
export function ApprovalForm({ client, flowId, task }: { client: TaskstreamClient; flowId: string; task: TaskView }) {
  const output = task.output as { code?: string; message?: string } | undefined;
  const [code, setCode] = useState(output?.code ?? '');
  const [by, setBy] = useState('');
  const [reason, setReason] = useState('');
  const [done, setDone] = useState<string | undefined>(undefined);
  const { busy, error, run } = useAction();
  const decide = (approve: boolean) => async (event?: FormEvent) => {
    event?.preventDefault();
    const decision = { code, ...(by.trim() !== '' && { approvedBy: by.trim() }) };
    const sent = await run(async () => {
      if (approve) await client.approve(flowId, task.id, decision);
      else await client.reject(flowId, task.id, { ...decision, ...(reason.trim() !== '' && { reason: reason.trim() }) });
      return true;
    });
    if (sent) setDone(approve ? 'Approved.' : 'Rejected.');
  };
  return (
    <form className="action-form" aria-label="Approval" onSubmit={decide(true)}>
      <h3>Approval</h3>
      {output?.message && <p>{output.message}</p>}
      <label>
        Code
        <input value={code} onChange={(e) => setCode(e.target.value)} required className="mono" />
      </label>
      <label>
        Decided by (optional)
        <input value={by} onChange={(e) => setBy(e.target.value)} maxLength={200} />
      </label>
      <label>
        Reason, if rejected (optional)
        <input value={reason} onChange={(e) => setReason(e.target.value)} />
      </label>
      <div className="buttons">
        <button type="submit" disabled={busy || code === ''}>
          Approve
        </button>
        <button type="button" className="danger" disabled={busy || code === ''} onClick={() => void decide(false)()}>
          Reject
        </button>
      </div>
      {done && <p role="status">{done}</p>}
      <ErrorMessage error={error} />
    </form>
  );
}
