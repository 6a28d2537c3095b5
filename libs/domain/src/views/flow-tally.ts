import type { FlowState, TaskState, TaskStatus } from '../decider/state.js';
import { countTasks } from './flow-view.js';
import { LOAD_MINUTES, type MinuteCounts, type QueueLoad } from './queue-stats.js';

/** What one task adds to its flow's counts and to its queue's load (see queueLoads). */
interface Share {
  status: TaskStatus;
  queue: string;
  load?: 'waiting' | 'throttled' | 'running';
  /** The minute a finish counts in, and how it ended. */
  finish?: { minute: string; outcome: keyof MinuteCounts };
}

function shareOf(task: TaskState): Share {
  const { status } = task;
  const queue = task.spec.queue;
  if (status === 'ready') return { status, queue, load: task.waiting_reason === undefined ? 'waiting' : 'throttled' };
  if (status === 'dispatched' || status === 'running') return { status, queue, load: 'running' };
  if ((status === 'succeeded' || status === 'failed' || status === 'timed_out') && task.finished_at !== undefined && !task.reused) {
    return { status, queue, finish: { minute: task.finished_at.slice(0, 16), outcome: status === 'succeeded' ? 'succeeded' : 'failed' } };
  }
  return { status, queue };
}

interface Tally {
  waiting: number;
  running: number;
  throttled: number;
  /** Tasks that add anything to the queue's load: a queue without any is left out. */
  shares: number;
  minutes: Map<string, MinuteCounts>;
}

/**
 * A flow's task counts and queue loads, kept up to date task by task: a write of a flow of 10,000
 * tasks then costs what its events touched, not a count of every task. Equal at every step to
 * countTasks and queueLoads of the same state (a property test holds them together).
 */
export class FlowTally {
  private readonly shares = new Map<string, Share>();
  private readonly counted: Record<TaskStatus, number> = countTasks([]);
  private readonly queues = new Map<string, Tally>();
  private complete = false;

  /**
   * Takes in the tasks `touched` names as `state` has them now; every task on the first update,
   * with 'all', or after the state was replaced by a refold (the caller passes 'all' then).
   */
  update(state: FlowState, touched: Iterable<string> | 'all'): void {
    if (touched === 'all' || !this.complete) {
      this.shares.clear();
      for (const status of Object.keys(this.counted) as TaskStatus[]) this.counted[status] = 0;
      this.queues.clear();
      for (const task of Object.values(state.tasks)) this.add(task.id, shareOf(task));
      this.complete = true;
      return;
    }
    for (const taskId of touched) {
      const task = state.tasks[taskId];
      if (task === undefined) continue;
      const prior = this.shares.get(taskId);
      if (prior !== undefined) this.remove(prior);
      this.add(taskId, shareOf(task));
    }
  }

  /** Tasks per status. */
  counts(): Record<TaskStatus, number> {
    return { ...this.counted };
  }

  /** Each queue's share of the flow's tasks, as queueLoads gives it. */
  loads(): Record<string, QueueLoad> {
    const loads: Record<string, QueueLoad> = {};
    for (const queue of [...this.queues.keys()].sort()) {
      const { waiting, running, throttled, minutes } = this.queues.get(queue)!;
      const load: QueueLoad = { waiting, running, throttled };
      if (minutes.size > 0) {
        const kept = [...minutes.keys()].sort().slice(-LOAD_MINUTES);
        load.minutes = Object.fromEntries(kept.map((minute) => [minute, { ...minutes.get(minute)! }]));
      }
      loads[queue] = load;
    }
    return loads;
  }

  private add(taskId: string, share: Share): void {
    this.shares.set(taskId, share);
    this.counted[share.status]++;
    if (share.load === undefined && share.finish === undefined) return;
    let tally = this.queues.get(share.queue);
    if (tally === undefined) {
      tally = { waiting: 0, running: 0, throttled: 0, shares: 0, minutes: new Map() };
      this.queues.set(share.queue, tally);
    }
    tally.shares++;
    if (share.load === 'waiting') tally.waiting++;
    else if (share.load === 'throttled') {
      tally.waiting++;
      tally.throttled++;
    } else if (share.load === 'running') tally.running++;
    if (share.finish !== undefined) {
      const { minute, outcome } = share.finish;
      let slot = tally.minutes.get(minute);
      if (slot === undefined) {
        slot = { succeeded: 0, failed: 0 };
        tally.minutes.set(minute, slot);
      }
      slot[outcome]++;
    }
  }

  private remove(share: Share): void {
    this.counted[share.status]--;
    if (share.load === undefined && share.finish === undefined) return;
    const tally = this.queues.get(share.queue)!;
    tally.shares--;
    if (share.load === 'waiting') tally.waiting--;
    else if (share.load === 'throttled') {
      tally.waiting--;
      tally.throttled--;
    } else if (share.load === 'running') tally.running--;
    if (share.finish !== undefined) {
      const { minute, outcome } = share.finish;
      const slot = tally.minutes.get(minute)!;
      slot[outcome]--;
      if (slot.succeeded === 0 && slot.failed === 0) tally.minutes.delete(minute);
    }
    if (tally.shares === 0) this.queues.delete(share.queue);
  }
}
