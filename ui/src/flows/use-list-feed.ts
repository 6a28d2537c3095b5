import type { TaskstreamClient } from '@taskstream/client';
import { useEffect, useRef } from 'react';
import { follow } from '../common/follow.js';
import { throttle } from '../common/throttle.js';

/** Events that change a flow's line in the list, and those that change its task counts. */
const FLOW_EVENTS = ['flow.submitted', 'flow.started', 'flow.cancel_requested', 'flow.succeeded', 'flow.failed', 'flow.cancelled'] as const;
const TASK_EVENTS = ['task.succeeded', 'task.failed', 'task.timed_out', 'task.skipped', 'task.upstream_failed', 'task.cancelled', 'flow.tasks_added'] as const;
/** The list is read again at most this often, however many flows change. */
const RELOAD_MS = 500;

interface ListFeedHandlers {
  /** A flow was submitted or changed status: the page should be read again. */
  onFlowChange: () => void;
  /** A task of the flow ended (or tasks were added to it): its counts changed. */
  onTaskEnd: (flowId: string) => void;
  onError: (error: unknown) => void;
}

/**
 * Follows the global feed for what changes the flows list, from the newest flow's last event on
 * (what came before is in the list already), reopening it after the gateway went away.
 */
export function useListFeed(client: TaskstreamClient, handlers: ListFeedHandlers): void {
  // The latest handlers, without reopening the feed when they change.
  const current = useRef(handlers);
  current.current = handlers;
  useEffect(() => {
    const controller = new AbortController();
    const reload = throttle(() => current.current.onFlowChange(), RELOAD_MS);
    void (async () => {
      const newest = (await client.listPage({ limit: 1 }).catch(() => undefined))?.flows[0];
      const after = newest ? ((await client.get(newest.flow_id).catch(() => undefined))?.last_seq ?? 0) : 0;
      await follow(
        (from) => client.feed({ types: [...FLOW_EVENTS, ...TASK_EVENTS], after: from, signal: controller.signal }),
        {
          onEvent: ({ event }) => ((FLOW_EVENTS as readonly string[]).includes(event.type) ? reload.ask() : current.current.onTaskEnd(event.flow_id)),
          onError: (error) => current.current.onError(error),
        },
        controller.signal,
        after,
      );
    })();
    return () => {
      controller.abort();
      reload.cancel();
    };
  }, [client]);
}
