/**
 * Redelivered work items are suspects: the executor that ran them may have died because of them.
 * A suspect runs alone (no other item in this process at the same time), so if it kills the
 * process again it takes nothing else with it; other items wait while one is pending or running.
 */
export class Quarantine {
  private shared = 0;
  private exclusive = false;
  private suspectsWaiting = 0;
  private waiters: Array<() => void> = [];

  /** Waits for a turn (calling `keepAlive` meanwhile) and returns the function that ends it. */
  async enter(suspect: boolean, keepAlive: () => void, keepAliveMs: number): Promise<() => void> {
    const timer = setInterval(keepAlive, keepAliveMs);
    if (suspect) this.suspectsWaiting++;
    try {
      while (suspect ? this.exclusive || this.shared > 0 : this.exclusive || this.suspectsWaiting > 0) {
        await new Promise<void>((resolve) => this.waiters.push(resolve));
      }
    } finally {
      clearInterval(timer);
      if (suspect) this.suspectsWaiting--;
    }
    if (suspect) this.exclusive = true;
    else this.shared++;
    return () => {
      if (suspect) this.exclusive = false;
      else this.shared--;
      for (const wake of this.waiters.splice(0)) wake();
    };
  }
}
