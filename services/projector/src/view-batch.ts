import { toFlowListing } from '@taskstream/domain';
import type { FlowSummaryStore, FlowViewStore, Logger } from '@taskstream/nats';
import { batchWriting } from './metrics.js';
import { planViewWrite, type ProjectedFlow, type TouchedTasks } from './view-store.js';
import { WriteBatch } from './write-batch.js';

/** A flow whose view and summary wait to be written, with the tasks its events touched. */
export interface PendingFlow {
  flow: ProjectedFlow;
  tasks: TouchedTasks;
}

function union(a: TouchedTasks, b: TouchedTasks): TouchedTasks {
  if (a === 'all' || b === 'all') return 'all';
  for (const taskId of b) a.add(taskId);
  return a;
}

/** The write batch of views and summaries: each flow held is written once per batch, with its newest state. */
export function viewBatch(log: Logger, views: FlowViewStore, summaries: FlowSummaryStore): WriteBatch<PendingFlow> {
  return new WriteBatch<PendingFlow>({
    log,
    // The pending entries are the batch's own: the older one's set of touched tasks can take the newer's.
    merge: (a, b) => ({
      flow: b.flow.state.last_seq >= a.flow.state.last_seq ? b.flow : a.flow,
      tasks: union(a.tasks, b.tasks),
    }),
    write: async ({ flows }) => {
      const written = batchWriting();
      // Count and encode before the first await: later events keep folding into the same states meanwhile.
      for (const { flow, tasks } of flows.values()) flow.tally.update(flow.state, tasks);
      const viewWrites = [...flows.values()].map(({ flow, tasks }) => ({ flow, write: planViewWrite(flow, tasks) }));
      // Many events (a start, an attempt's failure) change the view but not the summary: skip those writes.
      const summaryWrites = [...flows].flatMap(([flowId, { flow }]) => {
        const summary = toFlowListing(flow.state, flow.tally);
        const json = JSON.stringify(summary);
        return json === flow.storedSummary ? [] : [{ flow, flowId, summary, json }];
      });
      await views.write(
        viewWrites.map(({ write }) => write),
        () => summaryWrites.map(({ flowId, summary }) => summaries.put(flowId, summary)),
      );
      for (const { flow, write } of viewWrites) {
        flow.paged = write.paged;
        delete flow.keyPerTask;
      }
      for (const { flow, json } of summaryWrites) flow.storedSummary = json;
      written();
    },
  });
}
