import type { Problem } from '@taskstream/domain';

/** Codes the gateway answers with (docs/api.md lists when each is used). */
export type ApiErrorCode =
  | 'INVALID_FLOW' | 'INVALID_BODY' | 'INVALID_REQUEST' | 'INVALID_QUEUE_POLICY' | 'INVALID_SCHEDULE' | 'INVALID_TEMPLATE' | 'INVALID_PARAMS'
  | 'INVALID_TRIGGER' | 'INVALID_PARAMETER' | 'INVALID_URL' | 'INVALID_UPGRADE' | 'MALFORMED_REQUEST' | 'UNAUTHORIZED' | 'INVALID_SIGNATURE'
  | 'NOT_AN_APPROVAL' | 'FORBIDDEN' | 'INVALID_APPROVAL_CODE' | 'FLOW_NOT_FOUND' | 'TASK_NOT_FOUND' | 'QUEUE_NOT_FOUND' | 'SCHEDULE_NOT_FOUND'
  | 'DEAD_LETTER_NOT_FOUND' | 'API_KEY_NOT_FOUND' | 'SECRET_NOT_FOUND' | 'ARTIFACT_NOT_FOUND' | 'ARTIFACT_UPLOAD_UNSUPPORTED' | 'ARTIFACT_AMBIGUOUS'
  | 'TEMPLATE_NOT_FOUND' | 'TEMPLATE_VERSION_NOT_FOUND' | 'TRIGGER_NOT_FOUND' | 'ROUTE_NOT_FOUND' | 'REQUEST_TIMEOUT' | 'FLOW_NOT_FINISHED'
  | 'FLOW_ALREADY_FINISHED' | 'LIMIT_REACHED' | 'TASK_NOT_WAITING' | 'TOO_MANY_SCHEDULES' | 'EVENT_LETTER_NOT_RETRYABLE' | 'LETTER_WITHOUT_PAYLOAD'
  | 'FLOW_TOO_LARGE' | 'BODY_TOO_LARGE' | 'SIGNAL_TOO_LARGE' | 'URI_TOO_LONG' | 'UNSUPPORTED_MEDIA_TYPE' | 'IDEMPOTENCY_KEY_REUSED'
  | 'UPGRADE_REQUIRED' | 'RATE_LIMITED' | 'HEADERS_TOO_LARGE' | 'INTERNAL' | 'UNAVAILABLE' | 'TRIGGER_MISCONFIGURED';

/**
 * Codes of failures the client finds itself, with no answer from the gateway to carry: the gateway
 * could not be reached (NETWORK), did not answer in time (TIMEOUT), answered something that is not
 * the API's JSON (BAD_RESPONSE), a live feed could not be (re)opened (FEED_FAILED), or the caller
 * aborted (ABORTED).
 */
export type ClientErrorCode = 'NETWORK' | 'TIMEOUT' | 'BAD_RESPONSE' | 'FEED_FAILED' | 'ABORTED';

/** Any code: the ones above, or one a newer gateway added (kept as sent). */
export type ErrorCode = ApiErrorCode | ClientErrorCode | (string & {});

/** The `error` object of an API answer. */
export interface ApiErrorBody {
  code: string;
  message: string;
  problems?: Problem[];
  parameter?: string;
  required_scope?: string;
  [detail: string]: unknown;
}

/**
 * Every failure of a client call: the API's `code` and `message` (or the client's own code), the
 * HTTP status when there was an answer, and the details some codes add (`problems`, `parameter`,
 * `requiredScope`).
 */
export class TaskstreamError extends Error {
  override readonly name = 'TaskstreamError';
  readonly code: ErrorCode;
  /** The HTTP status, or 0 when the gateway gave no answer. */
  readonly status: number;
  readonly problems: Problem[];
  readonly parameter?: string;
  readonly requiredScope?: string;
  /** Seconds to wait before retrying, from `Retry-After` (429, 503). */
  readonly retryAfter?: number;
  /** The whole `error` object as answered. */
  readonly body?: ApiErrorBody;

  constructor(code: ErrorCode, message: string, options: { status?: number; body?: ApiErrorBody; retryAfter?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = options.status ?? 0;
    this.problems = options.body?.problems ?? [];
    if (options.body?.parameter !== undefined) this.parameter = options.body.parameter;
    if (options.body?.required_scope !== undefined) this.requiredScope = options.body.required_scope;
    if (options.retryAfter !== undefined) this.retryAfter = options.retryAfter;
    if (options.body !== undefined) this.body = options.body;
  }

  /** The message followed by each problem on its own line, `path: message`. */
  describe(): string {
    return [this.message, ...this.problems.map((p) => `  ${p.path}: ${p.message}`)].join('\n');
  }
}

/** Whether a failure may go away by itself: no answer, a timeout, 429, 502, 503 or 504. */
export function isTransient(error: unknown): boolean {
  if (!(error instanceof TaskstreamError)) return false;
  return error.code === 'NETWORK' || error.code === 'TIMEOUT' || [408, 429, 502, 503, 504].includes(error.status);
}

/** The error an answer with a non-2xx status stands for. */
export function errorOfAnswer(status: number, text: string, retryAfterHeader: string | null): TaskstreamError {
  const retryAfter = retryAfterOf(retryAfterHeader);
  const extra = retryAfter === undefined ? {} : { retryAfter };
  let body: ApiErrorBody | undefined;
  try {
    const parsed = JSON.parse(text) as { error?: unknown };
    const error = parsed?.error as Partial<ApiErrorBody> | undefined;
    if (error && typeof error.code === 'string' && typeof error.message === 'string') body = error as ApiErrorBody;
  } catch {
    // Not the API's JSON: reported below.
  }
  if (!body) return new TaskstreamError('BAD_RESPONSE', `the gateway answered ${status} without the API's error body (${snippet(text)}); check that the URL points at a Taskstream gateway`, { status, ...extra });
  return new TaskstreamError(body.code, body.message, { status, body, ...extra });
}

function retryAfterOf(header: string | null): number | undefined {
  if (header === null || !/^\d{1,6}$/.test(header.trim())) return undefined;
  return Number(header.trim());
}

/** A short, single-line excerpt of a text for a message. */
export function snippet(text: string, max = 120): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line === '' ? 'an empty body' : line.length > max ? `${line.slice(0, max)}…` : line;
}
