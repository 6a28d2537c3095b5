import { DEFAULT_PARTITIONS, partitionOf } from '../ids.js';
import type { EventType } from './catalogue.js';

/**
 * Subject layout (see docs/architecture.md):
 *   ts.evt.<partition>.<flow_id>.<type...>   every flow and task event (type has a dot: task.ready)
 *   ts.work.<queue>                          work items for one executor pool
 *   ts.dlq.<source>                          messages set aside, with the reason
 *   ts.timer.<flow_id>                       durable flow deadlines (timeout_secs)
 *   ts.signal.<name>                         signals sent to wait tasks
 * Kept as pure string functions so every service and test agrees on them.
 */
export interface SubjectLayout {
  prefix: string;
  partitions: number;
}

export const DEFAULT_LAYOUT: SubjectLayout = { prefix: 'ts', partitions: DEFAULT_PARTITIONS };

export function eventSubject(layout: SubjectLayout, flowId: string, type: EventType): string {
  return `${layout.prefix}.evt.${partitionOf(flowId, layout.partitions)}.${flowId}.${type}`;
}

export function flowEventsFilter(layout: SubjectLayout, flowId: string): string {
  return `${layout.prefix}.evt.${partitionOf(flowId, layout.partitions)}.${flowId}.>`;
}

export function allEventsFilter(layout: SubjectLayout): string {
  return `${layout.prefix}.evt.>`;
}

export function partitionFilter(layout: SubjectLayout, partition: number): string {
  return `${layout.prefix}.evt.${partition}.>`;
}

export function eventTypeFilter(layout: SubjectLayout, type: EventType): string {
  return `${layout.prefix}.evt.*.*.${type}`;
}

/** Every event of one type in one partition. */
export function partitionTypeFilter(layout: SubjectLayout, partition: number, type: EventType): string {
  return `${layout.prefix}.evt.${partition}.*.${type}`;
}

export function workSubject(layout: SubjectLayout, queue: string): string {
  return `${layout.prefix}.work.${queue}`;
}

export function allWorkFilter(layout: SubjectLayout): string {
  return `${layout.prefix}.work.>`;
}

export function timerSubject(layout: SubjectLayout, flowId: string): string {
  return `${layout.prefix}.timer.${flowId}`;
}

export function allTimersFilter(layout: SubjectLayout): string {
  return `${layout.prefix}.timer.>`;
}

export function signalSubject(layout: SubjectLayout, name: string): string {
  return `${layout.prefix}.signal.${name}`;
}

export function allSignalsFilter(layout: SubjectLayout): string {
  return `${layout.prefix}.signal.>`;
}

export function dlqSubject(layout: SubjectLayout, source: string): string {
  return `${layout.prefix}.dlq.${source}`;
}

export function allDlqFilter(layout: SubjectLayout): string {
  return `${layout.prefix}.dlq.>`;
}

/** Parses the flow id out of an event subject; undefined for anything else. */
export function flowIdOfSubject(layout: SubjectLayout, subject: string): string | undefined {
  const parts = subject.split('.');
  if (parts.length < 5 || parts[0] !== layout.prefix || parts[1] !== 'evt') return undefined;
  return parts[3];
}
