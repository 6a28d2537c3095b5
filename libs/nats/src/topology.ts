import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  jetstreamManager,
  type ConsumerConfig,
  type ConsumerInfo,
  type JetStreamManager,
  type StreamConfig,
} from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { Layout } from './records.js';
import type { NatsConnection } from '@nats-io/transport-node';
import { DEFAULT_PARTITIONS, MAX_SIGNAL_LOOKBACK_SECS, allDlqFilter, allEventsFilter, allSignalsFilter, allTimersFilter, allWorkFilter, type SubjectLayout } from '@taskstream/domain';

const SECOND_NS = 1_000_000_000;
/** Signals are kept as long as the longest look-back a wait task may ask for. */
const SIGNAL_RETENTION_SECS = MAX_SIGNAL_LOOKBACK_SECS;

/** Every stream, bucket and naming choice of one Taskstream installation. */
export interface Topology {
  layout: SubjectLayout;
  /** 1 on a single server; 3 on a three-node cluster for replicated storage. */
  replicas: number;
  eventsStream: string;
  workStream: string;
  dlqStream: string;
  /** Durable timers (flow deadlines), each held back by delayed redelivery until due. */
  timersStream: string;
  /** Signals sent to wait tasks, kept a day so waits can look back (see SignalLog). */
  signalsStream: string;
  /** Tasks waiting for a signal, by signal name (read and written only through SignalWaits). */
  signalWaitsBucket: string;
  flowsBucket: string;
  /** One small summary per flow, for listing and filtering, with its share of its queues' statistics. */
  summariesBucket: string;
  idempotencyBucket: string;
  /** Partition leases and instance membership of partitioned services (planner, projector). */
  leasesBucket: string;
  /** Queue policies (limits and task defaults), by queue name. */
  queuesBucket: string;
  /** Token buckets and concurrency slots of limited queues, changed only by compare-and-set. */
  limitsBucket: string;
  /** Large flow definitions, stored once and referenced by their submission (an object store). */
  definitionsBucket: string;
  /** Files shell steps stored, one object per attempt and file (read and written only through ArtifactStore). */
  artifactsBucket: string;
  /** Secrets flows reference as `${secrets.NAME}`, one key each (read and written only through SecretStore). */
  secretsBucket: string;
  /** API keys of the gateway, one record per key id (read and written only through ApiKeyStore). */
  apiKeysBucket: string;
  /** Flow templates, one immutable key per version (read and written only through TemplateStore). */
  templatesBucket: string;
  /** Webhook triggers, one key each (read and written only through TriggerStore). */
  triggersBucket: string;
  /** Schedules and their progress (read and written only through ScheduleStore). */
  schedulesBucket: string;
  /** Window in which JetStream drops a re-published message with the same Nats-Msg-Id. */
  duplicateWindowMs: number;
}

export interface TopologyOptions {
  prefix?: string;
  partitions?: number;
  replicas?: number;
  duplicateWindowMs?: number;
}

export function topology(options: TopologyOptions = {}): Topology {
  const prefix = options.prefix ?? 'ts';
  const upper = prefix.toUpperCase();
  return {
    layout: { prefix, partitions: options.partitions ?? DEFAULT_PARTITIONS },
    replicas: options.replicas ?? 1,
    eventsStream: `${upper}_EVENTS`,
    workStream: `${upper}_WORK`,
    dlqStream: `${upper}_DLQ`,
    timersStream: `${upper}_TIMERS`,
    signalsStream: `${upper}_SIGNALS`,
    signalWaitsBucket: `${prefix}_signal_waits`,
    flowsBucket: `${prefix}_flows`,
    summariesBucket: `${prefix}_flow_summaries`,
    idempotencyBucket: `${prefix}_idempotency`,
    queuesBucket: `${prefix}_queues`,
    leasesBucket: `${prefix}_leases`,
    limitsBucket: `${prefix}_limits`,
    definitionsBucket: `${prefix}_definitions`,
    artifactsBucket: `${prefix}_artifacts`,
    secretsBucket: `${prefix}_secrets`,
    apiKeysBucket: `${prefix}_api_keys`,
    templatesBucket: `${prefix}_templates`,
    triggersBucket: `${prefix}_triggers`,
    schedulesBucket: `${prefix}_schedules`,
    duplicateWindowMs: options.duplicateWindowMs ?? 10 * 60_000,
  };
}

export function streamConfigs(topo: Topology): Array<Partial<StreamConfig> & { name: string; subjects: string[] }> {
  const common = {
    storage: StorageType.File,
    num_replicas: topo.replicas,
    duplicate_window: topo.duplicateWindowMs * 1_000_000,
    discard: DiscardPolicy.Old,
  };
  return [
    // The event log: the source of truth. Never trimmed by the engine; operators set limits.
    { ...common, name: topo.eventsStream, subjects: [allEventsFilter(topo.layout)], retention: RetentionPolicy.Limits, max_msg_size: 4 * 1024 * 1024, allow_direct: true },
    // Work items: removed once an executor acknowledges them.
    { ...common, name: topo.workStream, subjects: [allWorkFilter(topo.layout)], retention: RetentionPolicy.Workqueue },
    // Timers: removed once they have fired.
    { ...common, name: topo.timersStream, subjects: [allTimersFilter(topo.layout)], retention: RetentionPolicy.Workqueue },
    // Signals: kept a day, the longest a wait task may look back.
    { ...common, name: topo.signalsStream, subjects: [allSignalsFilter(topo.layout)], retention: RetentionPolicy.Limits, max_age: SIGNAL_RETENTION_SECS * SECOND_NS, max_msg_size: 128 * 1024, allow_direct: true },
    // Dead letters: kept for 30 days for inspection and retry.
    { ...common, name: topo.dlqStream, subjects: [allDlqFilter(topo.layout)], retention: RetentionPolicy.Limits, max_age: 30 * 24 * 3600 * SECOND_NS },
  ];
}

/** Creates or updates every stream and KV bucket. Safe to call from every service at start. */
/** The streams, as docs/architecture.md's table states them (see Layout); subjects from the subject module. */
export const STREAM_LAYOUTS: Layout[] = [
  {
    bucket: (topo) => topo.eventsStream,
    kind: 'stream',
    keys: '`ts.evt.<partition>.<flow_id>.<type>`',
    value: 'every flow and task event',
    writers: ['gateway', 'planner', 'dispatcher', 'executor'],
    readers: ['planner', 'dispatcher', 'executor', 'projector', 'gateway'],
  },
  { bucket: (topo) => topo.workStream, kind: 'stream', keys: '`ts.work.<queue>`', value: 'work items', writers: ['dispatcher'], readers: ['executor'] },
  { bucket: (topo) => topo.timersStream, kind: 'stream', keys: '`ts.timer.<flow_id>`', value: 'flow deadline or a waiting task\'s timeout', writers: ['planner'], readers: ['planner'] },
  { bucket: (topo) => topo.signalsStream, kind: 'stream', keys: '`ts.signal.<name>`', value: 'a signal: its id, payload and sender, kept a day', writers: ['gateway'], readers: ['planner'] },
  {
    bucket: (topo) => topo.dlqStream,
    kind: 'stream',
    keys: '`ts.dlq.<source>`',
    value: 'messages set aside, with the reason',
    writers: ['planner', 'dispatcher', 'executor', 'projector'],
    readers: ['gateway'],
  },
];

export async function ensureTopology(nc: NatsConnection, topo: Topology): Promise<JetStreamManager> {
  const jsm = await patiently(() => jetstreamManager(nc));
  for (const config of streamConfigs(topo)) await ensureStream(jsm, config);
  const kvm = new Kvm(nc);
  await kvm.create(topo.flowsBucket, { history: 1, replicas: topo.replicas, storage: StorageType.File });
  await kvm.create(topo.summariesBucket, { history: 1, replicas: topo.replicas, storage: StorageType.File });
  await kvm.create(topo.queuesBucket, { history: 5, replicas: topo.replicas, storage: StorageType.File });
  // Member keys of instances that died without cleaning up vanish after a minute.
  await kvm.create(topo.leasesBucket, { history: 1, replicas: topo.replicas, storage: StorageType.File, ttl: 60_000 });
  await kvm.create(topo.limitsBucket, { history: 1, replicas: topo.replicas, storage: StorageType.File });
  // One value per secret: a replaced or deleted value is not kept.
  await kvm.create(topo.secretsBucket, { history: 1, replicas: topo.replicas, storage: StorageType.File });
  // One record per API key (hashes only); a revoked key keeps its record, marked revoked.
  await kvm.create(topo.apiKeysBucket, { history: 1, replicas: topo.replicas, storage: StorageType.File });
  // Template versions are immutable keys of their own; the bucket keeps one value per key.
  await kvm.create(topo.templatesBucket, { history: 1, replicas: topo.replicas, storage: StorageType.File });
  await kvm.create(topo.triggersBucket, { history: 1, replicas: topo.replicas, storage: StorageType.File });
  // One key per waiting wait task, by signal name: what a signal is matched against.
  await kvm.create(topo.signalWaitsBucket, { history: 1, replicas: topo.replicas, storage: StorageType.File });
  // One record per schedule, and its progress, changed by compare-and-set.
  await kvm.create(topo.schedulesBucket, { history: 1, replicas: topo.replicas, storage: StorageType.File });
  await kvm.create(topo.idempotencyBucket, {
    history: 1,
    replicas: topo.replicas,
    storage: StorageType.File,
    ttl: 7 * 24 * 3600 * 1000,
  });
  return jsm;
}

/**
 * Checks, without creating or changing anything, that every stream, bucket and object store of
 * `topo` exists: for services whose NATS user may not administer streams (TASKSTREAM_PROVISION=false).
 * Fails naming each one that is missing and how to create them.
 */
export async function checkTopology(nc: NatsConnection, topo: Topology): Promise<JetStreamManager> {
  const jsm = await patiently(() => jetstreamManager(nc));
  const buckets = [topo.flowsBucket, topo.summariesBucket, topo.queuesBucket, topo.leasesBucket, topo.limitsBucket, topo.secretsBucket, topo.apiKeysBucket, topo.idempotencyBucket, topo.templatesBucket, topo.triggersBucket, topo.schedulesBucket, topo.signalWaitsBucket];
  const expected: Array<{ what: string; stream: string }> = [
    ...streamConfigs(topo).map((config) => ({ what: `stream ${config.name}`, stream: config.name })),
    ...buckets.map((bucket) => ({ what: `key-value bucket ${bucket}`, stream: `KV_${bucket}` })),
    { what: `object store ${topo.definitionsBucket}`, stream: `OBJ_${topo.definitionsBucket}` },
    { what: `object store ${topo.artifactsBucket}`, stream: `OBJ_${topo.artifactsBucket}` },
  ];
  const missing: string[] = [];
  for (const { what, stream } of expected) {
    try {
      await jsm.streams.info(stream);
    } catch (error) {
      if (!isNotFound(error)) throw error;
      missing.push(what);
    }
  }
  if (missing.length > 0) {
    throw new Error(
      `NATS has no ${missing.join(', ')} (prefix "${topo.layout.prefix}"). With TASKSTREAM_PROVISION=false a service only checks that its streams and buckets exist: ` +
        'create them once with `taskstream provision --nats <url>`, as a NATS user allowed to administer streams, then start the service again.',
    );
  }
  return jsm;
}

async function ensureStream(jsm: JetStreamManager, config: Partial<StreamConfig> & { name: string }): Promise<void> {
  try {
    await jsm.streams.info(config.name);
  } catch (error) {
    if (!isNotFound(error)) throw error;
    await jsm.streams.add(config);
    return;
  }
  const { retention: _retention, storage: _storage, ...updatable } = config;
  await jsm.streams.update(config.name, updatable);
}

/**
 * Whether a JetStream API call failed for a reason that passes by itself: a request timeout or
 * "temporarily unavailable" while a cluster elects leaders after a node loss.
 */
export function isTransient(error: unknown): boolean {
  if (error instanceof JetStreamApiError) return error.status === 503 || error.code === 10008;
  const { name, message } = (error ?? {}) as { name?: string; message?: string };
  return name === 'TimeoutError' || /timeout|no responders|temporarily unavailable|not ready/i.test(message ?? '');
}

/** Runs an idempotent JetStream administration call again while it fails transiently, up to `waitMs`. */
export async function patiently<T>(call: () => Promise<T>, waitMs = 30_000): Promise<T> {
  const deadline = Date.now() + waitMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if (!isTransient(error) || Date.now() >= deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.min(2_000, 200 * attempt)));
    }
  }
}

/** Creates a durable pull consumer, or updates it in place when it exists with another config. */
export async function ensureConsumer(
  jsm: JetStreamManager,
  stream: string,
  config: Partial<ConsumerConfig> & { durable_name: string },
): Promise<void> {
  await patiently(() => createOrUpdateConsumer(jsm, stream, config));
}

async function createOrUpdateConsumer(
  jsm: JetStreamManager,
  stream: string,
  config: Partial<ConsumerConfig> & { durable_name: string },
): Promise<void> {
  const full: Partial<ConsumerConfig> = {
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ...config,
  };
  try {
    await jsm.consumers.info(stream, config.durable_name);
  } catch (error) {
    if (!isNotFound(error)) throw error;
    await jsm.consumers.add(stream, full);
    return;
  }
  const { deliver_policy: _d, ack_policy: _a, durable_name: _n, opt_start_seq: _s, ...updatable } = full;
  await jsm.consumers.update(stream, config.durable_name, updatable);
}

export function isNotFound(error: unknown): boolean {
  if (error instanceof JetStreamApiError) return error.status === 404 || error.code === 10059 || error.code === 10014;
  return /not found/i.test((error as Error)?.message ?? '');
}

/**
 * For a consumer whose messages must be processed in stream order by one owner at a time: when a
 * new owner takes over, messages the previous owner held unacknowledged would only come back after
 * the ack wait, behind newer ones. Recreating the consumer just after its ack floor delivers them
 * again first, in order. (Events the previous owner already applied reach the new owner again, so
 * handlers must skip what they have seen; ours compare stream sequences.)
 */
export async function ensureOrderedTakeover(
  jsm: JetStreamManager,
  stream: string,
  config: Partial<ConsumerConfig> & { durable_name: string },
): Promise<void> {
  let info;
  try {
    info = await patiently(() => jsm.consumers.info(stream, config.durable_name));
  } catch (error) {
    if (!isNotFound(error)) throw error;
    await ensureConsumer(jsm, stream, config);
    return;
  }
  if (info.num_ack_pending === 0 && info.num_redelivered === 0) {
    await ensureConsumer(jsm, stream, config);
    return;
  }
  const startSeq = resumeSequence(info);
  await patiently(() => jsm.consumers.delete(stream, config.durable_name).catch((error) => (isNotFound(error) ? true : Promise.reject(error))));
  await patiently(async () => {
    // A timed-out add may have been applied: then only its configuration needs checking.
    const existing = await jsm.consumers.info(stream, config.durable_name).catch((error) => (isNotFound(error) ? undefined : Promise.reject(error)));
    if (existing) return;
    await jsm.consumers.add(stream, { ack_policy: AckPolicy.Explicit, ...config, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: startSeq });
  });
}

/**
 * Where a recreated consumer resumes: just after its ack floor, but never before where it was
 * itself started. A consumer created at sequence N reports an ack floor of 0 until its first ack,
 * so a message at N that is never acknowledged (a poison one) would otherwise send the next
 * takeover back to sequence 1 and replay the whole partition.
 */
export function resumeSequence(info: Pick<ConsumerInfo, 'ack_floor' | 'config'>): number {
  const started = info.config.deliver_policy === DeliverPolicy.StartSequence ? (info.config.opt_start_seq ?? 1) : 1;
  return Math.max(info.ack_floor.stream_seq + 1, started);
}
