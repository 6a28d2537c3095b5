import { describe, expect, it } from 'vitest';
import { Quarantine } from '../src/quarantine.js';

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('quarantine of redelivered work items', () => {
  it('runs a suspect alone: it waits for running items, and new items wait for it', async () => {
    const q = new Quarantine();
    const log: string[] = [];
    const leaveA = await q.enter(false, () => {}, 1000);
    log.push('a in');
    const suspect = q.enter(true, () => {}, 1000).then((leave) => (log.push('suspect in'), leave));
    const later = q.enter(false, () => {}, 1000).then((leave) => (log.push('b in'), leave));
    await tick();
    expect(log).toEqual(['a in']);
    leaveA();
    const leaveSuspect = await suspect;
    await tick();
    expect(log).toEqual(['a in', 'suspect in']);
    leaveSuspect();
    (await later)();
    expect(log).toEqual(['a in', 'suspect in', 'b in']);
  });

  it('keeps waiting items alive while they wait', async () => {
    const q = new Quarantine();
    let beats = 0;
    const leave = await q.enter(true, () => {}, 1000);
    const waiting = q.enter(false, () => beats++, 10);
    await new Promise((r) => setTimeout(r, 60));
    leave();
    (await waiting)();
    expect(beats).toBeGreaterThan(2);
  });
});
