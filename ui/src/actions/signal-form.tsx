import type { SignalSent, TaskstreamClient } from '@taskstream/client';
import { useState, type FormEvent } from 'react';
import { ErrorMessage } from '../common/components.js';
import { useAction } from '../common/use-async.js';
import { parseJson } from './json-text.js';

/** Sends a signal (POST /api/v1/signals/{name}) with a JSON payload; `fixedName` for a wait task's own signal. */
export function SignalForm({ client, fixedName }: { client: TaskstreamClient; fixedName?: string }) {
  const [name, setName] = useState(fixedName ?? '');
  const [payload, setPayload] = useState('{}');
  const [sent, setSent] = useState<SignalSent | undefined>(undefined);
  const [invalid, setInvalid] = useState<string | undefined>(undefined);
  const { busy, error, run } = useAction();
  const send = async (event: FormEvent) => {
    event.preventDefault();
    const parsed = parseJson(payload, 'the payload');
    setInvalid(parsed.ok ? undefined : parsed.message);
    if (!parsed.ok) return;
    const answer = await run(() => client.signal(name.trim(), parsed.value));
    if (answer) setSent(answer);
  };
  return (
    <form className="action-form" aria-label="Send a signal" onSubmit={send}>
      <h3>Send a signal</h3>
      {fixedName === undefined ? (
        <label>
          Signal name
          <input value={name} onChange={(e) => setName(e.target.value)} required pattern="[A-Za-z0-9_\-]{1,128}" title="1 to 128 letters, digits, _ or -" />
        </label>
      ) : (
        <p>
          Signal <strong>{fixedName}</strong>
        </p>
      )}
      <label>
        Payload (JSON)
        <textarea value={payload} onChange={(e) => setPayload(e.target.value)} rows={4} className="mono" aria-invalid={invalid !== undefined} />
      </label>
      {invalid && (
        <p role="alert" className="error-message">
          {invalid}
        </p>
      )}
      <button type="submit" disabled={busy || name.trim() === ''}>
        Send signal
      </button>
      {sent && <p role="status">Signal {sent.name} stored (sequence {sent.seq}){sent.replayed ? ', a repeat of one already sent' : ''}: waits that match it complete.</p>}
      <ErrorMessage error={error} />
    </form>
  );
}
