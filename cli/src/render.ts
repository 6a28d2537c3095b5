import type { FlowEvent, FlowView } from '@taskstream/domain';

/** Turns a flow's events into the lines `taskstream run` prints. Pure, so it is tested on its own. */
export class RunRenderer {
  private readonly width: number;
  private submittedAt = 0;
  private readonly lastFailure = new Map<string, string>();

  constructor(taskIds: string[]) {
    this.width = Math.max(...taskIds.map((id) => id.length)) + 2;
  }

  private label(taskId: string): string {
    return `[${taskId}]`.padEnd(this.width + 1);
  }

  /** Lines for one event; empty for events that settle nothing. */
  lines(event: FlowEvent): string[] {
    switch (event.type) {
      case 'flow.submitted':
        this.submittedAt = Date.parse(event.time);
        return [];
      case 'task.waiting': {
        const { output, signal, child, map } = event.data;
        if (map !== undefined) return [`${this.label(event.task_id)}mapping    ${map.instances} instance${map.instances === 1 ? '' : 's'}, ${map.concurrency} at a time`];
        if (signal !== undefined) return [`${this.label(event.task_id)}waiting    for signal ${signal.name}${signal.match !== undefined ? ` where ${firstLine(signal.match)}` : ''}`, `    taskstream signal ${signal.name} --data '{...}'`];
        if (child !== undefined) return [`${this.label(event.task_id)}waiting    for child flow ${child.flow_id}`];
        return [`${this.label(event.task_id)}waiting    for approval: ${firstLine(output?.message ?? '')}`, `    taskstream approve ${event.flow_id} ${shellWord(event.task_id)}   (or reject)`];
      }
      case 'task.succeeded':
        return [`${this.label(event.task_id)}succeeded  ${seconds(event.data.duration_ms)}`];
      case 'task.failed':
        return [`${this.label(event.task_id)}failed     ${seconds(event.data.duration_ms)}${attemptsNote(event.attempt)}`, ...indent(event.data.error.stderr_tail || event.data.error.message)];
      case 'task.timed_out':
        return [`${this.label(event.task_id)}timed out  ${seconds(event.data.timeout_ms)}${attemptsNote(event.attempt)}`];
      case 'task.attempt_failed':
        this.lastFailure.set(event.task_id, firstLine(event.data.error.message));
        return [];
      case 'task.retry_scheduled':
        return [`${this.label(event.task_id)}retrying   attempt ${event.attempt} failed, next in ${seconds(event.data.delay_ms)}: ${this.lastFailure.get(event.task_id) ?? 'error'}`];
      case 'task.skipped':
        return [`${this.label(event.task_id)}skipped    (${event.data.condition !== undefined ? `condition false: ${firstLine(event.data.condition)}` : event.data.reason})`];
      case 'task.upstream_failed':
        return [`${this.label(event.task_id)}upstream failed (${event.data.reason})`];
      case 'flow.fail_fast':
        return [`${' '.repeat(this.width + 1)}${event.data.reason}: stopping the other tasks`];
      case 'flow.tasks_added':
        // A map's instances are announced by its wait; a spawn's tasks here.
        return event.data.kind === 'spawn' ? [`${this.label(event.data.by_task)}spawned    ${event.data.tasks.length} task${event.data.tasks.length === 1 ? '' : 's'}`] : [];
      case 'task.cancelled':
        return [`${this.label(event.task_id)}cancelled  (${event.data.reason})`];
      case 'flow.succeeded':
        return ['', `Flow ${event.flow_id} complete ${event.data.succeeded}/${event.data.total} succeeded (${this.elapsed(event.time)})`];
      case 'flow.failed': {
        const failed = event.data.failed_tasks.length;
        const skipped = event.data.skipped_tasks.length;
        const upstream = event.data.upstream_failed_tasks?.length ?? 0;
        return [
          '',
          `Flow ${event.flow_id} failed ${event.data.succeeded}/${event.data.total} succeeded, ${failed} failed${upstream ? `, ${upstream} upstream failed` : ''}${skipped ? `, ${skipped} skipped` : ''} (${this.elapsed(event.time)})`,
        ];
      }
      case 'flow.cancelled':
        return ['', `Flow ${event.flow_id} cancelled ${event.data.succeeded}/${event.data.total} succeeded (${this.elapsed(event.time)})`];
      default:
        return [];
    }
  }

  private elapsed(time: string): string {
    return seconds(Date.parse(time) - this.submittedAt);
  }
}

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

function attemptsNote(attempt: number): string {
  return attempt > 1 ? ` after ${attempt} attempts` : '';
}

/** A task id as one shell word: quoted unless it is plain. */
function shellWord(text: string): string {
  return /^[\w.,/:@=+-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

function firstLine(text: string): string {
  return text.split('\n')[0]!.slice(0, 200);
}

function indent(text: string): string[] {
  return text
    .trimEnd()
    .split('\n')
    .slice(-5)
    .map((line) => `    ${line}`);
}

/** `taskstream status`: a table of tasks. */
export function renderStatus(view: FlowView): string[] {
  const width = Math.max(4, ...view.tasks.map((t) => t.id.length));
  const lines = [`Flow ${view.flow_id}${view.name ? ` (${view.name})` : ''}: ${view.status}${view.duration_ms !== undefined ? ` in ${seconds(view.duration_ms)}` : ''}`];
  if (view.error) lines.push(`  ${view.error}`);
  lines.push('', `${'TASK'.padEnd(width)}  ${'STATUS'.padEnd(10)}  ATTEMPTS  DURATION  DETAIL`);
  for (const task of view.tasks) {
    const detail = task.error?.message ?? task.reason ?? '';
    const duration = task.duration_ms !== undefined ? seconds(task.duration_ms) : '';
    lines.push(`${task.id.padEnd(width)}  ${task.status.padEnd(10)}  ${String(task.attempts_total ?? task.attempts.length).padEnd(8)}  ${duration.padEnd(8)}  ${firstLine(detail)}`);
  }
  return lines;
}

export function isTerminalEvent(event: FlowEvent): boolean {
  return event.type === 'flow.succeeded' || event.type === 'flow.failed' || event.type === 'flow.cancelled';
}
