import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { layoutDag, NODE_HEIGHT, NODE_WIDTH } from '../src/flow/layout.js';

/** A DAG of `n` tasks: each may depend on up to three earlier ones, or on a task the view does not show. */
const dags = fc.integer({ min: 1, max: 20 }).chain((n) =>
  fc.tuple(...Array.from({ length: n }, (_, i) => fc.subarray([...Array.from({ length: i }, (_, j) => `t${j}`), 'not-shown'], { maxLength: Math.min(3, i + 1) }))).map((deps) => deps.map((depends_on, i) => ({ id: `t${i}`, depends_on }))),
);

describe('the DAG layout', () => {
  it('places every task, each right of every dependency shown, and no two on top of each other', () => {
    fc.assert(
      fc.property(dags, (tasks) => {
        const placed = layoutDag(tasks);
        expect([...placed.keys()].sort()).toEqual(tasks.map((t) => t.id).sort());
        for (const task of tasks) {
          for (const dep of task.depends_on) {
            if (dep === 'not-shown') continue;
            expect(placed.get(task.id)!.x).toBeGreaterThanOrEqual(placed.get(dep)!.x + NODE_WIDTH);
          }
        }
        const boxes = [...placed.values()];
        for (const [i, a] of boxes.entries()) {
          for (const b of boxes.slice(i + 1)) {
            const apart = Math.abs(a.x - b.x) >= NODE_WIDTH || Math.abs(a.y - b.y) >= NODE_HEIGHT;
            expect(apart, `${a.id} and ${b.id} overlap`).toBe(true);
          }
        }
      }),
      { numRuns: 50 },
    );
  }, 30_000);
});
