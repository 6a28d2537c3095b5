import { useState, type FormEvent } from 'react';
import { describeError } from '../common/errors.js';

/**
 * Asks for an API key when the gateway requires one. The key is checked (GET /api/v1/whoami)
 * before it is kept, so a mistyped key is told at once.
 */
export function SignIn({ onKey, refusal }: { onKey: (key: string) => Promise<void>; refusal: unknown }) {
  const [key, setKey] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    try {
      await onKey(key.trim());
    } finally {
      setBusy(false);
    }
  };
  return (
    <main className="sign-in">
      <h1>Taskstream</h1>
      <form onSubmit={submit} aria-label="Sign in">
        <p>This gateway requires an API key. It is kept in this tab only (sessionStorage) and sent with each request.</p>
        <label htmlFor="api-key">API key</label>
        <input id="api-key" type="password" autoComplete="off" placeholder="ts_…" value={key} onChange={(e) => setKey(e.target.value)} required />
        <button type="submit" disabled={busy || key.trim() === ''}>
          Sign in
        </button>
        {refusal !== undefined && (
          <p role="alert" className="error-message">
            {describeError(refusal)}
          </p>
        )}
      </form>
    </main>
  );
}
