/**
 * Every error the gateway answers with, in one table: a stable code, the HTTP status, and a message
 * that says what is wrong and what to do. Bodies look like
 * `{ "error": { "code": "FLOW_NOT_FOUND", "message": "...", ...details } }`.
 */
export const ERRORS = {
  INVALID_FLOW: { status: 400, message: (n: number) => `the flow has ${n} problem${n === 1 ? '' : 's'}; fix each one listed in "problems" and submit again` },
  INVALID_BODY: { status: 400, message: (why: string) => `the request body could not be read: ${why}` },
  INVALID_REQUEST: { status: 400, message: (n: number) => `the request body has ${n} problem${n === 1 ? '' : 's'}; fix each one listed in "problems" and send it again` },
  INVALID_QUEUE_POLICY: { status: 400, message: (n: number) => `the queue policy has ${n} problem${n === 1 ? '' : 's'}; fix each one listed in "problems" and send it again` },
  INVALID_SCHEDULE: { status: 400, message: (n: number) => `the schedule has ${n} problem${n === 1 ? '' : 's'}; fix each one listed in "problems" and send it again` },
  INVALID_PARAMETER: {
    status: 400,
    message: (name: string, why: string) => `parameter "${name}" ${why}`,
    details: (name: string) => ({ parameter: name }),
  },
  INVALID_UPGRADE: { status: 400, message: (why: string) => `the WebSocket handshake is not valid: ${why}; connect with a WebSocket client` },
  INVALID_URL: { status: 400, message: (part: string) => `the URL path is not valid: ${part} is not a percent-encoded path segment; encode "%" as %25` },
  MALFORMED_REQUEST: { status: 400, message: (why: string) => `the request is not valid HTTP/1.1 (${why}); check the client that sent it` },
  UNAUTHORIZED: { status: 401, message: () => 'a valid API key is required: send Authorization: Bearer ts_…' },
  FORBIDDEN: {
    status: 403,
    message: (needed: string, has: string) => `this route needs the "${needed}" scope; the key has "${has}"`,
    details: (needed: string) => ({ required_scope: needed }),
  },
  FLOW_NOT_FOUND: { status: 404, message: (id: string) => `no flow with id "${id}"; check the id returned when the flow was submitted (a flow that ended longer ago than the flow retention, if one is set, has been removed)` },
  TASK_NOT_FOUND: { status: 404, message: (flowId: string, taskId: string) => `flow "${flowId}" has no task "${taskId}"; GET /api/v1/flows/${flowId} lists its tasks (encode "/" in a task id as %2F)` },
  NOT_AN_APPROVAL: {
    status: 400,
    message: (taskId: string, executor: string) => `task "${taskId}" runs the ${executor} executor; only approval tasks are acknowledged, other tasks end by themselves`,
  },
  INVALID_APPROVAL_CODE: {
    status: 403,
    message: (taskId: string) => `the code does not match the approval code of task "${taskId}"; send the "code" of the task's output (GET the flow), which changes with every run`,
  },
  TASK_NOT_WAITING: { status: 409, message: (taskId: string, why: string) => `task "${taskId}" is not waiting for approval: ${why}` },
  DEAD_LETTER_NOT_FOUND: { status: 404, message: (seq: number) => `no dead letter with sequence ${seq}; list them with GET /api/v1/dlq` },
  QUEUE_NOT_FOUND: { status: 404, message: (name: string) => `queue "${name}" has no policy, so it runs with the default: no rate or concurrency limit; create one with PUT /api/v1/queues/${name}` },
  SECRET_NOT_FOUND: { status: 404, message: (name: string) => `no secret named "${name}"; list them with GET /api/v1/secrets` },
  API_KEY_NOT_FOUND: { status: 404, message: (id: string) => `no API key with id "${id}"; list them with GET /api/v1/keys` },
  ARTIFACT_NOT_FOUND: {
    status: 404,
    message: (flowId: string, name: string, why: string) => `flow "${flowId}" has no artifact "${name}": ${why}; GET /api/v1/flows/${flowId}/artifacts lists its artifacts`,
  },
  ARTIFACT_UPLOAD_UNSUPPORTED: {
    status: 405,
    message: () =>
      "artifacts are stored by the flow's shell steps, not uploaded: a step writes its files to the directory $TASKSTREAM_ARTIFACTS (Tasked's $TASKED_ARTIFACTS) names, and they are stored when it succeeds; read them with GET",
  },
  ARTIFACT_AMBIGUOUS: {
    status: 409,
    message: (name: string, tasks: readonly string[]) => `tasks ${tasks.map((t) => `"${t}"`).join(', ')} each stored an artifact "${name}"; say which one with ?task=<id>`,
    details: (_name: string, tasks: readonly string[]) => ({ tasks: [...tasks] }),
  },
  SCHEDULE_NOT_FOUND: { status: 404, message: (id: string) => `no schedule with id "${id}"; list them with GET /api/v1/schedules` },
  ROUTE_NOT_FOUND: { status: 404, message: (method: string, url: string) => `no route ${method} ${url}; see docs/api.md for the API` },
  REQUEST_TIMEOUT: { status: 408, message: () => 'the request did not arrive in time; send it again' },
  FLOW_NOT_FINISHED: { status: 409, message: (id: string, status: string) => `flow "${id}" is still ${status}; rerun it once it has finished, or fork it at a sequence` },
  FLOW_ALREADY_FINISHED: { status: 409, message: (id: string, status: string) => `flow "${id}" already ${status}; there is nothing left to cancel` },
  EVENT_LETTER_NOT_RETRYABLE: {
    status: 409,
    message: (seq: number, streamSeq: number) =>
      `dead letter ${seq} is event ${streamSeq} of the immutable log, which already holds it: retrying would write a second copy that every service processes again; read it, fix the cause, then cancel and rerun its flow, and discard the letter`,
  },
  LETTER_WITHOUT_PAYLOAD: {
    status: 409,
    message: (seq: number, bytes: number) => `dead letter ${seq} does not carry its ${bytes}-byte payload (too large for a letter), so it cannot be republished; discard it`,
  },
  TOO_MANY_SCHEDULES: { status: 409, message: (limit: number) => `there are already ${limit} schedules, the most one installation keeps; delete schedules no longer used (DELETE /api/v1/schedules/{id})` },
  FLOW_TOO_LARGE: {
    status: 413,
    message: (part: string, size: number, limit: number) =>
      `the flow is too large: ${part} would be ${size} bytes, over the ${limit}-byte limit of what one message can carry; make that part smaller (large data belongs in files or object storage the step fetches, not in the flow)`,
  },
  BODY_TOO_LARGE: { status: 413, message: (limit: number) => `the request body is larger than the ${Math.round(limit / 1024)} KiB limit; split the flow, or raise the gateway's TASKSTREAM_BODY_LIMIT` },
  SIGNAL_TOO_LARGE: { status: 413, message: (bytes: number, limit: number) => `the signal's payload is ${bytes} bytes, over the ${limit / 1024} KiB limit; send a reference to large data (a URL, an artifact) instead` },
  URI_TOO_LONG: { status: 414, message: (what: string) => `the URL is too long: ${what}; no id, name or parameter of this API is that long` },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: (type: string) => `content type "${type}" is not accepted; send the flow as application/json or application/yaml` },
  IDEMPOTENCY_KEY_REUSED: { status: 422, message: (flowId: string) => `this Idempotency-Key was already used for flow "${flowId}" with a different flow definition; use a new key for a different flow` },
  UPGRADE_REQUIRED: { status: 426, message: (path: string) => `${path} is a WebSocket feed; connect with a WebSocket client (ws:// or wss://)` },
  RATE_LIMITED: {
    status: 429,
    message: (limit: number, after: string) => `too many requests: at most ${limit} a second are allowed for this key (or, without keys, this address); retry after ${after}, as the Retry-After header says`,
  },
  HEADERS_TOO_LARGE: { status: 431, message: (limit: number) => `the request line and headers together are larger than ${Math.round(limit / 1024)} KiB; send fewer or shorter headers, or a shorter URL` },
  UNAVAILABLE: { status: 503, message: (why: string) => `Taskstream cannot serve this right now: ${why}; retry shortly` },
  INVALID_TEMPLATE: { status: 400, message: (n: number) => `the template has ${n} problem${n === 1 ? '' : 's'}; fix each one listed in "problems" and send it again` },
  INVALID_PARAMS: { status: 400, message: (n: number) => `the run's params have ${n} problem${n === 1 ? '' : 's'} against the template's params_schema; fix each one listed in "problems" and run again` },
  INVALID_TRIGGER: { status: 400, message: (n: number) => `the trigger has ${n} problem${n === 1 ? '' : 's'}; fix each one listed in "problems" and send it again` },
  INVALID_SIGNATURE: { status: 401, message: (why: string) => `the delivery could not be verified: ${why}; nothing was started (check the signing secret and the sender's clock)` },
  TEMPLATE_NOT_FOUND: { status: 404, message: (name: string) => `no template named "${name}"; list them with GET /api/v1/templates` },
  TEMPLATE_VERSION_NOT_FOUND: {
    status: 404,
    message: (name: string, version: number) => `template "${name}" has no version ${version} (kept: the last 100); list its versions with GET /api/v1/templates/${name}/versions`,
  },
  TRIGGER_NOT_FOUND: { status: 404, message: (name: string) => `no trigger named "${name}"; list them with GET /api/v1/triggers` },
  LIMIT_REACHED: { status: 409, message: (why: string) => why },
  TRIGGER_MISCONFIGURED: { status: 503, message: (name: string, why: string) => `trigger "${name}" cannot start runs: ${why}; an operator must fix the trigger, after which the sender's retries succeed` },
  INTERNAL: { status: 500, message: () => 'an unexpected error occurred; it has been logged' },
} as const;

export type ErrorCode = keyof typeof ERRORS;

/** When each error is answered, as the API document states it (docs/api.md has the same table). */
export const ERROR_WHEN: Record<ErrorCode, string> = {
  INVALID_FLOW: 'the body is not valid JSON/YAML or not a valid flow; `problems` lists every one with its path',
  INVALID_BODY: 'an empty or unreadable body (not JSON)',
  INVALID_REQUEST: 'a JSON body of the wrong shape; `problems` lists every one with its path',
  INVALID_QUEUE_POLICY: 'a queue policy with problems, listed in `problems`',
  INVALID_SCHEDULE: 'a schedule with problems (its fields, its cron or time zone, its flow as a submission, or its template and params); `problems` lists every one with its path',
  INVALID_PARAMETER: 'a query, path or header parameter is wrong, unknown or given twice; `parameter` names it',
  INVALID_UPGRADE: 'a WebSocket handshake with a wrong `Upgrade` or `Sec-WebSocket-*` header',
  INVALID_URL: 'the path is not valid percent-encoding',
  MALFORMED_REQUEST: 'not valid HTTP/1.1 (answered, then the connection is closed)',
  UNAUTHORIZED: 'no valid API key: missing, malformed, unknown, revoked or expired, all answered alike',
  FORBIDDEN: "the key lacks the route's scope; `required_scope` names the scope needed",
  FLOW_NOT_FOUND: 'no flow with that id (also for a malformed id, and for a flow removed past its retention)',
  TASK_NOT_FOUND: 'the flow has no task with that id',
  NOT_AN_APPROVAL: 'acking a task that is not an approval task',
  INVALID_APPROVAL_CODE: "an ack whose `code` is missing or is not the task's approval code; nothing is changed",
  TASK_NOT_WAITING: 'acking an approval task that is not waiting: not yet waiting, already acked (a second ack), timed out or cancelled; the message says which',
  DEAD_LETTER_NOT_FOUND: 'no dead letter with that sequence',
  QUEUE_NOT_FOUND: 'a queue without a policy',
  SECRET_NOT_FOUND: 'deleting a secret that does not exist',
  API_KEY_NOT_FOUND: 'revoking a key id that does not exist',
  ARTIFACT_NOT_FOUND: "no artifact by that name in the flow (or of the `task` given), or its file is gone from the artifacts store",
  ARTIFACT_UPLOAD_UNSUPPORTED: "a `PUT` of an artifact: steps store their artifacts, the API only reads them",
  ARTIFACT_AMBIGUOUS: 'downloading a name several tasks stored, without `task`; `tasks` lists them',
  SCHEDULE_NOT_FOUND: 'no schedule with that id (also for a malformed id)',
  ROUTE_NOT_FOUND: 'no such route (with keys on, only for a request with a valid key)',
  REQUEST_TIMEOUT: 'the request did not arrive in time',
  FLOW_NOT_FINISHED: 'rerunning a flow that has not ended',
  FLOW_ALREADY_FINISHED: 'cancelling a flow that already ended',
  EVENT_LETTER_NOT_RETRYABLE: 'retrying a dead letter of the event log, which already holds the event',
  LETTER_WITHOUT_PAYLOAD: 'retrying a dead letter whose payload was too large to carry',
  TOO_MANY_SCHEDULES: 'creating one more schedule than an installation keeps (1,000)',
  FLOW_TOO_LARGE: 'a part of the flow cannot fit in the messages that carry it',
  BODY_TOO_LARGE: 'the body is over the limit (10 MiB by default)',
  SIGNAL_TOO_LARGE: "a signal's payload over 64 KiB",
  URI_TOO_LONG: 'the request line is over 16 KiB, or a path segment over 128 characters',
  UNSUPPORTED_MEDIA_TYPE: 'a body that is not JSON or YAML',
  IDEMPOTENCY_KEY_REUSED: 'an `Idempotency-Key` already used for a different flow',
  UPGRADE_REQUIRED: 'a plain HTTP request to a WebSocket feed',
  RATE_LIMITED: 'more requests a second than the key (or, without keys, the address) may make; `Retry-After` says when to retry',
  HEADERS_TOO_LARGE: 'the request line and headers together are over 16 KiB',
  UNAVAILABLE: 'NATS JetStream did not answer, or the gateway is shutting down; retry',
  INVALID_TEMPLATE: 'a template that is not valid: its shape, its params_schema, or its flow as a submission is checked; `problems` lists every one with its path',
  INVALID_PARAMS: "a run's params (or a delivery's mapped params) that its template's params_schema refuses; `problems` lists every one with its path",
  INVALID_TRIGGER: 'a trigger definition with problems (shape, references, its secret or template missing); `problems` lists every one',
  INVALID_SIGNATURE: 'a webhook delivery whose signature is missing or wrong, or whose timestamp is more than 5 minutes off; nothing is started',
  TEMPLATE_NOT_FOUND: 'no template with that name',
  TEMPLATE_VERSION_NOT_FOUND: 'the template has no such version (only the last 100 are kept)',
  TRIGGER_NOT_FOUND: 'no trigger with that name',
  LIMIT_REACHED: 'creating one more template or trigger than an installation keeps (1,000 each)',
  TRIGGER_MISCONFIGURED: "a delivery for a trigger whose secret or template is gone; an operator must fix it (senders retry 5xx answers)",
  INTERNAL: 'a bug; it is logged',
};

/** One thing wrong with a request: where (a JSON path or a parameter name) and what to do. */
export interface Problem {
  path: string;
  message: string;
}

export class ApiError extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly status: number,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }

  toJSON() {
    return { error: { code: this.code, message: this.message, ...this.details } };
  }
}

type Entry = { status: number; message: (...args: never[]) => string; details?: (...args: never[]) => Record<string, unknown> };

export function apiError<C extends ErrorCode>(code: C, ...args: Parameters<(typeof ERRORS)[C]['message']>): ApiError {
  const entry: Entry = ERRORS[code];
  const call = <R>(f: (...a: never[]) => R) => (f as (...a: unknown[]) => R)(...args);
  return new ApiError(code, entry.status, call(entry.message), entry.details ? call(entry.details) : {});
}

/** An error whose table message counts the problems, listed in `problems`. */
export function problemsError(code: 'INVALID_FLOW' | 'INVALID_REQUEST' | 'INVALID_QUEUE_POLICY', problems: Problem[]): ApiError {
  return new ApiError(code, ERRORS[code].status, ERRORS[code].message(problems.length), { problems });
}
