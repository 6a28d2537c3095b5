import { eventSubject, eventTypeFilter, flowIdOfSubject, RecentMap, RecentSet, STOP_EVENTS, stopReason, STOPS, strongerStop, type Stop, type TaskSpec } from '@taskstream/domain';
import type { JetStreamClient } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { watchStoredSubjects } from './history.js';
import { storesAnyOn } from './last-stored.js';
import type { Logger } from './logger.js';
import type { Topology } from './topology.js';

/** Flows remembered as stopped; the oldest is forgotten first, and the log still has it. */
const MAX_KNOWN_STOPS = 10_000;

/** Lists the stops the log holds for a flow (see readStoredStops). */
export type ReadStoredStops = (flowId: string) => Promise<Stop[]>;

/**
 * The flows known in this process to be stopped (cancel, deadline, fail_fast), kept as strongest
 * stop per flow. A task that has not started ends only by its flow's stop, so this is what a
 * service asks before it spends anything on a task (a slot, a start). What the watch has told is
 * known at once; what was stored before the watch began is read from the log, once per flow.
 */
export class KnownStops {
  private readonly stopped = new RecentMap<string, Stop>(MAX_KNOWN_STOPS);
  /** Flows whose stored stops were read here, after the watch began: it has told every later one. */
  private readonly read = new RecentSet<string>(MAX_KNOWN_STOPS);

  constructor(private readonly readStored: ReadStoredStops) {}

  /** Why `spec` is stopped by what is known here, without asking the log. */
  reasonFor(flowId: string, spec: Pick<TaskSpec, 'trigger_rule'>): string | undefined {
    return stopReason(this.stopped.get(flowId), spec);
  }

  /** Remembers the flow's stop; returns the stop now known, or undefined when nothing changed. */
  stop(flowId: string, stop: Stop): Stop | undefined {
    // The first stop holds, unless a later one also stops what the first spared (cancel after fail_fast).
    const known = this.stopped.get(flowId);
    if (known !== undefined && strongerStop(known, stop) === known) return undefined;
    this.stopped.set(flowId, stop);
    return stop;
  }

  /**
   * How the flow is stopped, if the log holds its cancel, deadline or fail_fast: asked of the log
   * each time, for the reads that must not miss a stop stored a moment ago. A stop that spares
   * nothing cannot be made stronger, so it needs no read.
   */
  async storedStopOf(flowId: string): Promise<Stop | undefined> {
    const known = this.stopped.get(flowId);
    if (known !== undefined && !known.sparesAlways) return known;
    let found: Stop[];
    try {
      found = await this.readStored(flowId);
    } catch (error) {
      throw this.readFailed(flowId, error as Error);
    }
    const stop = found.reduce<Stop | undefined>((strongest, next) => strongerStop(strongest, next), known);
    if (stop !== undefined) this.stop(flowId, stop);
    this.read.add(flowId);
    return stop;
  }

  /** Why the task is to be stopped, if the log says so. */
  async storedStop(flowId: string, spec: Pick<TaskSpec, 'trigger_rule'>): Promise<string | undefined> {
    return stopReason(await this.storedStopOf(flowId), spec);
  }

  /**
   * How the flow is stopped as far as this process knows: the log is read for the flow's first
   * task here (for stops stored before the watch began), and the watch tells every later stop.
   * What it may miss is a stop the watch has not delivered yet, milliseconds old.
   */
  async knownStopOf(flowId: string): Promise<Stop | undefined> {
    return this.read.has(flowId) ? this.stopped.get(flowId) : this.storedStopOf(flowId);
  }

  /** Why the task is to be stopped, as far as this process knows (see knownStopOf). */
  async knownStop(flowId: string, spec: Pick<TaskSpec, 'trigger_rule'>): Promise<string | undefined> {
    return stopReason(await this.knownStopOf(flowId), spec);
  }

  /** The error a failed read of the log becomes. */
  protected readFailed(flowId: string, error: Error): Error {
    return new Error(`could not read whether flow ${flowId} was cancelled: ${error.message}`);
  }
}

/**
 * The stops the log holds for a flow: whether each stop subject holds a message, asked of the
 * stream's leader (see storesAnyOn), not a read of the history.
 */
export function readStoredStops(nc: NatsConnection, topo: Topology): ReadStoredStops {
  return async (flowId) => {
    const lists = await Promise.all(
      STOP_EVENTS.map(async (type) => ((await storesAnyOn(nc, topo.eventsStream, eventSubject(topo.layout, flowId, type))) ? [STOPS[type] as Stop] : [])),
    );
    return lists.flat();
  };
}

export interface WatchStopsOptions {
  /** Also tell the stops stored since this time, before the watch began (default: only later ones). */
  since?: Date;
}

/**
 * Tells `stops` of every flow stop as the log stores it (not by core NATS messages, which a
 * reconnect or a slow client loses): one gap-free watch per stop type.
 */
export async function watchStops(js: JetStreamClient, topo: Topology, stops: Pick<KnownStops, 'stop'>, log: Logger, options: WatchStopsOptions = {}): Promise<{ close(): Promise<void> }> {
  const { layout } = topo;
  const watches = await Promise.all(
    STOP_EVENTS.map((type) =>
      watchStoredSubjects(
        js,
        topo.eventsStream,
        eventTypeFilter(layout, type),
        (subject) => {
          const flowId = flowIdOfSubject(layout, subject);
          if (flowId) stops.stop(flowId, STOPS[type]);
        },
        log,
        options.since,
      ),
    ),
  );
  return { close: async () => void (await Promise.all(watches.map((watch) => watch.close()))) };
}
