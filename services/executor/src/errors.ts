/*
 * Why an attempt or a work item ends without its step's own outcome. Each one is told apart by its
 * class where the outcome is chosen, so none of them may be confused with a step's failure.
 */

/** NATS did not store an event: not the step's fault, so no attempt is spent on it. */
export class InfrastructureError extends Error {
  override name = 'InfrastructureError';
}

/** The next attempt waits long enough to be worth surviving this process: JetStream holds the item meanwhile. */
export class DeferredRetry extends Error {
  override name = 'DeferredRetry';
  constructor(readonly delayMs: number) {
    super(`next attempt in ${delayMs} ms`);
  }
}

/** Why a running step was stopped when its executor shuts down: the attempt does not count. */
export class Interrupted extends Error {
  override name = 'Interrupted';
}

/** Why an attempt's signal was aborted when its `timeout_secs` passed. */
export class AttemptTimeout extends Error {
  override name = 'AttemptTimeout';
}
