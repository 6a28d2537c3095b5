import { once } from 'node:events';
import { countTasks, evolve, flowEventsFilter, taskedCounts, taskedFlowState, TERMINAL_FLOW_STATUSES, type FlowEvent, type FlowState, type TaskedTaskState } from '@taskstream/domain';
import { definitionsOf, followEvents } from '@taskstream/nats';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { clientDropped, taskedStreamOpened } from '../metrics.js';
import { unsentBytes, watchForStall } from '../stall.js';
import { FLOW_ID, taskedSchema } from './doc.js';
import { notFound, TaskedError } from './errors.js';
import type { TaskedServices } from './index.js';
import { stateTaskFacts, taskState } from './shapes.js';

/** Streams open at once on one gateway, as Tasked allows; more are refused with 503. */
export const MAX_STREAMS = 100;
/** A comment line this often keeps proxies from closing a quiet stream (Tasked's `ping`). */
export const PING_MS = 15_000;

/** How long `flow_complete` waits for the flow's view to show the end, so a GET after it agrees. */
export const VIEW_WAIT_MS = 3_000;

/** Waits until the flow's view shows it ended, or `ms` passed. */
export async function viewEnded(s: Pick<TaskedServices, 'flows'>, flowId: string, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (TERMINAL_FLOW_STATUSES.has((await s.flows.view(flowId)).status)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** One server-sent event's text. */
export function sseEvent(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/**
 * What a Tasked client is told after `event` is folded into `state`: a `task_state` for each task
 * whose Tasked state changed since `sent`, a `task_output` for a running task whose output changed,
 * and `flow_complete` once the flow has ended. `sent` and `outputs` are updated. Pure: the route
 * follows the flow's log and writes what this returns.
 */
export function eventsFor(state: FlowState, event: FlowEvent, sent: Map<string, TaskedTaskState>, outputs: Map<string, string>): string[] {
  const out: string[] = [];
  const ids = 'task_id' in event && typeof event.task_id === 'string' && Object.hasOwn(state.tasks, event.task_id) ? [event.task_id] : state.order;
  for (const id of ids) {
    const task = state.tasks[id];
    if (task === undefined) continue;
    const facts = stateTaskFacts(task);
    const now = taskState(facts);
    if (sent.get(id) !== now) {
      sent.set(id, now);
      out.push(
        sseEvent('task_state', {
          task_id: id,
          state: now,
          output: facts.output ?? null,
          error: facts.error?.message ?? null,
          started_at: facts.started_at ?? null,
          completed_at: facts.finished_at ?? null,
        }),
      );
    }
    if (now === 'running' && facts.output !== undefined) {
      const text = JSON.stringify(facts.output);
      if (outputs.get(id) !== text) {
        outputs.set(id, text);
        out.push(sseEvent('task_output', { task_id: id, output: facts.output }));
      }
    }
  }
  if (TERMINAL_FLOW_STATUSES.has(state.status)) {
    const counts = taskedCounts(countTasks(state.order.map((id) => state.tasks[id]!.status)));
    out.push(sseEvent('flow_complete', { flow_id: state.flow_id, state: taskedFlowState(state.status), task_count: state.order.length, ...counts }));
  }
  return out;
}

const events = {
  config: { scope: 'read' },
  // A HEAD would run the stream and discard it: only GET opens one.
  exposeHeadRoute: false,
  schema: taskedSchema({
    operationId: 'taskedFlowEvents',
    summary: "A flow's progress as server-sent events (Tasked's route)",
    description:
      "`text/event-stream`: `task_state` `{task_id, state, output, error, started_at, completed_at}` when a task's Tasked state changes, `task_output` `{task_id, output}` when a running task's output changes, then `flow_complete` `{flow_id, state, task_count, tasks_succeeded, tasks_failed}` and the stream ends; a `:ping` comment every 15 s. Made by following the flow's log from its first event (Tasked polls its storage), so a flow that already ended is told from its start.",
    params: FLOW_ID,
    ok: { 200: { content: { 'text/event-stream': { schema: z.string() } } } },
    errors: { 404: ['flow_not_found'], 503: ['too_many_connections'] },
  }),
} as const;

/** Follows the flow's log and writes Tasked's events to the hijacked response until the flow ends or the client goes. */
async function streamFlow(s: TaskedServices, id: string, request: FastifyRequest, reply: FastifyReply, feed: Awaited<ReturnType<typeof followEvents>>): Promise<void> {
  const raw = reply.raw;
  const gone = new AbortController();
  const closed = () => gone.signal.aborted;
  request.raw.once('close', () => {
    void feed.close();
    gone.abort();
  });
  raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive', 'x-content-type-options': 'nosniff', 'x-accel-buffering': 'no' });
  // A slow client is waited for; one that leaves ends the wait (not a race with a promise of its
  // leaving, which would keep a reaction for every wait until the stream ends), and one that reads
  // nothing of what waits for it for the stall limit is dropped, which ends the wait the same way.
  const write = async (text: string) => {
    if (!closed() && !raw.write(text)) await once(raw, 'drain', { signal: gone.signal }).catch(() => undefined);
  };
  // Watched until the connection closes, past the stream's end: what is still unsent then waits on the client too.
  const stopWatch = watchForStall(
    () => raw.writableLength + unsentBytes(raw.socket),
    s.clientStallMs,
    () => {
      request.log.info({ flow_id: id, stall_ms: s.clientStallMs }, 'a Tasked event stream client read nothing of what waited for it; dropped');
      clientDropped('tasked_events');
      raw.destroy();
    },
  );
  raw.once('close', stopWatch);
  const ping = setInterval(() => void write(':ping\n\n'), PING_MS);
  const sent = new Map<string, TaskedTaskState>();
  const outputs = new Map<string, string>();
  let state: FlowState | null = null;
  try {
    for await (const item of feed.events) {
      if (closed()) break;
      if (!('event' in item)) continue;
      const event = state === null && item.event.type === 'flow.submitted' ? await (await definitionsOf(s.ctx.js, s.ctx.topo)).hydrate(item.event) : item.event;
      state = evolve(state, event, item.seq);
      if (state === null) continue;
      const texts = eventsFor(state, event, sent, outputs);
      // A client that reads the flow once told it ended finds it ended: the view is waited for (briefly).
      if (TERMINAL_FLOW_STATUSES.has(state.status)) await viewEnded(s, id, VIEW_WAIT_MS);
      for (const text of texts) await write(text);
      if (TERMINAL_FLOW_STATUSES.has(state.status)) break;
    }
  } catch (error) {
    request.log.error({ err: error, flow_id: id }, 'the Tasked event stream failed');
    await write(sseEvent('error', { error: 'engine_error', message: 'internal error' }));
  } finally {
    clearInterval(ping);
    await feed.close().catch(() => undefined);
    raw.end();
  }
}

export function registerTaskedEventRoutes(app: FastifyInstance, s: TaskedServices): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  let open = 0;

  api.get('/api/v1/flows/:id/events', events, async (request, reply) => {
    const { id } = request.params;
    if (open >= MAX_STREAMS) throw new TaskedError(503, 'too_many_connections', 'Too many concurrent SSE connections');
    if (!(await s.flows.exists(id))) throw notFound.flow(id);
    open++;
    const streamEnded = taskedStreamOpened();
    try {
      const feed = await followEvents(s.ctx.js, s.ctx.topo.eventsStream, flowEventsFilter(s.ctx.topo.layout, id), 0);
      reply.hijack();
      await streamFlow(s, id, request, reply, feed);
    } finally {
      open--;
      streamEnded();
    }
  });
}
