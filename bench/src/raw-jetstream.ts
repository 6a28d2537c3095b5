import { jetstream, jetstreamManager, type NatsConnection } from '@taskstream/nats';
import { AckPolicy } from '@taskstream/nats';
import { ProcessMeter } from './procs.js';
import { lostAndDuplicates, measured, type Result } from './result.js';

/**
 * The same message flow with no engine: the physical limit on this machine. Independent tasks are
 * work items published to a work-queue stream and acknowledged after a result is stored; a chain
 * step is a relay through four hops, as many as Taskstream's pipeline (ready, dispatch, work, result).
 */
export async function independent(nc: NatsConnection, natsPid: number, n: number): Promise<Result> {
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const stream = `RAW1_${Date.now()}`;
  await jsm.streams.add({ name: stream, subjects: [`${stream}.>`] });
  await jsm.consumers.add(stream, { durable_name: 'w', filter_subject: `${stream}.work`, ack_policy: AckPolicy.Explicit, max_ack_pending: 10_000 });
  const usage = new ProcessMeter(new Map([['nats-server', natsPid], ['bench (workers)', process.pid]]));
  const submitted = Date.now();
  const t0 = performance.now();
  const starts: number[] = [];
  const seen = new Map<number, number>();
  const consumer = await js.consumers.get(stream, 'w');
  const messages = await consumer.consume({ max_messages: 256 });
  const working = (async () => {
    const inFlight = new Set<Promise<void>>();
    for await (const msg of messages) {
      const i = Number(msg.string());
      starts.push(Date.now() - submitted);
      const p = js.publish(`${stream}.done`, String(i)).then(() => {
        seen.set(i, (seen.get(i) ?? 0) + 1);
        msg.ack();
      });
      const tracked = p.finally(() => inFlight.delete(tracked));
      inFlight.add(tracked);
      if (inFlight.size >= 64) await Promise.race(inFlight);
      if (starts.length === n) {
        await Promise.all(inFlight);
        break;
      }
    }
  })();
  const pubs: Array<Promise<unknown>> = [];
  for (let i = 0; i < n; i++) {
    pubs.push(js.publish(`${stream}.work`, String(i)));
    if (pubs.length >= 1000) await Promise.all(pubs.splice(0));
  }
  await Promise.all(pubs);
  await working;
  const makespan = performance.now() - t0;
  await messages.close();
  const used = usage.stop();
  await jsm.streams.delete(stream);
  return {
    workload: '1-independent',
    system: 'raw-jetstream',
    ...measured(n, makespan, starts, used),
    ...lostAndDuplicates(seen, n),
  };
}

export async function chain(nc: NatsConnection, natsPid: number, n: number): Promise<Result> {
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const stream = `RAW3_${Date.now()}`;
  await jsm.streams.add({ name: stream, subjects: [`${stream}.>`] });
  const hops = 4;
  for (let h = 1; h <= hops; h++) await jsm.consumers.add(stream, { durable_name: `h${h}`, filter_subject: `${stream}.h${h}`, ack_policy: AckPolicy.Explicit });
  const usage = new ProcessMeter(new Map([['nats-server', natsPid], ['bench (workers)', process.pid]]));
  const arrivals = new Map<number, (t: number) => void>();
  const relays: Array<{ close: () => Promise<void | Error> }> = [];
  for (let h = 1; h <= hops; h++) {
    const messages = await (await js.consumers.get(stream, `h${h}`)).consume({ max_messages: 16 });
    relays.push(messages);
    void (async () => {
      for await (const msg of messages) {
        const step = Number(msg.string());
        if (h < hops) await js.publish(`${stream}.h${h + 1}`, String(step));
        msg.ack();
        if (h === hops) arrivals.get(step)?.(performance.now());
      }
    })();
  }
  const gaps: number[] = [];
  const t0 = performance.now();
  for (let step = 0; step < n; step++) {
    const begin = performance.now();
    const arrived = new Promise<number>((r) => arrivals.set(step, r));
    await js.publish(`${stream}.h1`, String(step));
    gaps.push((await arrived) - begin);
  }
  const makespan = performance.now() - t0;
  for (const relay of relays) await relay.close();
  const used = usage.stop();
  await jsm.streams.delete(stream);
  return {
    workload: '3-chain',
    system: 'raw-jetstream',
    ...measured(n, makespan, gaps, used),
    lost: 0,
    duplicates: 0,
    notes: '4-hop relay per step',
  };
}
