/**
 * The bounds of what a flow and a queue policy may say, checked at submission. Each is chosen so
 * that every consumer can represent the value exactly: milliseconds are whole numbers far below
 * 2^53, seconds are finite, and anything that becomes a timer or a redelivery delay stays within
 * what the process waiting on it can count.
 */

/** The shortest timeout: one millisecond, the resolution of timers and of `timeout_ms` in events. */
export const MIN_TIMEOUT_SECS = 0.001;
/**
 * The longest task, queue-default, flow, http-request and delay-step duration: 365 days. Timers
 * longer than a Node timer's 2^31-1 ms must be waited in chunks by whoever runs them.
 */
export const MAX_TIMEOUT_SECS = 31_536_000;
/** A delay step's wait, in whole milliseconds. */
export const MAX_DELAY_MS = MAX_TIMEOUT_SECS * 1000;

/** Backoff delays (first, fixed and cap): one day in whole milliseconds. Longer waits are a schedule, not a retry. */
export const MAX_BACKOFF_DELAY_MS = 86_400_000;
/** Beyond 10 the second retry already waits as long as the cap would allow. */
export const MAX_BACKOFF_MULTIPLIER = 10;
/** Retries after the first attempt, for a task and a queue's `max_retries`. */
export const MAX_RETRIES = 100;

export const MIN_PRIORITY = -1000;
export const MAX_PRIORITY = 1000;

/** Concurrency limits (queue-wide and per key): far above any executor pool, far below what KV records can hold. */
export const MAX_CONCURRENCY = 100_000;
/**
 * A rate limit's refill. The floor, one task a day, keeps the dispatcher's wait for the next token
 * within a day; the ceiling is Tasked's.
 */
export const MIN_RATE_PER_SECOND = 1 / 86_400;
export const MAX_RATE_PER_SECOND = 1e9;
/** A token bucket's capacity, and the most a queue can start at once after a quiet period. */
export const MAX_BURST = 1_000_000;

/**
 * Arrays and objects inside one another in a flow document, counted from its top (the flow object
 * is level 1, a task's `config` object level 4). Parsers, schemas and serializers recurse, so a
 * deeper document is refused before any of them sees it; events wrap a definition in a few more levels.
 */
export const MAX_NESTING_DEPTH = 64;

export const MAX_LABELS = 64;
export const MAX_LABEL_KEY_LENGTH = 128;
export const MAX_LABEL_VALUE_LENGTH = 256;
/** A condition's CEL source (Tasked's Rhai allowed 10,000 characters; no real condition comes near). */
export const MAX_CONDITION_LENGTH = 4096;

/**
 * What a rejection lists: at most MAX_PROBLEMS problems, then one saying how many more there are,
 * and never more than MAX_PROBLEMS_BYTES of JSON in all, however large or broken the flow.
 */
export const MAX_PROBLEMS = 100;
export const MAX_PROBLEMS_BYTES = 64 * 1024;
