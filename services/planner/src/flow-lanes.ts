/**
 * Work keyed by flow: one flow's work runs in the order it was given, one piece at a time, and
 * different flows' work runs alongside. A piece that fails does not hold up the ones after it.
 *
 * A partition's events are handed over in stream order, so each flow's events are folded in
 * stream order while one flow's appends (each waiting for its PubAcks) no longer hold up every
 * other flow of the partition.
 */
export class FlowLanes {
  private readonly tails = new Map<string, Promise<void>>();

  /** Runs `work` after the work given before for `flowId` has settled; resolves or rejects as `work` does. */
  run<T>(flowId: string, work: () => Promise<T>): Promise<T> {
    const before = this.tails.get(flowId);
    const result = before === undefined ? work() : before.then(work);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(flowId, tail);
    void tail.then(() => {
      if (this.tails.get(flowId) === tail) this.tails.delete(flowId);
    });
    return result;
  }

  /** Flows with work given and not yet settled. */
  get busy(): number {
    return this.tails.size;
  }
}
