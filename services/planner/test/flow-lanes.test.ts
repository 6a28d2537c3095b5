import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FlowLanes } from '../src/flow-lanes.js';

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('FlowLanes', () => {
  it("runs a flow's work one piece at a time, in order, and other flows' work alongside", async () => {
    const lanes = new FlowLanes();
    const log: string[] = [];
    const gate: Record<string, () => void> = {};
    const piece = (name: string) => () => {
      log.push(`start ${name}`);
      return new Promise<string>((resolve) => {
        gate[name] = () => {
          log.push(`end ${name}`);
          resolve(name);
        };
      });
    };
    const a1 = lanes.run('a', piece('a1'));
    const a2 = lanes.run('a', piece('a2'));
    const b1 = lanes.run('b', piece('b1'));
    await tick();
    // a2 waits for a1; b1 does not wait for either.
    expect(log).toEqual(['start a1', 'start b1']);
    expect(lanes.busy).toBe(2);
    gate.b1!();
    gate.a1!();
    await tick();
    expect(log).toEqual(['start a1', 'start b1', 'end b1', 'end a1', 'start a2']);
    gate.a2!();
    expect(await Promise.all([a1, a2, b1])).toEqual(['a1', 'a2', 'b1']);
    await tick();
    expect(lanes.busy).toBe(0);
  });

  it("goes on with a flow's next piece after one fails, and reports the failure to its caller", async () => {
    const lanes = new FlowLanes();
    const failed = lanes.run('a', async () => {
      throw new Error('append failed');
    });
    const next = lanes.run('a', async () => 'folded again');
    await expect(failed).rejects.toThrow('append failed');
    await expect(next).resolves.toBe('folded again');
  });

  it('never overlaps two pieces of one flow and keeps each flow in its order, whatever the timings', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.record({ flow: fc.constantFrom('a', 'b', 'c'), turns: fc.nat(3), fails: fc.boolean() }), { maxLength: 40 }), async (pieces) => {
        const lanes = new FlowLanes();
        const running = new Map<string, number>();
        const order = new Map<string, number[]>();
        let overlaps = 0;
        const settled = pieces.map(({ flow, turns, fails }, index) =>
          lanes
            .run(flow, async () => {
              running.set(flow, (running.get(flow) ?? 0) + 1);
              if (running.get(flow) !== 1) overlaps++;
              order.set(flow, [...(order.get(flow) ?? []), index]);
              for (let i = 0; i < turns; i++) await tick();
              running.set(flow, running.get(flow)! - 1);
              if (fails) throw new Error(`piece ${index} failed`);
            })
            .catch(() => undefined),
        );
        await Promise.all(settled);
        expect(overlaps).toBe(0);
        for (const [flow, seen] of order) expect(seen).toEqual(pieces.flatMap((p, i) => (p.flow === flow ? [i] : [])));
        await tick();
        expect(lanes.busy).toBe(0);
      }),
      { numRuns: 100 },
    );
  });
});
