import type { FlowFilters, FlowStatus } from '@taskstream/client';

/** The list's filters as the form holds them (text fields as typed). */
export interface FilterForm {
  statuses: FlowStatus[];
  queue: string;
  name: string;
  labels: string;
  template: string;
  since: string;
  until: string;
}

export const NO_FILTERS: FilterForm = { statuses: [], queue: '', name: '', labels: '', template: '', since: '', until: '' };

/** A labels field, `env:prod team:ci` (spaces or commas between), as the API's labels; a malformed pair is named. */
export function parseLabels(text: string): Record<string, string> | string {
  const labels: Record<string, string> = {};
  for (const pair of text.split(/[\s,]+/).filter((p) => p !== '')) {
    const at = pair.indexOf(':');
    if (at <= 0) return `label "${pair}" must be key:value`;
    labels[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return labels;
}

/** The form as the API's filters (GET /api/v1/flows); the gateway checks each and names a wrong one. */
export function toFilters(form: FilterForm, limit: number): FlowFilters | string {
  const labels = parseLabels(form.labels);
  if (typeof labels === 'string') return labels;
  const text = (value: string) => (value.trim() === '' ? undefined : value.trim());
  const time = (value: string) => (value === '' ? undefined : new Date(value).toISOString());
  const filters: FlowFilters = { limit };
  if (form.statuses.length > 0) filters.status = form.statuses;
  if (Object.keys(labels).length > 0) filters.labels = labels;
  const queue = text(form.queue);
  const name = text(form.name);
  const template = text(form.template);
  const since = time(form.since);
  const until = time(form.until);
  if (queue !== undefined) filters.queue = queue;
  if (name !== undefined) filters.name = name;
  if (template !== undefined) filters.template = template;
  if (since !== undefined) filters.since = since;
  if (until !== undefined) filters.until = until;
  return filters;
}
