import type { TaskstreamClient } from '@taskstream/client';
import { useState, type FormEvent } from 'react';
import { useLocation } from 'wouter';
import { ErrorMessage } from '../common/components.js';
import { useAction } from '../common/use-async.js';
import { parseJson } from '../actions/json-text.js';

/**
 * Forks the flow at a sequence (POST /fork): tasks that had succeeded by then are reused, the rest
 * run. The optional patch replaces top-level fields and merges `tasks` by id; the gateway
 * validates the patched flow and names every problem.
 */
export function ForkForm({ client, flowId, at, onClose }: { client: TaskstreamClient; flowId: string; at: number; onClose: () => void }) {
  const [, navigate] = useLocation();
  const [patch, setPatch] = useState('');
  const [invalid, setInvalid] = useState<string | undefined>(undefined);
  const { busy, error, run } = useAction();
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    let value: Record<string, unknown> | undefined;
    if (patch.trim() !== '') {
      const parsed = parseJson(patch, 'the patch');
      const isObject = parsed.ok && typeof parsed.value === 'object' && parsed.value !== null && !Array.isArray(parsed.value);
      const problem = !parsed.ok ? parsed.message : !isObject ? 'the patch must be a JSON object, such as {"tasks": [{"id": "deploy", "config": {"ms": 10}}]}' : undefined;
      setInvalid(problem);
      if (problem !== undefined) return;
      value = (parsed as { value: Record<string, unknown> }).value;
    } else setInvalid(undefined);
    const answer = await run(() => client.fork(flowId, at, value));
    if (answer) navigate(`/flows/${answer.flow_id}`);
  };
  return (
    <form className="action-form fork" aria-label="Fork here" onSubmit={submit}>
      <h3>Fork at event #{at}</h3>
      <label>
        Patch (optional JSON: top-level fields replace, tasks merge by id)
        <textarea value={patch} onChange={(e) => setPatch(e.target.value)} rows={6} className="mono" placeholder='{"tasks": [{"id": "deploy", "config": {"ms": 10}}]}' aria-invalid={invalid !== undefined} />
      </label>
      {invalid && (
        <p role="alert" className="error-message">
          {invalid}
        </p>
      )}
      <div className="buttons">
        <button type="submit" disabled={busy}>
          Fork
        </button>
        <button type="button" onClick={onClose}>
          Close
        </button>
      </div>
      <ErrorMessage error={error} />
    </form>
  );
}
