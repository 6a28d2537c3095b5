export { TaskstreamClient, isFlowEnd, type ClientOptions, type EventsOptions, type SubmitOptions } from './client.js';
export { TaskstreamError, isTransient, type ApiErrorBody, type ApiErrorCode, type ClientErrorCode, type ErrorCode } from './errors.js';
export { FeedIterator, type FeedOptions, type StoredEvent, type WebSocketFactory, type WebSocketLike } from './feed.js';
export { DEFAULT_RETRY, type Call, type RetryPolicy } from './http.js';
export type * from './types.js';
export type { Artifacts, DeadLetters, Keys, Queues, Schedules, Secrets, Templates, Triggers } from './resources.js';
