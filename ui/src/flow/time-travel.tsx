import type { StoredEvent, TaskstreamClient } from '@taskstream/client';
import { useState } from 'react';
import { describeEvent } from './describe-event.js';
import { ForkForm } from './fork-dialog.js';

interface TimeTravelProps {
  client: TaskstreamClient;
  flowId: string;
  events: readonly StoredEvent[];
  /** The event shown (an index into `events`), or undefined for the live state. */
  cursor: number | undefined;
  onCursor: (cursor: number | undefined) => void;
  canFork: boolean;
}

/** A slider over the flow's events: the DAG and the task panel show the flow as it was at the event under it, described in words. */
export function TimeTravel({ client, flowId, events, cursor, onCursor, canFork }: TimeTravelProps) {
  const [forking, setForking] = useState(false);
  if (events.length === 0) return null;
  const last = events.length - 1;
  const index = cursor ?? last;
  const current = events[Math.min(index, last)]!;
  const words = describeEvent(current);
  return (
    <section className="panel time-travel" aria-label="Time travel">
      <div className="slider-row">
        <label htmlFor="event-slider">Event {index + 1} of {events.length}</label>
        <input
          id="event-slider"
          type="range"
          min={0}
          max={last}
          step={1}
          value={index}
          aria-valuetext={words}
          onChange={(e) => onCursor(Number(e.target.value))}
        />
        {cursor === undefined ? (
          <span className="live-badge" aria-label="Showing the live state">
            ● live
          </span>
        ) : (
          <button type="button" onClick={() => onCursor(undefined)}>
            Back to live
          </button>
        )}
        {canFork && (
          <button type="button" onClick={() => setForking((f) => !f)} aria-expanded={forking}>
            Fork here
          </button>
        )}
      </div>
      <p className="event-words" aria-live="polite" data-seq={current.seq}>
        {words}
        <span className="muted"> — {new Date(current.stored_at).toLocaleTimeString()}</span>
      </p>
      {forking && <ForkForm client={client} flowId={flowId} at={current.seq} onClose={() => setForking(false)} />}
    </section>
  );
}
