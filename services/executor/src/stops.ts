import { eventSubject, eventTypeFilter, flowIdOfSubject, STOP_EVENTS, stopReason, STOPS, strongerStop, type Stop, type TaskSpec } from '@taskstream/domain';
import { storesAnyOn, watchStoredSubjects } from '@taskstream/nats';
import type { ServiceContext } from '@taskstream/runtime';
import { InfrastructureError, Interrupted } from './errors.js';

/** Flows remembered as stopped; the oldest is forgotten first, and the log still has it. */
const MAX_KNOWN_STOPS = 10_000;

/**
 * The flows known here to be stopped (cancel, deadline, fail_fast), and the tasks running for
 * each flow, so that a stop seen live ends them at once. The value kept says why, for the task's
 * cancelled event.
 */
export class FlowStops {
  private readonly stopped = new Map<string, Stop>();
  private readonly running = new Map<string, Map<AbortController, TaskSpec>>();
  /** Flows whose stored stops were read here, after the watch began: it has told every later one. */
  private readonly read = new Set<string>();

  /** `readStored` lists the stops the log holds for a flow (see readStoredStops). */
  constructor(private readonly readStored: (flowId: string) => Promise<Stop[]>) {}

  /** Why `spec` is stopped by what is known here, without asking the log. */
  reasonFor(flowId: string, spec: TaskSpec): string | undefined {
    return stopReason(this.stopped.get(flowId), spec);
  }

  /** Remembers the flow's stop and aborts its running tasks that it stops. */
  stop(flowId: string, stop: Stop): void {
    // The first stop holds, unless a later one also stops what the first spared (cancel after fail_fast).
    const known = this.stopped.get(flowId);
    if (known !== undefined && strongerStop(known, stop) === known) return;
    this.stopped.set(flowId, stop);
    if (this.stopped.size > MAX_KNOWN_STOPS) this.stopped.delete(this.stopped.keys().next().value!);
    for (const [controller, spec] of this.running.get(flowId) ?? []) {
      const why = stopReason(stop, spec);
      if (why !== undefined) controller.abort(new Error(why));
    }
  }

  /** Lets a stop of the flow abort `controller`; returns the function that ends this. */
  track(flowId: string, controller: AbortController, spec: TaskSpec): () => void {
    const flowRunning = this.running.get(flowId) ?? new Map<AbortController, TaskSpec>();
    flowRunning.set(controller, spec);
    this.running.set(flowId, flowRunning);
    return () => {
      flowRunning.delete(controller);
      if (flowRunning.size === 0) this.running.delete(flowId);
    };
  }

  /** Stops every running task for the executor's shutdown: their attempts do not count. */
  interruptAll(): void {
    for (const controllers of this.running.values()) for (const controller of controllers.keys()) controller.abort(new Interrupted('executor stopping'));
  }

  /**
   * How the flow is stopped, if the log holds its cancel, deadline or fail_fast. The live watch
   * misses what was stored while this process was not connected (before it started, or during a
   * reconnect), so before a task starts and before its outcome is recorded the log is asked too.
   * A stop that spares nothing cannot be made stronger, so it needs no read.
   */
  async storedStopOf(flowId: string): Promise<Stop | undefined> {
    const known = this.stopped.get(flowId);
    if (known !== undefined && !known.sparesAlways) return known;
    let found: Stop[];
    try {
      found = await this.readStored(flowId);
    } catch (error) {
      throw new InfrastructureError(`could not read whether flow ${flowId} was cancelled: ${(error as Error).message}`);
    }
    const stop = found.reduce<Stop | undefined>((strongest, next) => strongerStop(strongest, next), known);
    if (stop !== undefined) this.stop(flowId, stop);
    this.read.add(flowId);
    if (this.read.size > MAX_KNOWN_STOPS) this.read.delete(this.read.values().next().value!);
    return stop;
  }

  /** Why the task is to be stopped, if the log says so. */
  async storedStop(flowId: string, spec: TaskSpec): Promise<string | undefined> {
    return stopReason(await this.storedStopOf(flowId), spec);
  }

  /**
   * How the flow is stopped as far as this process knows: the log is read for the flow's first
   * task here (for stops stored before the watch began), and the watch tells every later stop.
   * Three reads of the leader a task fewer than asking the log each time; what it may miss is a
   * stop the watch has not delivered yet, milliseconds old, which cannot have preceded a start
   * (that read stays: see the attempt runner).
   */
  async knownStopOf(flowId: string): Promise<Stop | undefined> {
    return this.read.has(flowId) ? this.stopped.get(flowId) : this.storedStopOf(flowId);
  }

  /** Why the task is to be stopped, as far as this process knows (see knownStopOf). */
  async knownStop(flowId: string, spec: TaskSpec): Promise<string | undefined> {
    return stopReason(await this.knownStopOf(flowId), spec);
  }
}

/**
 * The stops the log holds for a flow: whether each stop subject holds a message, asked of the
 * stream's leader (see storesAnyOn), not a read of the history.
 */
export function readStoredStops(ctx: ServiceContext): (flowId: string) => Promise<Stop[]> {
  return async (flowId) => {
    const lists = await Promise.all(
      STOP_EVENTS.map(async (type) => {
        const stored = await storesAnyOn(ctx.nc, ctx.topo.eventsStream, eventSubject(ctx.topo.layout, flowId, type));
        return stored ? [STOPS[type] as Stop] : [];
      }),
    );
    return lists.flat();
  };
}

/**
 * FlowStops fed by the flows' stop events as the log stores them (not by core NATS messages, which
 * a reconnect or a slow client loses): one gap-free watch per stop type from the moment the
 * executor starts; what was stored before is read from the log when a task is admitted.
 */
export async function watchFlowStops(ctx: ServiceContext): Promise<{ stops: FlowStops; close: () => Promise<void> }> {
  const { layout } = ctx.topo;
  const stops = new FlowStops(readStoredStops(ctx));
  const watches = await Promise.all(
    STOP_EVENTS.map((type) =>
      watchStoredSubjects(
        ctx.js,
        ctx.topo.eventsStream,
        eventTypeFilter(layout, type),
        (subject) => {
          const flowId = flowIdOfSubject(layout, subject);
          if (flowId) stops.stop(flowId, STOPS[type]);
        },
        ctx.log,
      ),
    ),
  );
  return { stops, close: async () => void (await Promise.all(watches.map((watch) => watch.close()))) };
}
