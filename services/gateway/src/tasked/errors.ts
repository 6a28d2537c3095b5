import type { FastifyError } from 'fastify';
import { ApiError, apiError, type ErrorCode, type Problem } from '../errors.js';

/**
 * Errors as Tasked answers them: `{ "error": "<snake_code>", "message": "<text>" }`, with Tasked's
 * codes and statuses. Where Taskstream knows more (every problem of a flow), it rides along in
 * `problems`, which Tasked's client ignores.
 */
export class TaskedError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }

  toJSON(): { error: string; message: string; [detail: string]: unknown } {
    return { error: this.error, message: this.message, ...this.extra };
  }
}

/** Tasked's not-found answers, word for word. */
export const notFound = {
  flow: (id: string) => new TaskedError(404, 'flow_not_found', `Flow '${id}' not found`),
  queue: (id: string) => new TaskedError(404, 'queue_not_found', `Queue '${id}' not found`),
  task: (flowId: string, taskId: string) => new TaskedError(404, 'task_not_found', `Task '${taskId}' not found in flow '${flowId}'`),
  schedule: (id: string) => new TaskedError(404, 'schedule_not_found', `Schedule '${id}' not found`),
};

/**
 * Taskstream's codes as Tasked's: the status and snake_case code a Tasked client expects. A code
 * not listed keeps its status and its name in lower case; its message is Taskstream's.
 */
export const TASKED_CODES: Partial<Record<ErrorCode, readonly [status: number, error: string]>> = {
  INVALID_BODY: [400, 'invalid_json'],
  INVALID_REQUEST: [422, 'invalid_request'],
  INVALID_QUEUE_POLICY: [400, 'invalid_queue_config'],
  INVALID_PARAMETER: [400, 'invalid_parameter'],
  UNAUTHORIZED: [401, 'unauthorized'],
  FORBIDDEN: [403, 'forbidden'],
  NOT_AN_APPROVAL: [409, 'invalid_state_transition'],
  INVALID_APPROVAL_CODE: [403, 'invalid_approval_code'],
  TASK_NOT_WAITING: [409, 'invalid_state_transition'],
  TOO_MANY_SCHEDULES: [409, 'limit_reached'],
  FLOW_TOO_LARGE: [413, 'flow_too_large'],
  BODY_TOO_LARGE: [413, 'payload_too_large'],
  ROUTE_NOT_FOUND: [404, 'not_found'],
  RATE_LIMITED: [429, 'rate_limited'],
  INTERNAL: [500, 'internal_error'],
  UNAVAILABLE: [503, 'service_unavailable'],
};

/** Tasked's message for a missing or wrong key. */
export const UNAUTHORIZED_MESSAGE = 'Invalid or missing API key';

const first = (problems: readonly Problem[]) => {
  const [head] = problems;
  if (head === undefined) return '';
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more, listed in "problems")` : '';
  return `${head.path}: ${head.message}${more}`;
};

const GRAPH_PATH = /(^|\.)(depends_on(\[\d+\])?|id)$/;

/**
 * Which of Tasked's submission errors a flow's problems are, judged by the first (Tasked reports
 * only its first): an unknown executor is `no_executor`, a problem of the graph (ids, dependencies,
 * cycles, no task at all) `invalid_graph`, anything else a body Tasked could not read into a flow
 * (422). Every problem is listed in `problems`.
 */
export function flowProblems(problems: readonly Problem[], prefix = ''): TaskedError {
  const head = problems[0];
  const path = head?.path.startsWith(prefix) ? head.path.slice(prefix.length) : (head?.path ?? '');
  const extra = { problems: [...problems] };
  if (head !== undefined && /^tasks\[\d+\]\.executor$/.test(path) && /executor/.test(head.message)) return new TaskedError(400, 'no_executor', first(problems), extra);
  if (head !== undefined && (GRAPH_PATH.test(path) || /cycle|duplicate task id|at least one task/.test(head.message))) return new TaskedError(400, 'invalid_graph', first(problems), extra);
  return new TaskedError(422, 'invalid_flow', first(problems), extra);
}

/** A schedule's problems: its cron first, then its flow's as a submission's, then the rest. */
export function scheduleProblems(problems: readonly Problem[]): TaskedError {
  const cron = problems.find((p) => p.path === 'cron' || p.path === 'timezone');
  if (cron !== undefined) return new TaskedError(400, 'invalid_cron_expression', `${cron.message}`, { problems: [...problems] });
  if (problems[0]?.path.startsWith('flow')) return flowProblems(problems, 'flow.');
  return new TaskedError(422, 'invalid_request', first(problems), { problems: [...problems] });
}

/** A Taskstream error as Tasked answers it. */
export function fromApiError(error: ApiError): TaskedError {
  const problems = error.details.problems as Problem[] | undefined;
  if (error.code === 'INVALID_FLOW' && problems) return flowProblems(problems);
  if (error.code === 'INVALID_SCHEDULE' && problems) return scheduleProblems(problems);
  if (error.code === 'UNAUTHORIZED') return new TaskedError(401, 'unauthorized', UNAUTHORIZED_MESSAGE);
  const [status, code] = TASKED_CODES[error.code] ?? [error.status, error.code.toLowerCase()];
  // Internal errors say nothing more, as Tasked's; the gateway logs them.
  if (status === 500) return new TaskedError(500, code, 'internal error');
  const message = problems && problems.length > 0 ? first(problems) : error.message;
  const { problems: _problems, ...details } = error.details;
  return new TaskedError(status, code, message, { ...details, ...(problems && { problems }) });
}

/** What the gateway answers for errors fastify raises (body limit, content type), as Tasked answers them. */
export function fromFramework(error: FastifyError, bodyLimit: number, contentType: string): TaskedError | undefined {
  if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return fromApiError(apiError('BODY_TOO_LARGE', bodyLimit));
  if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return new TaskedError(415, 'unsupported_media_type', `Expected request with \`Content-Type: application/json\`, not "${contentType.slice(0, 100)}"`);
  if (error.statusCode !== undefined && error.statusCode < 500) return new TaskedError(400, 'invalid_json', `the request body could not be read: ${error.message}`);
  return undefined;
}

/** Any error a Tasked route meets, as Tasked answers it; undefined for a failure of the gateway itself. */
export function toTasked(error: unknown, bodyLimit: number, contentType: string): TaskedError | undefined {
  if (error instanceof TaskedError) return error;
  if (error instanceof ApiError) return fromApiError(error);
  if (error instanceof Error && 'code' in error) return fromFramework(error as FastifyError, bodyLimit, contentType);
  return undefined;
}
