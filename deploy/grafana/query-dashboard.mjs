#!/usr/bin/env node
// Runs every query of the Grafana dashboard (dashboards/taskstream.json) against a Prometheus and
// prints what each panel would show now: one line per series, named by the panel's legend.
//
//   node deploy/grafana/query-dashboard.mjs [prometheus URL, default http://127.0.0.1:9090] [rate window, default 1m]
//
// Grafana's $__rate_interval becomes the rate window. A query's first 12 series are printed, then
// how many more it returned. Needs nothing but Node 20.
import { readFileSync } from 'node:fs';

const prometheus = process.argv[2] ?? 'http://127.0.0.1:9090';
const window = process.argv[3] ?? '1m';
const MAX_SERIES = 12;
const dashboard = JSON.parse(readFileSync(new URL('./dashboards/taskstream.json', import.meta.url), 'utf8'));

/** A legend such as "{{queue}} {{reason}}" filled in from a series' labels. */
const legend = (format, labels) => format.replace(/\{\{\s*(\w+)\s*\}\}/g, (_, name) => labels[name] ?? '');

function formatValue(raw, unit) {
  const value = Number(raw);
  if (Number.isNaN(value)) return 'NaN (no data in the window)';
  if (unit === 's') return value < 1 ? `${(value * 1000).toFixed(1)} ms` : `${value.toFixed(2)} s`;
  if (unit === 'percentunit') return `${(value * 100).toFixed(1)} %`;
  if (unit === 'ops' || unit === 'reqps') return `${value.toFixed(2)}/s`;
  return Number.isInteger(value) ? String(value) : value.toFixed(2);
}

async function query(expr) {
  const response = await fetch(`${prometheus}/api/v1/query?query=${encodeURIComponent(expr)}`);
  const body = await response.json();
  if (body.status !== 'success') throw new Error(`${body.errorType}: ${body.error}\n  in ${expr}`);
  return body.data.result;
}

for (const panel of dashboard.panels) {
  if (panel.type === 'row') {
    console.log(`\n== ${panel.title}`);
    continue;
  }
  console.log(`${panel.title}`);
  const unit = panel.fieldConfig?.defaults?.unit;
  let shown = 0;
  for (const target of panel.targets) {
    const series = await query(target.expr.replaceAll('$__rate_interval', window));
    const named = series.map(({ metric, value }) => ({ name: legend(target.legendFormat, metric).trim() || '(all)', value })).sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
    for (const { name, value } of named.slice(0, MAX_SERIES)) console.log(`    ${name}: ${formatValue(value[1], unit)}`);
    if (named.length > MAX_SERIES) console.log(`    … and ${named.length - MAX_SERIES} more`);
    shown += named.length;
  }
  if (shown === 0) console.log('    (no series)');
}
