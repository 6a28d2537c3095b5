import type { FlowStatus, TaskStatus } from '@taskstream/client';

/**
 * How each status looks. The colour is never the only cue: every node and badge also shows the
 * status's icon and its name. Fills are light and text is near-black, well above the 4.5:1
 * contrast WCAG asks for; the border carries the hue for those who see it.
 */
export interface StatusLook {
  icon: string;
  label: string;
  fill: string;
  border: string;
}

export const TASK_LOOK: Record<TaskStatus, StatusLook> = {
  pending: { icon: '○', label: 'pending', fill: '#eef0f3', border: '#6b7280' },
  ready: { icon: '◔', label: 'ready', fill: '#e3edff', border: '#2563eb' },
  waiting: { icon: '◇', label: 'waiting', fill: '#f1e6ff', border: '#7e22ce' },
  dispatched: { icon: '◑', label: 'dispatched', fill: '#d6e4ff', border: '#1d4ed8' },
  running: { icon: '▶', label: 'running', fill: '#fff1bf', border: '#b45309' },
  succeeded: { icon: '✓', label: 'succeeded', fill: '#d2f4dc', border: '#15803d' },
  failed: { icon: '✗', label: 'failed', fill: '#fddede', border: '#b91c1c' },
  timed_out: { icon: '◷', label: 'timed out', fill: '#fddede', border: '#b91c1c' },
  skipped: { icon: '↷', label: 'skipped', fill: '#f3f3f3', border: '#9ca3af' },
  upstream_failed: { icon: '⊘', label: 'upstream failed', fill: '#feeadb', border: '#c2410c' },
  cancelled: { icon: '■', label: 'cancelled', fill: '#e7e5e4', border: '#57534e' },
};

export const FLOW_LOOK: Record<FlowStatus, StatusLook> = {
  submitted: TASK_LOOK.pending,
  running: TASK_LOOK.running,
  cancelling: { ...TASK_LOOK.cancelled, icon: '□', label: 'cancelling' },
  succeeded: TASK_LOOK.succeeded,
  failed: TASK_LOOK.failed,
  cancelled: TASK_LOOK.cancelled,
};

export const FLOW_STATUSES: readonly FlowStatus[] = ['submitted', 'running', 'cancelling', 'succeeded', 'failed', 'cancelled'];

export const isFlowFinished = (status: FlowStatus) => status === 'succeeded' || status === 'failed' || status === 'cancelled';
