import type { Stop, TaskSpec } from '@taskstream/domain';
import { KnownStops, readStoredStops, watchStops } from '@taskstream/nats';
import type { ServiceContext } from '@taskstream/runtime';
import { InfrastructureError, Interrupted } from './errors.js';

/**
 * The stops known here (see KnownStops) and the tasks running for each flow, so that a stop seen
 * live ends them at once. The value kept says why, for the task's cancelled event.
 */
export class FlowStops extends KnownStops {
  private readonly running = new Map<string, Map<AbortController, TaskSpec>>();

  /** Remembers the flow's stop and aborts its running tasks that it stops. */
  override stop(flowId: string, stop: Stop): Stop | undefined {
    const now = super.stop(flowId, stop);
    if (now === undefined) return undefined;
    for (const [controller, spec] of this.running.get(flowId) ?? []) {
      const why = this.reasonFor(flowId, spec);
      if (why !== undefined) controller.abort(new Error(why));
    }
    return now;
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

  /** Not the step's fault: no attempt is spent on it. */
  protected override readFailed(flowId: string, error: Error): Error {
    return new InfrastructureError(`could not read whether flow ${flowId} was cancelled: ${error.message}`);
  }
}

/**
 * FlowStops fed by the flows' stop events from the moment the executor starts; what was stored
 * before is read from the log when a task is admitted.
 */
export async function watchFlowStops(ctx: ServiceContext): Promise<{ stops: FlowStops; close: () => Promise<void> }> {
  const stops = new FlowStops(readStoredStops(ctx.nc, ctx.topo));
  const watch = await watchStops(ctx.js, ctx.topo, stops, ctx.log);
  return { stops, close: () => watch.close() };
}
