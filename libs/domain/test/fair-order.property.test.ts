import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FairQueue, type FairTask } from '../src/index.js';

interface Task extends FairTask {
  name: string;
}

/** Tasks named `<flow><n>` (A1, A2, B1 ...) at increasing stream sequences, in the order given. */
function arrivals(names: string[], priority = 0, firstSeq = 1): Task[] {
  return names.map((name, i) => ({ name, flowId: name.replace(/\d+$/, ''), priority, seq: firstSeq + i }));
}

/** given(waiting tasks).when(admitting n in fair order, with arrivals between).then(names admitted). */
function given(...waiting: Task[]) {
  const queue = new FairQueue<Task>();
  for (const task of waiting) queue.add(task);
  const admitted: string[] = [];
  const steps = {
    admitting(n: number) {
      for (let i = 0; i < n && queue.size > 0; i++) {
        const next = queue.first()!;
        queue.admit(next);
        admitted.push(next.name);
      }
      return steps;
    },
    arriving(...tasks: Task[]) {
      for (const task of tasks) queue.add(task);
      return steps;
    },
    then(expected: string[]) {
      expect(admitted).toEqual(expected);
      return queue;
    },
  };
  return { when: steps };
}

function admitAll(queue: FairQueue<Task>): string[] {
  const names: string[] = [];
  for (let next = queue.first(); next; next = queue.first()) {
    queue.admit(next);
    names.push(next.name);
  }
  return names;
}

describe('fair order', () => {
  it('interleaves two backlogged flows one for one', () => {
    given(...arrivals(['A1', 'A2', 'A3', 'A4', 'B1', 'B2'])).when.admitting(6).then(['A1', 'B1', 'A2', 'B2', 'A3', 'A4']);
  });

  it('keeps one for one when a flow whose tasks trickle in meets a bulk-submitted one', () => {
    given(...arrivals(['A1', 'A2']))
      .when.admitting(1)
      .arriving(...arrivals(['B1', 'B2', 'B3'], 0, 10), ...arrivals(['A3'], 0, 20))
      .admitting(5)
      .then(['A1', 'B1', 'A2', 'B2', 'A3', 'B3']);
  });

  it('serves a flow arriving behind a backlog at once, not after it', () => {
    given(...arrivals(['A1', 'A2', 'A3', 'A4', 'A5', 'A6']))
      .when.admitting(3)
      .arriving(...arrivals(['B1', 'B2'], 0, 100))
      .admitting(5)
      .then(['A1', 'A2', 'A3', 'B1', 'A4', 'B2', 'A5', 'A6']);
  });

  it('lets a newcomer behind every waiting flow once, not behind their backlogs', () => {
    given(...arrivals(['A1', 'A2', 'A3', 'B1', 'B2', 'B3']))
      .when.admitting(1)
      .arriving(...arrivals(['C1'], 0, 100))
      .admitting(4)
      .then(['A1', 'B1', 'C1', 'A2', 'B2']);
  });

  it('admits higher priority first, whatever arrived before', () => {
    given(...arrivals(['A1', 'A2']), ...arrivals(['U1'], 5, 10), ...arrivals(['B1'], -1, 11))
      .when.admitting(4)
      .then(['U1', 'A1', 'A2', 'B1']);
  });

  it('keeps a flow in stream order when an earlier task comes back later', () => {
    const [a1, a2, a3] = arrivals(['A1', 'A2', 'A3']);
    given(a2!, a3!).when.arriving(a1!).admitting(3).then(['A1', 'A2', 'A3']);
  });

  it('gives a task handed back unserved no turn: its flow moves up into its place', () => {
    const [a1, a2, b1, b2] = arrivals(['A1', 'A2', 'B1', 'B2']);
    const queue = given(a1!, a2!, b1!, b2!).when.then([]);
    queue.remove(a1!);
    expect(queue.ordered().map((t) => t.name)).toEqual(['A2', 'B1', 'B2']);
  });

  it('lists waiting tasks in the order it will admit them', () => {
    const queue = given(...arrivals(['A1', 'A2', 'A3', 'B1', 'C1', 'C2']), ...arrivals(['U1'], 3, 50)).when.admitting(2).then(['U1', 'A1']);
    expect(queue.ordered(3).map((t) => t.name)).toEqual(['B1', 'C1', 'A2']);
    expect(admitAll(queue)).toEqual(['B1', 'C1', 'A2', 'C2', 'A3']);
  });

  it('forgets a flow once nothing of it waits', () => {
    const queue = given(...arrivals(['A1', 'A2', 'B1']), ...arrivals(['U1'], 1, 10)).when.admitting(3).then(['U1', 'A1', 'B1']);
    expect(queue.footprint()).toEqual({ flows: 1, priorities: 1 });
    queue.admit(queue.first()!);
    expect(queue.footprint()).toEqual({ flows: 0, priorities: 0 });
  });
});

type Step = 'admit' | { flow: number; priority: number; count: number };

/** Random arrivals (flow, priority) and admissions; sequences grow with arrival, as in a stream. */
const scriptArb: fc.Arbitrary<Step[]> = fc.array(
  fc.oneof(
    { weight: 3, arbitrary: fc.record({ flow: fc.integer({ min: 0, max: 3 }), priority: fc.integer({ min: 0, max: 2 }), count: fc.integer({ min: 1, max: 4 }) }) },
    { weight: 4, arbitrary: fc.constant('admit' as const) },
  ),
  { maxLength: 150 },
);

/** Plays a script, admitting in fair order: each admission with the tasks waiting before and after it. */
function play(script: Step[], samePriority = false) {
  const queue = new FairQueue<Task>();
  let seq = 0;
  const log: Array<{ admitted: Task; waitingBefore: Task[]; waitingAfter: Task[] }> = [];
  for (const step of script) {
    if (step === 'admit') {
      const waitingBefore = [...queue.values()];
      const admitted = queue.first();
      if (!admitted) continue;
      queue.admit(admitted);
      log.push({ admitted, waitingBefore, waitingAfter: [...queue.values()] });
      continue;
    }
    for (let i = 0; i < step.count; i++) {
      queue.add({ name: `f${step.flow}#${++seq}`, flowId: `f${step.flow}`, priority: samePriority ? 0 : step.priority, seq });
    }
  }
  return { queue, log };
}

describe('fair order properties', () => {
  it('admits each flow and priority in stream order, and higher priority always first', () => {
    fc.assert(
      fc.property(scriptArb, (script) => {
        const { log } = play(script);
        const last = new Map<string, number>();
        for (const { admitted, waitingBefore } of log) {
          const lane = `${admitted.priority}:${admitted.flowId}`;
          expect(admitted.seq).toBeGreaterThan(last.get(lane) ?? 0);
          last.set(lane, admitted.seq);
          expect(admitted.priority).toBe(Math.max(...waitingBefore.map((t) => t.priority)));
        }
      }),
    );
  });

  it('interleaves any two continuously backlogged flows of equal priority: every prefix differs by at most one', () => {
    fc.assert(
      fc.property(scriptArb, (script) => {
        const { log } = play(script, true);
        // For each pair of flows: from the moment both wait, until either stops waiting.
        const since = new Map<string, Map<string, number>>();
        const served = new Map<string, number>();
        let waitingLast = new Set<string>();
        for (const { admitted, waitingBefore, waitingAfter } of log) {
          const waiting = new Set(waitingBefore.map((t) => t.flowId));
          // A flow that stopped waiting after the last admission was not continuously backlogged.
          for (const pair of [...since.keys()]) {
            const [x, y] = pair.split('|') as [string, string];
            if (!waitingLast.has(x) || !waitingLast.has(y)) since.delete(pair);
          }
          for (const x of waiting) {
            for (const y of waiting) {
              if (x < y && !since.has(`${x}|${y}`)) since.set(`${x}|${y}`, new Map([[x, served.get(x) ?? 0], [y, served.get(y) ?? 0]]));
            }
          }
          served.set(admitted.flowId, (served.get(admitted.flowId) ?? 0) + 1);
          for (const [pair, start] of since) {
            const [x, y] = pair.split('|') as [string, string];
            const gap = (served.get(x) ?? 0) - start.get(x)! - ((served.get(y) ?? 0) - start.get(y)!);
            expect(Math.abs(gap), `${pair} after ${admitted.name}`).toBeLessThanOrEqual(1);
          }
          waitingLast = new Set(waitingAfter.map((t) => t.flowId));
        }
      }),
      { numRuns: 500 },
    );
  });

  it('admits a late flow first task after at most one task of each flow waiting when it arrived', () => {
    fc.assert(
      fc.property(scriptArb, fc.integer({ min: 1, max: 5 }), fc.integer({ min: 0, max: 40 }), (script, count, at) => {
        const queue = new FairQueue<Task>();
        let seq = 0;
        let late: { waiting: number; admittedBefore: number } | undefined;
        let admissions = 0;
        const steps = [...script];
        steps.splice(Math.min(at, steps.length), 0, { flow: 99, priority: 0, count });
        for (const step of steps) {
          if (step === 'admit') {
            const next = queue.first();
            if (!next) continue;
            queue.admit(next);
            if (late && next.flowId === 'late') {
              expect(admissions - late.admittedBefore).toBeLessThanOrEqual(late.waiting);
              late = undefined;
              return;
            }
            admissions++;
            continue;
          }
          const flowId = step.flow === 99 ? 'late' : `f${step.flow}`;
          if (step.flow === 99) late = { waiting: new Set([...queue.values()].map((t) => t.flowId)).size, admittedBefore: admissions };
          for (let i = 0; i < step.count; i++) queue.add({ name: `${flowId}#${++seq}`, flowId, priority: 0, seq });
        }
      }),
    );
  });

  it('lists in the order it admits, and remembers nothing once every task has left', () => {
    fc.assert(
      fc.property(scriptArb, fc.array(fc.nat(), { maxLength: 10 }), (script, handedBack) => {
        const { queue } = play(script);
        const waiting = [...queue.values()];
        for (const pick of handedBack) if (waiting.length > 0) queue.remove(waiting.splice(pick % waiting.length, 1)[0]!);
        const lanes = new Set(waiting.map((t) => `${t.priority}:${t.flowId}`));
        expect(queue.footprint()).toEqual({ flows: lanes.size, priorities: new Set(waiting.map((t) => t.priority)).size });
        const listed = queue.ordered();
        expect(listed).toHaveLength(queue.size);
        const admitted: Task[] = [];
        while (queue.size > 0) {
          const next = queue.first()!;
          expect(queue.admit(next)).toBe(true);
          admitted.push(next);
        }
        expect(admitted).toEqual(listed);
        expect(queue.footprint()).toEqual({ flows: 0, priorities: 0 });
      }),
    );
  });
});
