import type { FlowStatus } from '@taskstream/client';
import { useState, type FormEvent } from 'react';
import { FLOW_STATUSES } from '../common/status.js';
import { NO_FILTERS, type FilterForm } from './filters.js';

/** The list's filters; applied together when the form is sent. */
export function FilterBar({ value, onApply }: { value: FilterForm; onApply: (form: FilterForm) => void }) {
  const [form, setForm] = useState(value);
  const set = <K extends keyof FilterForm>(key: K, v: FilterForm[K]) => setForm((f) => ({ ...f, [key]: v }));
  const toggle = (status: FlowStatus) => set('statuses', form.statuses.includes(status) ? form.statuses.filter((s) => s !== status) : [...form.statuses, status]);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    onApply(form);
  };
  const text = (key: 'queue' | 'name' | 'labels' | 'template', label: string, placeholder: string) => (
    <label>
      {label}
      <input value={form[key]} placeholder={placeholder} onChange={(e) => set(key, e.target.value)} />
    </label>
  );
  return (
    <form className="filters" onSubmit={submit} aria-label="Filter flows">
      <fieldset>
        <legend>Status</legend>
        {FLOW_STATUSES.map((status) => (
          <label key={status} className="check">
            <input type="checkbox" checked={form.statuses.includes(status)} onChange={() => toggle(status)} /> {status}
          </label>
        ))}
      </fieldset>
      {text('name', 'Name contains', 'release')}
      {text('queue', 'Queue', 'default')}
      {text('labels', 'Labels', 'env:prod team:ci')}
      {text('template', 'Template', 'deploy')}
      <label>
        Submitted since
        <input type="datetime-local" value={form.since} onChange={(e) => set('since', e.target.value)} />
      </label>
      <label>
        until
        <input type="datetime-local" value={form.until} onChange={(e) => set('until', e.target.value)} />
      </label>
      <div className="filter-actions">
        <button type="submit">Apply filters</button>
        <button
          type="button"
          onClick={() => {
            setForm(NO_FILTERS);
            onApply(NO_FILTERS);
          }}
        >
          Clear
        </button>
      </div>
    </form>
  );
}
