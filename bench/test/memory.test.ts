import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { answerHeapRequests, liveHeapMb, memoryMarkdown, memoryVerdicts } from '../src/memory.js';

/** Both ends of an IPC channel in one process: what one end sends, the other receives. */
function channelPair() {
  const service = new EventEmitter() as EventEmitter & { send: (m: unknown) => void };
  const bench = new EventEmitter() as EventEmitter & { send: (m: unknown) => void };
  service.send = (message) => queueMicrotask(() => bench.emit('message', message));
  bench.send = (message) => queueMicrotask(() => service.emit('message', message));
  return { service, bench };
}

describe('service memory', () => {
  it('reads the heap a service has left after a collection it runs on request', async () => {
    const { service, bench } = channelPair();
    const collections: number[] = [];
    let heap = 80 * 2 ** 20;
    answerHeapRequests(service, () => collections.push((heap = 25.04 * 2 ** 20)), () => heap);
    expect(await liveHeapMb(bench)).toBe(25);
    expect(collections).toHaveLength(1);
    expect(bench.listenerCount('message')).toBe(0);
  });

  it('ignores other messages on the channel, and says NaN when the service does not answer', async () => {
    const { service, bench } = channelPair();
    answerHeapRequests(service, () => undefined, () => 2 ** 20);
    service.emit('message', { something: 'else' });
    expect(await liveHeapMb(bench)).toBe(1);
    expect(await liveHeapMb(new EventEmitter(), 20)).toBeNaN();
  });

  it('judges each service by peak RSS under 150 MB and live heap within 20% of idle', () => {
    const verdicts = memoryVerdicts({ planner: 20, dispatcher: 20, gateway: 20 }, { planner: 149, dispatcher: 183, gateway: 120 }, { planner: 24, dispatcher: 21, gateway: 24.1 });
    expect(verdicts.map((v) => [v.service, v.rss_under_target, v.heap_back_to_idle])).toEqual([
      ['planner', true, true],
      ['dispatcher', false, true],
      ['gateway', true, false],
    ]);
  });

  it('fails a target whose figure is missing', () => {
    const [verdict] = memoryVerdicts({ projector: 20 }, {}, { projector: Number.NaN });
    expect(verdict).toMatchObject({ rss_under_target: false, heap_back_to_idle: false });
  });

  it('prints a row per workload and service, and nothing without figures', () => {
    const lines = memoryMarkdown([{ workload: '6-many-flows', memory: memoryVerdicts({ executor: 18.5 }, { executor: 160 }, { executor: 19 }) }]);
    expect(lines).toContain('| 6-many-flows | executor | 18.5 | 160 | 19 | **no** | yes |');
    expect(memoryMarkdown([])).toEqual([]);
  });
});
