import { bucketOf, formatPath, QueueName, QueuePolicyInput, refill, type QueuePolicy, type QueueStatsView } from '@taskstream/domain';
import { QueueLimitsStore, QueuePolicyStore, type JetStreamClient, type Topology } from '@taskstream/nats';
import { apiError, problemsError } from './errors.js';
import type { FlowIndex } from './flow-index.js';

export interface QueueView {
  name: string;
  policy: QueuePolicy;
  /** Tasks holding a concurrency slot now (queues with a concurrency limit). */
  running: number;
  /** Tokens in the rate-limit bucket now (queues with a rate limit). */
  tokens?: number;
}

/** Queue policies (`<prefix>_queues`) and their live limits (`<prefix>_limits`), through the buckets' owners. */
export class Queues {
  constructor(
    private readonly policies: QueuePolicyStore,
    private readonly limits: QueueLimitsStore,
    private readonly index: FlowIndex,
  ) {}

  static async open(js: JetStreamClient, topo: Topology, index: FlowIndex): Promise<Queues> {
    return new Queues(await QueuePolicyStore.open(js, topo), await QueueLimitsStore.open(js, topo), index);
  }

  /** A queue's live statistics: the sum of its flows' shares (zeros before any task). */
  stats(name: string): QueueStatsView {
    Queues.checkName(name);
    return this.index.queueStats(name);
  }

  static parsePolicy(body: unknown): QueuePolicy {
    const result = QueuePolicyInput.safeParse(body, { reportInput: true });
    if (result.success) return result.data;
    const problems = result.error.issues.flatMap((issue) =>
      issue.code === 'unrecognized_keys'
        ? issue.keys.map((key) => ({ path: formatPath([...issue.path, key]), message: `unknown field "${key}"; known fields are concurrency, per_key_concurrency, rate_limit, max_retries, timeout_secs, backoff` }))
        : [{ path: formatPath(issue.path), message: issue.code === 'invalid_type' && issue.input === undefined ? 'is required' : issue.message }],
    );
    throw problemsError('INVALID_QUEUE_POLICY', problems);
  }

  static checkName(name: string): void {
    if (!QueueName.safeParse(name).success) throw apiError('INVALID_PARAMETER', 'name', 'must be a queue name: letters, digits, "-" and "_", at most 64 characters');
  }

  async put(name: string, policy: QueuePolicy): Promise<QueueView> {
    Queues.checkName(name);
    await this.policies.put(name, policy);
    return this.view(name, policy);
  }

  async get(name: string): Promise<QueueView> {
    Queues.checkName(name);
    const policy = await this.policies.get(name);
    if (policy === undefined) throw apiError('QUEUE_NOT_FOUND', name);
    return this.view(name, policy);
  }

  async delete(name: string): Promise<void> {
    await this.get(name);
    await this.policies.delete(name);
  }

  /** Every queue with a policy, by name; a corrupt record fails the listing, naming its bucket and key. */
  async list(): Promise<QueueView[]> {
    const views: QueueView[] = [];
    for (const { queue, policy } of await this.policies.list()) views.push(await this.view(queue, policy));
    return views;
  }

  private async view(name: string, policy: QueuePolicy): Promise<QueueView> {
    const { record } = await this.limits.read(name);
    const bucket = bucketOf(policy);
    const tokens = bucket ? (record.bucket ? refill(record.bucket, bucket, Date.now()).tokens : bucket.burst) : undefined;
    return { name, policy, running: Object.keys(record.holders).length, ...(tokens !== undefined && { tokens: Math.floor(tokens * 100) / 100 }) };
  }
}
