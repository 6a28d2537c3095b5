import { isTransient, type FlowView, type StoredEvent, type TaskstreamClient } from '@taskstream/client';
import { useEffect, useRef, useState } from 'react';
import { follow } from '../common/follow.js';
import { throttle } from '../common/throttle.js';

/** How often, at most, a busy flow's state is read again and its new events shown. */
const REFRESH_MS = 250;

export interface FlowLive {
  /** The flow as of its last event received (folded by the gateway at that sequence). */
  view: FlowView | undefined;
  /** Every event so far, in stream order. */
  events: StoredEvent[];
  /** True while the feed is being opened again after the gateway went away. */
  reconnecting: boolean;
  error: unknown;
}

/**
 * A flow kept current over its WebSocket feed: every event from the first, then live ones. After
 * each burst of events the state is read at the last sequence received (GET …/state?at=), so what
 * the page shows is exactly the log up to that event, never a view the projector has not caught up
 * with. A dropped feed resumes after the last sequence seen (see follow), with no reload.
 */
export function useFlowLive(client: TaskstreamClient, flowId: string): FlowLive {
  const [view, setView] = useState<FlowView | undefined>(undefined);
  const [events, setEvents] = useState<StoredEvent[]>([]);
  const [reconnecting, setReconnecting] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const received = useRef<StoredEvent[]>([]);

  useEffect(() => {
    const controller = new AbortController();
    // The sequence of the state on screen: an answer for an earlier one (a slower request) never replaces it.
    let shownSeq = 0;
    const show = (state: FlowView, seq: number) => {
      if (seq <= shownSeq) return;
      shownSeq = seq;
      setView(state);
    };
    const readState = async () => {
      const at = received.current.at(-1)?.seq;
      if (at === undefined || at <= shownSeq) return;
      try {
        show((await client.stateAt(flowId, at)).state, at);
      } catch (failure) {
        if (controller.signal.aborted) return;
        // The gateway may be restarting: ask again until it answers.
        if (isTransient(failure)) refresh.ask();
        else setError(failure);
      }
    };
    const refresh = throttle(() => {
      setEvents([...received.current]);
      void readState();
    }, REFRESH_MS);

    // The view first, as it is at once; the events follow, from the first.
    client
      .get(flowId)
      .then((first) => show(first, first.last_seq))
      .catch((failure: unknown) => setError(failure));
    void follow(
      (after) => client.events(flowId, { after, signal: controller.signal }),
      {
        onEvent: (stored) => {
          received.current.push(stored);
          refresh.ask();
        },
        onError: setError,
        onReconnecting: setReconnecting,
      },
      controller.signal,
    );
    return () => {
      controller.abort();
      refresh.cancel();
      received.current = [];
    };
  }, [client, flowId]);

  return { view, events, reconnecting, error };
}
