import type { FlowSummary } from '@taskstream/domain';
import type { FlowSummaryStore, SummaryChange } from '@taskstream/nats';
import { describe, expect, it } from 'vitest';
import { FlowIndex } from '../src/flow-index.js';

const summary = (flowId: string): FlowSummary => ({ flow_id: flowId, status: 'succeeded', queue: 'default', submitted_at: '2026-12-04T00:00:00.000Z', total: 1 });

/** A summaries store whose reads list `lists[n]` in turn, or fail where an entry is an Error. */
function storeReading(lists: Array<string[] | Error>): FlowSummaryStore {
  let reads = 0;
  return {
    async watch(onChange: (change: SummaryChange) => void, ready: () => void) {
      const list = lists[Math.min(reads++, lists.length - 1)]!;
      if (list instanceof Error) throw list;
      for (const flowId of list) onChange({ flowId, summary: summary(flowId) });
      ready();
      return () => {};
    },
  } as unknown as FlowSummaryStore;
}

const listed = (index: FlowIndex) => index.query({ limit: 100 }).flows.map((f) => f.flow_id);

describe("the gateway's flows list, read again", () => {
  it('tries a failed read again after a second, says so, and then lists what the new read found', async () => {
    const index = await FlowIndex.open(storeReading([['a', 'b'], new Error('no responders'), ['a']]), () => {});
    expect(listed(index)).toEqual(['b', 'a']);
    const failures: Array<[string, number]> = [];
    await index.readAgain((error, retryInMs) => failures.push([(error as Error).message, retryInMs]));
    expect(failures).toEqual([['no responders', 1_000]]);
    expect(listed(index)).toEqual(['a']);
  });

  it('gives up trying once the index stops, keeping what it listed', async () => {
    const index = await FlowIndex.open(storeReading([['a'], new Error('no responders')]), () => {});
    const again = index.readAgain(() => index.stop());
    await again;
    expect(listed(index)).toEqual(['a']);
  });
});
