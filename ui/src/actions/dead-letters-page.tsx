import type { DeadLetter } from '@taskstream/client';
import { useCallback, useEffect, useState } from 'react';
import { ErrorMessage } from '../common/components.js';
import { formatTime } from '../common/time.js';
import { useAction } from '../common/use-async.js';
import { useSession } from '../session/session.js';

/** Messages the services set aside, with their reason; an admin retries a work item or discards a letter. */
export function DeadLettersPage() {
  const { client, can } = useSession();
  const [letters, setLetters] = useState<DeadLetter[] | undefined>(undefined);
  const [loadError, setLoadError] = useState<unknown>(undefined);
  const [done, setDone] = useState<string | undefined>(undefined);
  const { busy, error, run } = useAction();
  const load = useCallback(() => {
    client.deadLetters
      .list()
      .then((answer) => (setLetters(answer), setLoadError(undefined)))
      .catch(setLoadError);
  }, [client]);
  useEffect(load, [load]);

  const retry = async (letter: DeadLetter) => {
    const answer = await run(() => client.deadLetters.retry(letter.dlq_seq));
    if (answer) setDone(`Letter ${letter.dlq_seq} republished to ${answer.republished_to}.`);
    load();
  };
  const discard = async (letter: DeadLetter) => {
    const answer = await run(async () => (await client.deadLetters.discard(letter.dlq_seq), true));
    if (answer) setDone(`Letter ${letter.dlq_seq} discarded.`);
    load();
  };

  if (!can('admin')) return <p className="page">Dead letters are for keys with the admin scope.</p>;
  return (
    <div className="page">
      <h1>Dead letters</h1>
      <ErrorMessage error={loadError ?? error} />
      {done && <p role="status">{done}</p>}
      {letters?.length === 0 && <p>No dead letters.</p>}
      <ul className="letters">
        {letters?.map((letter) => (
          <li key={letter.dlq_seq} className="panel">
            <h2>
              #{letter.dlq_seq} from {letter.source}
            </h2>
            <p>{letter.reason}</p>
            <p className="muted">
              {formatTime(letter.time)} · {letter.stream} seq {letter.stream_seq} · {letter.subject} · delivered {letter.delivery_count}×
            </p>
            <details>
              <summary>Payload ({letter.bytes} bytes, {letter.encoding})</summary>
              <pre className="json">{letter.encoding === 'omitted' ? 'too large to show: see its stream and sequence' : letter.data}</pre>
            </details>
            <div className="buttons">
              <button type="button" disabled={busy} onClick={() => void retry(letter)}>
                Retry
              </button>
              <button type="button" className="danger" disabled={busy} onClick={() => void discard(letter)}>
                Discard
              </button>
            </div>
          </li>
        ))}
      </ul>
    </div>
  );
}
