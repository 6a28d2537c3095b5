import type { QueueStats, QueueView } from '@taskstream/client';
import { useCallback, useEffect, useState } from 'react';
import { ErrorMessage } from '../common/components.js';
import { useSession } from '../session/session.js';
import { PolicyForm } from './policy-form.js';

/** How often the counts are read again. */
const POLL_MS = 3_000;
/** Minutes the finishing rate is averaged over. */
const RATE_MINUTES = 5;

interface QueueRow {
  queue: QueueView;
  stats: QueueStats | undefined;
}

/** Tasks finished a minute over the last few minutes of the queue's statistics. */
function finishedPerMinute(stats: QueueStats | undefined): number | undefined {
  if (!stats) return undefined;
  const minutes = Object.keys(stats.minutes).sort().slice(-RATE_MINUTES);
  if (minutes.length === 0) return 0;
  const total = minutes.reduce((n, m) => n + stats.minutes[m]!.succeeded + stats.minutes[m]!.failed, 0);
  return total / RATE_MINUTES;
}

/** Every queue with a policy: its limits, what runs and waits in it now, how fast it goes; admins edit the policy. */
export function QueuesPage() {
  const { client, can } = useSession();
  const [rows, setRows] = useState<QueueRow[] | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const load = useCallback(async () => {
    try {
      const queues = await client.queues.list();
      const stats = await Promise.all(queues.map((q) => client.queues.stats(q.name).catch(() => undefined)));
      setRows(queues.map((queue, i) => ({ queue, stats: stats[i] })));
      setError(undefined);
    } catch (failure) {
      setError(failure);
    }
  }, [client]);
  useEffect(() => {
    void load();
    const timer = setInterval(() => void load(), POLL_MS);
    return () => clearInterval(timer);
  }, [load]);

  return (
    <div className="page">
      <h1>Queues</h1>
      <ErrorMessage error={error} />
      {rows?.length === 0 && <p>No queue has a policy: every queue runs without limits.</p>}
      <div className="queues">
        {rows?.map(({ queue, stats }) => (
          <section key={queue.name} className="panel queue" aria-label={`Queue ${queue.name}`}>
            <h2>{queue.name}</h2>
            <dl className="facts">
              <dt>Running</dt>
              <dd>
                {queue.running}
                {queue.policy.concurrency !== undefined ? ` of ${queue.policy.concurrency}` : ''}
              </dd>
              <dt>Waiting</dt>
              <dd>{stats?.waiting ?? '—'}</dd>
              <dt>Throttled</dt>
              <dd>{stats?.throttled ?? '—'} held by a limit now</dd>
              <dt>Admission</dt>
              <dd>
                {queue.policy.rate_limit ? `up to ${queue.policy.rate_limit.per_second}/s` : 'no rate limit'}
                {queue.tokens !== undefined ? ` (${queue.tokens.toFixed(1)} tokens now)` : ''}
              </dd>
              <dt>Finished</dt>
              <dd>{finishedPerMinute(stats)?.toFixed(1) ?? '—'} tasks a minute (last {RATE_MINUTES} min)</dd>
            </dl>
            {can('admin') ? (
              <details>
                <summary>Edit policy</summary>
                <PolicyForm client={client} name={queue.name} policy={queue.policy} onSaved={() => void load()} />
              </details>
            ) : (
              <pre className="json">{JSON.stringify(queue.policy, null, 2)}</pre>
            )}
          </section>
        ))}
      </div>
      {can('admin') && (
        <details className="panel">
          <summary>
            <h2>Add a queue policy</h2>
          </summary>
          <PolicyForm client={client} onSaved={() => void load()} />
        </details>
      )}
    </div>
  );
}
