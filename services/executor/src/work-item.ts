import { attemptHistory, WorkItem, type AttemptHistory } from '@taskstream/domain';
import { decodeJson, readFlowHistory, type Decoded } from '@taskstream/nats';
import type { ServiceContext } from '@taskstream/runtime';

export function decodeWorkItem(data: Uint8Array): Decoded<WorkItem> {
  const json = decodeJson(data);
  if (!json.ok) return json;
  const parsed = WorkItem.safeParse(json.value);
  if (parsed.success) return { ok: true, value: parsed.data };
  return { ok: false, reason: `invalid work item: ${parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '$'}: ${i.message}`).join('; ')}` };
}

/** What the log holds about the task's attempts (see attemptHistory): read on a redelivery, not on a first delivery. */
export async function readAttemptHistory(ctx: ServiceContext, item: WorkItem): Promise<AttemptHistory> {
  return attemptHistory((await readFlowHistory(ctx.js, ctx.topo, item.flow_id)).map((stored) => stored.event), item.task_id);
}
