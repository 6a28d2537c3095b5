import { RequestOne } from '@nats-io/nats-core/internal';

const settled = Symbol('taskstream.settled');
const patched = Symbol('taskstream.answered-requests-patched');

type PatchedRequest = RequestOne & { [settled]?: true };

/**
 * NATS.js 3.3 ends every request it has answered by rejecting the answered promise with a fresh
 * `RequestError("cancelled")` (`RequestOne.cancel`): a no-op, but one that captures a stack trace
 * each time, 2-8% of a service's CPU in the benchmarks (every publish waits for its PubAck through
 * a request). Here that error is built without a stack once the request is answered; a request
 * cancelled before its answer (a connection closing) still rejects with a full one. Applied once
 * per process, by `connectNats`.
 */
export function skipStacksOfAnsweredRequests(): void {
  const proto = RequestOne.prototype as PatchedRequest & { [patched]?: true };
  if (proto[patched]) return;
  proto[patched] = true;
  const resolver = proto.resolver;
  const cancel = proto.cancel;
  proto.resolver = function (this: PatchedRequest, err: Error | null, msg: Parameters<RequestOne['resolver']>[1]) {
    this[settled] = true;
    resolver.call(this, err, msg);
  };
  proto.cancel = function (this: PatchedRequest, err?: Error) {
    if (err !== undefined || !this[settled]) return cancel.call(this, err);
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      cancel.call(this);
    } finally {
      Error.stackTraceLimit = limit;
    }
  };
}
