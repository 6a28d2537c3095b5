import type { QueuePolicy, TaskstreamClient } from '@taskstream/client';
import { useState, type FormEvent } from 'react';
import { ErrorMessage } from '../common/components.js';
import { useAction } from '../common/use-async.js';

const FIELDS = [
  ['concurrency', 'Concurrency (tasks at once)'],
  ['per_key_concurrency', 'Per key concurrency'],
  ['per_second', 'Rate limit (tasks a second)'],
  ['max_burst', 'Burst'],
  ['max_retries', 'Default retries'],
  ['timeout_secs', 'Default timeout (seconds)'],
] as const;

type Field = (typeof FIELDS)[number][0];
type Texts = Record<Field, string>;

function textsOf(policy: QueuePolicy | undefined): Texts {
  const text = (n: number | undefined) => (n === undefined ? '' : String(n));
  return {
    concurrency: text(policy?.concurrency),
    per_key_concurrency: text(policy?.per_key_concurrency),
    per_second: text(policy?.rate_limit?.per_second),
    max_burst: text(policy?.rate_limit?.max_burst),
    max_retries: text(policy?.max_retries),
    timeout_secs: text(policy?.timeout_secs),
  };
}

/** A field as sent: a number when it reads as one, else the text itself, for the gateway to name the problem. */
const valueOf = (text: string): number | string | undefined => (text.trim() === '' ? undefined : Number.isFinite(Number(text)) ? Number(text) : text);

/** The form as a policy, keeping what the form does not show (backoff, secrets). */
function policyOf(texts: Texts, kept: QueuePolicy | undefined): QueuePolicy {
  const policy: Record<string, unknown> = { ...kept };
  for (const field of ['concurrency', 'per_key_concurrency', 'max_retries', 'timeout_secs'] as const) {
    const value = valueOf(texts[field]);
    if (value === undefined) delete policy[field];
    else policy[field] = value;
  }
  const perSecond = valueOf(texts.per_second);
  const burst = valueOf(texts.max_burst);
  if (perSecond === undefined && burst === undefined) delete policy.rate_limit;
  else policy.rate_limit = { ...(perSecond !== undefined && { per_second: perSecond }), ...(burst !== undefined && { max_burst: burst }) };
  return policy as QueuePolicy;
}

/** Edits a queue's policy (PUT /api/v1/queues/{name}); the gateway's validation messages are shown as they come, each with its field. */
export function PolicyForm({ client, name: fixedName, policy, onSaved }: { client: TaskstreamClient; name?: string; policy?: QueuePolicy; onSaved: () => void }) {
  const [name, setName] = useState(fixedName ?? '');
  const [texts, setTexts] = useState<Texts>(textsOf(policy));
  const [saved, setSaved] = useState(false);
  const { busy, error, run } = useAction();
  const save = async (event: FormEvent) => {
    event.preventDefault();
    setSaved(false);
    const answer = await run(() => client.queues.set(name.trim(), policyOf(texts, policy)));
    if (answer) {
      setSaved(true);
      onSaved();
    }
  };
  const id = (field: string) => `${fixedName ?? 'new'}-${field}`;
  return (
    <form className="action-form policy-form" onSubmit={save} aria-label={fixedName ? `Policy of queue ${fixedName}` : 'New queue policy'} noValidate>
      {fixedName === undefined && (
        <label>
          Queue name
          <input value={name} onChange={(e) => setName(e.target.value)} required />
        </label>
      )}
      <div className="policy-fields">
        {FIELDS.map(([field, label]) => (
          <div key={field}>
            <label htmlFor={id(field)}>{label}</label>
            <input id={id(field)} inputMode="decimal" value={texts[field]} onChange={(e) => setTexts((t) => ({ ...t, [field]: e.target.value }))} />
          </div>
        ))}
      </div>
      <button type="submit" disabled={busy || name.trim() === ''}>
        Save policy
      </button>
      {saved && <p role="status">Saved.</p>}
      <ErrorMessage error={error} />
    </form>
  );
}
