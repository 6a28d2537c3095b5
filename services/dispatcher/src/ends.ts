import { eventTypeFilter, flowIdOfSubject, idempotencyKeyOf, type SubjectLayout } from '@taskstream/domain';
import type { NatsConnection } from '@taskstream/nats';
import { RELEASING } from './releases.js';
import type { Rooms } from './rooms.js';

/**
 * The release consumers are shared by all dispatchers, so this one may never see its own tasks end
 * there: every instance reads the ends itself, by plain subscriptions without acknowledgement, to
 * free its window slots and to drop tasks that ended while they waited (a cancelled flow's).
 */
export function subscribeEnds(nc: NatsConnection, layout: SubjectLayout, rooms: Rooms): Array<{ unsubscribe(): void }> {
  return RELEASING.map((type) =>
    nc.subscribe(eventTypeFilter(layout, type), {
      callback: (error, msg) => {
        if (error) return;
        const flowId = flowIdOfSubject(layout, msg.subject);
        if (flowId === undefined || !rooms.knows(flowId)) return;
        let taskId: unknown;
        try {
          taskId = msg.json<{ task_id?: unknown }>().task_id;
        } catch {
          return;
        }
        if (typeof taskId === 'string') rooms.ended(idempotencyKeyOf(flowId, taskId));
      },
    }),
  );
}
