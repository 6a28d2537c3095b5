import { FairQueue, type FairTask } from '@taskstream/domain';

/**
 * Ready tasks waiting in fair order, also found by task key and by flow: a task that ends while it
 * waits (its flow was cancelled) leaves without being dispatched.
 */
export class WaitingRoom<T extends FairTask & { key: string }> {
  private readonly queue = new FairQueue<T>();
  /** Usually one per key; a ready event redelivered while its first copy waits makes two. */
  private readonly byKey = new Map<string, T[]>();
  private readonly byFlow = new Map<string, number>();

  get size(): number {
    return this.queue.size;
  }

  add(task: T): void {
    this.queue.add(task);
    const same = this.byKey.get(task.key);
    if (same) same.push(task);
    else this.byKey.set(task.key, [task]);
    this.byFlow.set(task.flowId, (this.byFlow.get(task.flowId) ?? 0) + 1);
  }

  first(): T | undefined {
    return this.queue.first();
  }

  ordered(limit: number): T[] {
    return this.queue.ordered(limit);
  }

  values(): IterableIterator<T> {
    return this.queue.values();
  }

  waitsFor(flowId: string): boolean {
    return this.byFlow.has(flowId);
  }

  /** Takes `task` out as admitted; false if it no longer waits. */
  admit(task: T): boolean {
    if (!this.queue.admit(task)) return false;
    this.forget(task);
    return true;
  }

  /** Takes out every waiting copy of the task `key`. */
  take(key: string): T[] {
    const tasks = [...(this.byKey.get(key) ?? [])];
    for (const task of tasks) {
      this.queue.remove(task);
      this.forget(task);
    }
    return tasks;
  }

  drain(): T[] {
    this.byKey.clear();
    this.byFlow.clear();
    return this.queue.drain();
  }

  private forget(task: T): void {
    const same = this.byKey.get(task.key)!;
    if (same.length === 1) this.byKey.delete(task.key);
    else same.splice(same.indexOf(task), 1);
    const left = this.byFlow.get(task.flowId)! - 1;
    if (left === 0) this.byFlow.delete(task.flowId);
    else this.byFlow.set(task.flowId, left);
  }
}
