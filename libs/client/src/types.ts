import type { Backoff, FlowStatus, FlowSummary, FlowView, TaskInput, TaskStatus } from '@taskstream/domain';
import type { StoredEvent } from './feed.js';

/**
 * The gateway's answers. Flow views, summaries and events are the domain's own types (the gateway's
 * zod schemas are held to them at compile time); the rest mirror the gateway's response schemas, and
 * test/types.test.ts holds each to its schema the same way.
 */

/** A flow as submitted: `tasks` plus any of the flow language's fields (docs/flow-language.md). */
export interface FlowInput {
  tasks: TaskInput[];
  [field: string]: unknown;
}

export interface FlowLinks {
  self: string;
  events: string;
  feed: string;
  cancel: string;
}

export interface Submitted {
  flow_id: string;
  status: 'submitted';
  tasks: number;
  /** True when the Idempotency-Key was used before for this flow: nothing new was submitted. */
  replayed: boolean;
  warnings?: string[];
  links: FlowLinks;
}

export interface Cancelling {
  flow_id: string;
  status: 'cancelling';
  links: FlowLinks;
}

export interface Rerun {
  flow_id: string;
  rerun_of: string;
  status: 'submitted';
}

export interface Fork {
  flow_id: string;
  forked_from: string;
  at_seq: number;
  status: 'submitted';
}

export interface FlowPage {
  flows: FlowSummary[];
  next_cursor?: string;
}

export interface FlowEvents {
  flow_id: string;
  events: StoredEvent[];
}

export interface FlowStateAt {
  flow_id: string;
  at_seq: number;
  folded_through_seq: number;
  state: FlowView;
}

/** Filters of the flows list (docs/api.md, GET /api/v1/flows). */
export interface FlowFilters {
  status?: FlowStatus | readonly FlowStatus[];
  queue?: string;
  since?: string | Date;
  until?: string | Date;
  name?: string;
  /** `{ env: "prod" }`: flows carrying every one of these labels. */
  labels?: Record<string, string>;
  template?: string;
  schedule?: string;
  /** Flows per page, 1 to 1,000 (default 50). */
  limit?: number;
  cursor?: string;
}

export type QueuePolicy = {
  concurrency?: number;
  per_key_concurrency?: number;
  rate_limit?: { per_second: number; max_burst?: number };
  max_retries?: number;
  timeout_secs?: number;
  backoff?: Backoff;
  secrets?: Record<string, unknown>;
};

export interface QueueView {
  name: string;
  policy: QueuePolicy;
  running: number;
  tokens?: number;
}

export interface QueueStats {
  queue: string;
  waiting: number;
  running: number;
  throttled: number;
  minutes: Record<string, { succeeded: number; failed: number }>;
}

export interface SignalSent {
  signal_id: string;
  name: string;
  seq: number;
  replayed: boolean;
}

export interface TemplateInfo {
  name: string;
  version: number;
  description?: string;
  created_at: string;
  updated_at: string;
}

export interface Template {
  name: string;
  version: number;
  flow: Record<string, unknown>;
  params_schema: Record<string, unknown>;
  description?: string;
  created_at: string;
}

export interface TemplateBody {
  flow: Record<string, unknown>;
  params_schema: Record<string, unknown>;
  description?: string;
}

export interface TemplateStored {
  name: string;
  version: number;
  /** False when the body equals the latest version: no version was created. */
  created: boolean;
  created_at: string;
}

export interface TemplateVersions {
  name: string;
  versions: Array<{ name: string; version: number; description?: string; created_at: string }>;
}

export interface TemplateRun {
  flow_id: string;
  status: 'submitted';
  tasks: number;
  template: { name: string; version: number };
  replayed: boolean;
  links: FlowLinks;
}

export type CatchupPolicy = 'none' | 'latest' | 'all';
export type OverlapPolicy = 'skip' | 'buffer_one' | 'allow';

export interface ScheduleBody {
  name?: string;
  cron: string;
  timezone?: string;
  flow?: FlowInput;
  template?: string | { name: string; version?: number };
  params?: Record<string, unknown>;
  queue?: string;
  enabled?: boolean;
  catchup?: CatchupPolicy;
  catchup_window_secs?: number;
  overlap?: OverlapPolicy;
}

export interface ScheduleView {
  id: string;
  name?: string;
  cron: string;
  timezone: string;
  queue?: string;
  queue_id: string | null;
  flow?: unknown;
  template?: { name: string; version: number };
  params?: Record<string, unknown>;
  enabled: boolean;
  catchup: CatchupPolicy;
  catchup_window_secs: number;
  overlap: OverlapPolicy;
  created_at: string;
  updated_at: string;
  created_by?: string;
  last_triggered_at: string | null;
  last_run: { scheduled_at: string; flow_id: string } | null;
  skipped: number;
  next_run_at: string | null;
  next_runs: string[];
}

export interface SecretInfo {
  name: string;
  updated_at: string;
}

export interface DeadLetter {
  dlq_seq: number;
  reason: string;
  source: string;
  stream: string;
  consumer: string;
  subject: string;
  stream_seq: number;
  delivery_count: number;
  time: string;
  data: string;
  encoding: 'utf8' | 'base64' | 'omitted';
  bytes: number;
}

export interface ArtifactInfo {
  name: string;
  task: string;
  bytes: number;
  sha256: string;
  attempt: number;
}

export type ApiKeyScope = 'read' | 'submit' | 'admin';

export interface ApiKeyInfo {
  id: string;
  name: string;
  scope: ApiKeyScope;
  created_at: string;
  expires_at?: string;
  revoked_at?: string;
  last_used_on?: string;
}

export interface CreatedKey extends ApiKeyInfo {
  /** The whole key, `ts_<id>_<secret>`: answered this once only. */
  key: string;
}

/** An approval task's decision (Tasked's ack). */
export interface Decision {
  /** The task's approval code; read from the task's output when left out. */
  code?: string;
  /** Who decided, recorded in the event and, on approval, in the output. */
  approvedBy?: string;
}

export type { FlowStatus, FlowSummary, FlowView, StoredEvent, TaskStatus };
