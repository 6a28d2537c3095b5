import { assemblePagedView, taskViewKeys, type FlowView, type StoredTaskView } from '@taskstream/domain';
import { DeliverPolicy, type JetStreamClient, type KV, type Topology } from '@taskstream/nats';

/**
 * Reads of a paged view whose tasks do not match its header: one happens when the projector
 * changes the view's layout between reading the header and reading the tasks, and the next read
 * finds the new header.
 */
const READS = 3;

/**
 * The projector's view of `flowId`, whatever its size: one key, or a paged header whose tasks are
 * read in one request and put back in definition order. Null when there is no view to serve (not
 * projected yet, being rebuilt, or stored without its tasks by an older projector): the caller
 * folds the flow from its log.
 */
export async function readFlowView(js: JetStreamClient, topo: Topology, views: KV, flowId: string): Promise<FlowView | null> {
  for (let read = 0; read < READS; read++) {
    const entry = await views.get(flowId);
    if (!entry || entry.operation !== 'PUT' || entry.value.length === 0) return null;
    const view = entry.json<FlowView>();
    if (!view.tasks_paged) return view.tasks_omitted ? null : view;
    const whole = assemblePagedView(view, await readTaskViews(js, topo.flowsBucket, flowId));
    if (whole) return whole;
  }
  return null;
}

/**
 * Every task key of a paged view as it stands, through one ordered consumer on the bucket's
 * stream: the last message of each key, then any written meanwhile, until none is pending. A key
 * written again during the read is delivered again, and its last delivery wins.
 */
async function readTaskViews(js: JetStreamClient, bucket: string, flowId: string): Promise<StoredTaskView[]> {
  const consumer = await js.consumers.get(`KV_${bucket}`, { filter_subjects: `$KV.${bucket}.${taskViewKeys(flowId)}`, deliver_policy: DeliverPolicy.LastPerSubject });
  const { num_pending } = await consumer.info();
  if (num_pending === 0) return [];
  const byKey = new Map<string, StoredTaskView>();
  const messages = await consumer.consume({ max_messages: Math.min(num_pending, 1000) });
  for await (const msg of messages) {
    // Deletes and purges carry their operation in a header; a put carries none.
    if (msg.headers?.get('KV-Operation')) byKey.delete(msg.subject);
    else byKey.set(msg.subject, msg.json<StoredTaskView>());
    if (msg.info.pending === 0) break;
  }
  await messages.close();
  return [...byKey.values()];
}
