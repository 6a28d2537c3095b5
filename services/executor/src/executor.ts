import { eventSubject, type WorkItem } from '@taskstream/domain';
import { DeadLetters, foldFlowHistory } from '@taskstream/nats';
import type { ServiceContext, ServiceHandle } from '@taskstream/runtime';
import { artifactLimitsOf, openArtifacts } from './artifacts.js';
import { executorConfig, stepsFor, type ExecutorOptions } from './config.js';
import { ensureWorkConsumer, startWorkLoop } from './consumer.js';
import { watchPoison } from './poison.js';
import { Recorder } from './recorder.js';
import { openSecretReader } from './run-time.js';
import { watchFlowStops } from './stops.js';
import { setLongTimeout } from './timers.js';
import { createSpawnStep } from './steps/index.js';
import { startWebhooks } from './webhooks/index.js';
import { WorkHandler } from './work-handler.js';
import { readAttemptHistory } from './work-item.js';

/**
 * Runs work items of one queue. Attempts run under cockatiel's retry policy (the task's retries),
 * each with its `timeout_secs`; every attempt and the outcome are events, and the work item is
 * acknowledged only after the outcome event is stored. The waits (timeout, backoff) are the
 * executor's own: they stop for a cancel at once and hold delays longer than Node's timers do.
 */
export async function startExecutor(ctx: ServiceContext, options: ExecutorOptions): Promise<ServiceHandle> {
  const config = executorConfig(options);
  const steps = stepsFor(options);
  // A spawn checks the tasks it generates against the flow as its log holds it.
  if (options.steps === undefined) steps.spawn = createSpawnStep(steps, (flowId) => foldFlowHistory(ctx.js, ctx.topo, flowId));
  await ensureWorkConsumer(ctx, config);
  const readSecret = await openSecretReader(ctx, options.readSecret);
  const recorder = await Recorder.open(ctx);
  const flowStops = await watchFlowStops(ctx);
  const deadLetters = new DeadLetters(ctx.js, ctx.topo);
  const artifacts = await openArtifacts(ctx, artifactLimitsOf(options));
  const readHistory = (item: WorkItem) => readAttemptHistory(ctx, item);
  const flowKept = async (flowId: string) => (await ctx.jsm.streams.getMessage(ctx.topo.eventsStream, { last_by_subj: eventSubject(ctx.topo.layout, flowId, 'flow.submitted') })) !== null;
  const handler = new WorkHandler({ config, log: ctx.log, recorder, stops: flowStops.stops, steps, deadLetters, readHistory, flowKept, readSecret, artifacts });
  const poison = watchPoison(ctx, { config, deadLetters, recorder, readHistory });
  const loop = await startWorkLoop(ctx, config, handler.handle, deadLetters);
  const webhooks = await startWebhooks(ctx, { allow: options.webhookAllow ?? [], readSecret, deadLetters });
  ctx.log.info({ consumer: config.consumer, queue: config.queue, shell: config.shellEnabled }, 'executor started');
  return {
    name: 'executor',
    async stop() {
      handler.stopping = true;
      poison.unsubscribe();
      // Before the connection drains: an attempt in flight is recorded, or its message comes back.
      const webhooksStopped = webhooks.stop();
      // Steps still running after the grace are stopped and handed back, their attempts not spent.
      const interrupt = setLongTimeout(() => flowStops.stops.interruptAll(), config.shutdownGraceMs);
      try {
        await loop.stop();
      } finally {
        interrupt.clear();
        // Watched until every task has ended: a cancel during the grace still stops its task.
        await flowStops.close();
        await webhooksStopped;
      }
    },
  };
}
