import { awaitsAck, checkExpression, evaluateMatch, type FlowEvent, type FlowState } from '@taskstream/domain';
import { decodeSignal, ensureConsumer, SignalLog, SignalWaits, startConsumerLoop, type ConsumerLoop, type Decoded, type DeadLetters, type EventLog, type Signal, type StoredSignal } from '@taskstream/nats';
import type { ServiceContext } from '@taskstream/runtime';
import type { FlowHistory } from './flow-cache.js';
import { decisionsStored } from './metrics.js';

/**
 * Wait tasks and the signals that end them. A wait is indexed by its signal's name when its
 * `task.waiting` is delivered, then looks back over the signals already stored; every signal
 * stored later is matched against the index. Whichever finds a match first appends the task's
 * success under its terminal key, so a signal racing the start of a wait is found once.
 */
export class SignalMatcher {
  private constructor(
    private readonly ctx: ServiceContext,
    private readonly log: EventLog,
    private readonly history: FlowHistory,
    private readonly waits: SignalWaits,
    private readonly signals: SignalLog,
  ) {}

  static async open(ctx: ServiceContext, log: EventLog, history: FlowHistory): Promise<SignalMatcher> {
    return new SignalMatcher(ctx, log, history, await SignalWaits.open(ctx.js, ctx.topo), new SignalLog(ctx.js, ctx.topo));
  }

  /**
   * On the delivery of an event folded into `state`: a wait that begins is indexed and looks back;
   * a wait task that ended leaves the index.
   */
  async onEvent(event: FlowEvent, state: FlowState): Promise<void> {
    if (!('task_id' in event)) return;
    const task = state.tasks[event.task_id];
    const wait = task?.signal;
    if (task === undefined || wait === undefined) return;
    if (event.type === 'task.waiting') {
      if (!awaitsAck(state, task.id)) return;
      await this.waits.add(wait.name, { flow_id: state.flow_id, task_id: task.id, since: event.time });
      const from = Date.parse(event.time) - wait.lookback_secs * 1000;
      for (const stored of await this.signals.since(wait.name, from)) {
        if (this.matches(state, task.id, stored.signal)) {
          await this.complete(state, task.id, stored);
          return;
        }
      }
    } else if (task.status !== 'waiting') {
      await this.waits.remove(wait.name, state.flow_id, task.id);
    }
  }

  /** A signal just stored: every task waiting for it whose match holds completes with its payload. */
  async onSignal(stored: StoredSignal): Promise<void> {
    const { name } = stored.signal;
    for (const record of await this.waits.waitingFor(name)) {
      const state = await this.history.fold(record.flow_id);
      if (state === null || !awaitsAck(state, record.task_id) || state.tasks[record.task_id]?.signal?.name !== name) {
        await this.waits.remove(name, record.flow_id, record.task_id);
        continue;
      }
      if (!this.matches(state, record.task_id, stored.signal)) continue;
      await this.complete(state, record.task_id, stored);
      await this.waits.remove(name, record.flow_id, record.task_id);
    }
  }

  /** Whether the task's `match` accepts the signal; a match that fails on it (a missing field) does not. */
  private matches(state: FlowState, taskId: string, signal: Signal): boolean {
    const match = state.tasks[taskId]?.signal?.match;
    if (match === undefined) return true;
    const checked = checkExpression(match, 'match');
    const tasks: Record<string, { output: unknown }> = {};
    if (checked.ok) for (const id of checked.taskRefs) tasks[id] = { output: state.tasks[id]?.output ?? null };
    const verdict = evaluateMatch(match, { signal: signal.payload, tasks, params: state.definition.params ?? {}, flow: { id: state.flow_id } });
    if (!verdict.ok) this.ctx.log.debug({ flow_id: state.flow_id, task_id: taskId, signal_id: signal.id, reason: verdict.message }, 'a signal did not match: its match failed on it');
    return verdict.ok && verdict.value;
  }

  private async complete(state: FlowState, taskId: string, { signal, seq }: StoredSignal): Promise<void> {
    const since = state.tasks[taskId]?.ready_at;
    const waitedMs = since === undefined ? 0 : Math.max(0, Date.now() - Date.parse(since));
    await this.log.appendNew(
      { type: 'task.succeeded', flow_id: state.flow_id, task_id: taskId, attempt: 1, data: { output: signal.payload, duration_ms: waitedMs, signal: { id: signal.id, seq, name: signal.name } } },
      `${state.flow_id}:${taskId}:task.succeeded`,
    );
    decisionsStored([{ type: 'task.succeeded' }]);
    this.ctx.log.info({ flow_id: state.flow_id, task_id: taskId, signal: signal.name, signal_id: signal.id }, 'signal matched a waiting task');
  }
}

/** Matches every stored signal once, whichever planner instance takes it. */
export async function startSignalMatching(ctx: ServiceContext, matcher: SignalMatcher, options: { consumer: string; deadLetters: DeadLetters }): Promise<ConsumerLoop> {
  await ensureConsumer(ctx.jsm, ctx.topo.signalsStream, { durable_name: options.consumer, max_deliver: 10, ack_wait: 60_000_000_000 });
  return startConsumerLoop({
    js: ctx.js,
    stream: ctx.topo.signalsStream,
    consumer: options.consumer,
    source: 'planner-signals',
    decode: (data, msg): Decoded<StoredSignal> => {
      const signal = decodeSignal(data);
      return signal === undefined ? { ok: false, reason: 'not a signal' } : { ok: true, value: { signal, seq: msg.seq } };
    },
    handle: (stored) => matcher.onSignal(stored),
    deadLetters: options.deadLetters,
    log: ctx.log,
    maxDeliver: 10,
    concurrency: 4,
  });
}
