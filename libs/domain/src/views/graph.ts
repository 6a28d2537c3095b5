import type { TaskStatus } from '../decider/state.js';
import type { FlowView } from './flow-view.js';

const COLOURS: Record<TaskStatus, string> = {
  pending: '#e0e0e0',
  ready: '#fff3b0',
  waiting: '#d7b5f0',
  dispatched: '#ffe08a',
  running: '#8ecae6',
  succeeded: '#a7e3a1',
  failed: '#f4a3a3',
  timed_out: '#f7b267',
  skipped: '#cfcfcf',
  upstream_failed: '#e8c1c1',
  cancelled: '#b8b8d1',
};

const escape = (text: string) => text.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
const quote = (text: string) => `"${escape(text)}"`;

/** Graphviz DOT of a flow, nodes filled by task status (`dot -Tsvg`). */
export function toDot(view: FlowView): string {
  const lines = [`digraph ${quote(view.name ?? view.flow_id)} {`, '  rankdir=LR;', '  node [shape=box, style="rounded,filled", fontname="Helvetica"];'];
  for (const task of view.tasks) {
    // "\n" inside a DOT string is a line break, so it is added after escaping.
    lines.push(`  ${quote(task.id)} [fillcolor=${quote(COLOURS[task.status])}, label="${escape(task.id)}\\n${task.status}${task.reused ? ' (reused)' : ''}"];`);
  }
  for (const task of view.tasks) for (const dep of task.depends_on) lines.push(`  ${quote(dep)} -> ${quote(task.id)};`);
  // A map's instances, added while the flow ran, end into their map task.
  for (const task of view.tasks) if (task.instance_of !== undefined) lines.push(`  ${quote(task.id)} -> ${quote(task.instance_of)} [style=dashed];`);
  lines.push('}');
  return `${lines.join('\n')}\n`;
}

/** Mermaid flowchart of a flow, nodes styled by task status (renders in GitHub Markdown). */
export function toMermaid(view: FlowView): string {
  // Task ids may hold any character: nodes are named by position, labels carry the ids.
  const index = new Map(view.tasks.map((task, i) => [task.id, i]));
  const id = (taskId: string) => `t${index.get(taskId) ?? `_${taskId.replace(/[^A-Za-z0-9_]/g, '_')}`}`;
  const lines = ['flowchart LR'];
  for (const task of view.tasks) lines.push(`  ${id(task.id)}["${task.id.replace(/"/g, '#quot;')}<br/>${task.status}"]:::${task.status}`);
  for (const task of view.tasks) for (const dep of task.depends_on) lines.push(`  ${id(dep)} --> ${id(task.id)}`);
  for (const task of view.tasks) if (task.instance_of !== undefined) lines.push(`  ${id(task.id)} -.-> ${id(task.instance_of)}`);
  for (const [status, colour] of Object.entries(COLOURS)) lines.push(`  classDef ${status} fill:${colour},stroke:#555`);
  return `${lines.join('\n')}\n`;
}
