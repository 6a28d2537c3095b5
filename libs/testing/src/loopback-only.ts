import dgram from 'node:dgram';
import dns from 'node:dns';
import { syncBuiltinESMExports } from 'node:module';
import net, { isIP } from 'node:net';

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost)$/;

/**
 * Whether a test may connect to `host` as given: a loopback address, `localhost`, or no host at all
 * (a Unix socket path, or Node's default, which is this machine). Other names are checked once
 * resolved (see confineToLoopback).
 */
export function isLoopbackTarget(host: string | undefined): boolean {
  if (host === undefined || host === '') return true;
  return LOOPBACK.test(host.replace(/^\[|\]$/g, ''));
}

type LookupCallback = (error: Error | null, address?: string | dns.LookupAddress[], family?: number) => void;
type Lookup = (hostname: string, options: dns.LookupOptions, callback: LookupCallback) => void;

/** `lookup`, failing any answer that is not a loopback address. */
function loopbackAnswersOnly(lookup: Lookup): Lookup {
  return (hostname, options, callback) =>
    lookup(hostname, options, (error, address, family) => {
      if (error) return callback(error);
      const addresses = Array.isArray(address) ? address.map((a) => a.address) : [address as string];
      const beyond = addresses.find((a) => !isLoopbackTarget(a));
      if (beyond !== undefined) return callback(new Error(`this test connects only to loopback; ${hostname} resolved to ${beyond}, refused before connecting`));
      return callback(null, address, family);
    });
}

/** The connect arguments with a name's resolver confined to loopback answers; an address literal must be loopback itself. */
function confined(args: unknown[], systemLookup: Lookup): unknown[] {
  const normalized = Array.isArray(args[0]);
  const first = normalized ? (args[0] as unknown[])[0] : args[0];
  const options: { host?: string; path?: string; port?: unknown; lookup?: Lookup } = typeof first === 'object' && first !== null ? first : { host: typeof args[1] === 'string' ? args[1] : undefined, port: first };
  if (options.path !== undefined) return args;
  const host = options.host;
  if (host === undefined || isIP(host.replace(/^\[|\]$/g, '')) !== 0) {
    if (!isLoopbackTarget(host)) throw new Error(`this test connects only to loopback; a connect to ${host} was refused before it was made`);
    return args;
  }
  const guarded = { ...options, lookup: loopbackAnswersOnly(options.lookup ?? systemLookup) };
  if (normalized) {
    // Node marks its normalized array with a symbol of its own: change its options in place.
    (args[0] as unknown[])[0] = guarded;
    return args;
  }
  return typeof first === 'object' ? [guarded, ...args.slice(1)] : [guarded, ...args.slice(2)];
}

/** The address a UDP `send` or `connect` names, if any: its one string argument after the message. */
function udpAddress(args: unknown[], from: number): string | undefined {
  return args.slice(from).find((arg): arg is string => typeof arg === 'string');
}

function refuseUdpBeyondLoopback(address: string | undefined): void {
  if (address !== undefined && !isLoopbackTarget(address)) throw new Error(`this test sends only to loopback; a UDP datagram to ${address} was refused before it was sent`);
}

/** Node's resolver binding: the system resolver (`getaddrinfo`, `getnameinfo`) and c-ares's queries, which `dns.resolve*` and `dns.Resolver` send. */
type ResolverBinding = Record<string, unknown> & { ChannelWrap: { prototype: Record<string, unknown> } };

/**
 * Makes every way of asking a DNS server throw, below the `dns` module, so no query leaves this
 * machine whatever path the code under test takes (`dns.resolve*`, a `dns.Resolver`, a lookup
 * that bypasses `dns.lookup`). `localhost` may still be asked of the system resolver (it answers
 * from the hosts file). Returns the function that puts the binding back.
 */
function refuseDnsQueries(): () => void {
  const binding = (process as unknown as { binding(name: string): ResolverBinding }).binding('cares_wrap');
  const saved: Array<[Record<string, unknown>, string, unknown]> = [];
  const replace = (target: Record<string, unknown>, name: string, guard: (original: (...args: unknown[]) => unknown) => (...args: unknown[]) => unknown) => {
    const original = target[name] as (...args: unknown[]) => unknown;
    saved.push([target, name, original]);
    target[name] = guard(original);
  };
  const refuse = (what: string) => {
    throw new Error(`this test resolves nothing but localhost; ${what} was refused before any query was sent`);
  };
  replace(binding, 'getaddrinfo', (original) =>
    function (this: unknown, ...args: unknown[]) {
      if (args[1] !== 'localhost') refuse(`a lookup of ${String(args[1])}`);
      return original.apply(this, args);
    },
  );
  replace(binding, 'getnameinfo', () => (_req, host) => refuse(`a reverse lookup of ${String(host)}`));
  for (const name of Object.getOwnPropertyNames(binding.ChannelWrap.prototype)) {
    if (name.startsWith('query') || name === 'getHostByAddr') replace(binding.ChannelWrap.prototype, name, () => (_req, question) => refuse(`a DNS query (${name}) for ${String(question)}`));
  }
  // dns.promises keeps its own references to the binding's functions once loaded: refuse its reverse lookup by name too.
  replace(dns.promises as unknown as Record<string, unknown>, 'lookupService', () => async (host) => refuse(`a reverse lookup of ${String(host)}`));
  return () => {
    for (const [target, name, original] of saved.reverse()) target[name] = original;
  };
}

/**
 * Confines this process's network to loopback while a test file runs, so that code under test that
 * is broken (an address guard that lets everything through, a resolver it ignores) fails the test
 * instead of reaching another host: a TCP connect to an address that is not loopback throws before
 * a packet is sent, a name is connected to only if its resolver (the caller's own, or the process's)
 * answers loopback addresses, `dns.lookup` and `dns.promises.lookup` answer `localhost`
 * (127.0.0.1) and address literals only, any other DNS query throws before it is sent (see
 * refuseDnsQueries), and a UDP send or connect to anything but a loopback address or `localhost`
 * throws. Modules that imported `lookup` by name from
 * `node:dns` get the confined one too (the builtins' named exports are synced). Returns the
 * function that restores all of it.
 */
export function confineToLoopback(): () => void {
  const systemConnect = net.Socket.prototype.connect;
  const systemLookup = dns.lookup;
  const systemPromisesLookup = dns.promises.lookup;
  const systemSend = dgram.Socket.prototype.send;
  const systemUdpConnect = dgram.Socket.prototype.connect;
  const allowDnsQueries = refuseDnsQueries();
  net.Socket.prototype.connect = function loopbackOnlyConnect(this: net.Socket, ...args: unknown[]) {
    // net.connect passes its normalized arguments as one array.
    return (systemConnect as (...a: unknown[]) => net.Socket).apply(this, confined(args, dns.lookup as unknown as Lookup));
  } as typeof net.Socket.prototype.connect;
  const answer = (hostname: string, all: boolean, done: (...args: unknown[]) => void) => {
    const literal = isIP(hostname);
    if (literal !== 0) return all ? done(null, [{ address: hostname, family: literal }]) : done(null, hostname, literal);
    if (hostname !== 'localhost') return done(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname} (this test resolves nothing but localhost)`), { code: 'ENOTFOUND' }));
    return all ? done(null, [{ address: '127.0.0.1', family: 4 }]) : done(null, '127.0.0.1', 4);
  };
  (dns as { lookup: unknown }).lookup = (hostname: string, options: unknown, callback?: (...args: unknown[]) => void) => {
    const done = (typeof options === 'function' ? options : callback) as (...args: unknown[]) => void;
    const all = typeof options === 'object' && options !== null && (options as { all?: boolean }).all === true;
    queueMicrotask(() => answer(hostname, all, done));
  };
  (dns.promises as { lookup: unknown }).lookup = (hostname: string, options?: { all?: boolean }) =>
    new Promise((resolve, reject) => answer(hostname, options?.all === true, (error, address, family) => (error ? reject(error) : resolve(Array.isArray(address) ? address : { address, family }))));
  dgram.Socket.prototype.send = function loopbackOnlySend(this: dgram.Socket, ...args: unknown[]) {
    refuseUdpBeyondLoopback(udpAddress(args, 1));
    return (systemSend as (...a: unknown[]) => void).apply(this, args);
  } as typeof dgram.Socket.prototype.send;
  dgram.Socket.prototype.connect = function loopbackOnlyUdpConnect(this: dgram.Socket, ...args: unknown[]) {
    refuseUdpBeyondLoopback(udpAddress(args, 0));
    return (systemUdpConnect as (...a: unknown[]) => void).apply(this, args);
  } as typeof dgram.Socket.prototype.connect;
  syncBuiltinESMExports();
  return () => {
    net.Socket.prototype.connect = systemConnect;
    (dns as { lookup: unknown }).lookup = systemLookup;
    (dns.promises as { lookup: unknown }).lookup = systemPromisesLookup;
    dgram.Socket.prototype.send = systemSend;
    dgram.Socket.prototype.connect = systemUdpConnect;
    allowDnsQueries();
    syncBuiltinESMExports();
  };
}
