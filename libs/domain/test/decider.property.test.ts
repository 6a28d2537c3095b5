import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decideAll, descendantsOf, fold, TERMINAL_FLOW_EVENTS, type FlowEvent } from '../src/index.js';
import { dagArbitrary, FLOW, simulate } from './fixtures.js';

const readyIndex = (log: FlowEvent[], id: string) => log.findIndex((e) => e.type === 'task.ready' && e.task_id === id);

describe('decider properties over random DAGs and completion orders', () => {
  it('readies each task exactly once, and only after all its dependencies succeeded', () => {
    fc.assert(
      fc.property(dagArbitrary, ({ def, outcomes, choices }) => {
        const { log } = simulate(def, outcomes, choices);
        for (const task of def.tasks) {
          const readies = log.filter((e) => e.type === 'task.ready' && e.task_id === task.id);
          const depsSucceeded = task.depends_on.every((d) => log.some((e) => e.type === 'task.succeeded' && e.task_id === d));
          expect(readies.length).toBe(depsSucceeded ? 1 : 0);
          if (readies.length === 1) {
            for (const d of task.depends_on) {
              const succeededAt = log.findIndex((e) => e.type === 'task.succeeded' && e.task_id === d);
              expect(succeededAt).toBeLessThan(readyIndex(log, task.id));
            }
          }
        }
      }),
    );
  });

  it('marks every descendant of a failure upstream_failed, and nothing else', () => {
    fc.assert(
      fc.property(dagArbitrary, ({ def, outcomes, choices }) => {
        const { state } = simulate(def, outcomes, choices);
        const dependents = new Map(Object.entries(state!.dependents));
        const failed = def.tasks.filter((t) => state!.tasks[t.id]!.status === 'failed').map((t) => t.id);
        const downstream = new Set(failed.flatMap((f) => [...descendantsOf(dependents, f)]));
        for (const task of def.tasks) {
          const status = state!.tasks[task.id]!.status;
          if (downstream.has(task.id)) expect(status).toBe('upstream_failed');
          else expect(status).toBe(outcomes.get(task.id) ? 'succeeded' : 'failed');
        }
      }),
    );
  });

  it('ends every flow in exactly one terminal state, and the right one', () => {
    fc.assert(
      fc.property(dagArbitrary, ({ def, outcomes, choices, cancelAt, stop }) => {
        const { log, state } = simulate(def, outcomes, choices, cancelAt, stop);
        const terminal = log.filter((e) => TERMINAL_FLOW_EVENTS.has(e.type));
        expect(terminal).toHaveLength(1);
        const anyFailed = def.tasks.some((t) => state!.tasks[t.id]!.status === 'failed');
        const stopIndex = log.findIndex((e) => e.type === 'flow.cancel_requested' || e.type === 'flow.deadline_passed');
        const stopped = stopIndex >= 0 && stopIndex < log.indexOf(terminal[0]!);
        const expected = stopped ? (stop === 'cancel' ? 'flow.cancelled' : 'flow.failed') : anyFailed ? 'flow.failed' : 'flow.succeeded';
        expect(terminal[0]!.type).toBe(expected);
        if (stopped && stop === 'deadline') expect(terminal[0]).toMatchObject({ data: { code: 'FLOW_TIMEOUT' } });
        expect(state!.terminal_count).toBe(def.tasks.length);
      }),
    );
  });

  it('folds a history with duplicated events to the same state as without', () => {
    fc.assert(
      fc.property(dagArbitrary, fc.array(fc.tuple(fc.nat(), fc.nat())), ({ def, outcomes, choices, cancelAt, stop }, dupes) => {
        const { log } = simulate(def, outcomes, choices, cancelAt, stop);
        const noisy = [...log];
        for (const [pick, offset] of dupes) {
          const from = pick % log.length;
          const original = log[from]!;
          const at = noisy.indexOf(original) + 1 + (offset % (noisy.length - noisy.indexOf(original)));
          noisy.splice(at, 0, original);
        }
        expect(fold(noisy)).toEqual(fold(log));
      }),
    );
  });

  it('re-deciding over a rebuilt state emits only keys already decided', () => {
    fc.assert(
      fc.property(dagArbitrary, fc.nat(), ({ def, outcomes, choices }, cut) => {
        const { log } = simulate(def, outcomes, choices);
        const prefix = log.slice(0, 1 + (cut % log.length));
        const rebuilt = fold(prefix);
        const keysInLog = new Set(
          log.map((e) => ('task_id' in e ? `${FLOW}:${e.task_id}:${e.type}` : `${FLOW}:${e.type}`)),
        );
        for (const draft of decideAll(rebuilt)) expect(keysInLog.has(draft.key)).toBe(true);
      }),
    );
  });
});
