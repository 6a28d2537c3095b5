import ipaddr from 'ipaddr.js';

/**
 * Which addresses an http step may connect to: every public address, and private ones only when
 * the pool's allow-list names them. Pure: no DNS, no sockets. The http step asks it about IP
 * literals before connecting, about every address a name resolves to, and about the address a
 * socket actually reached.
 */

type Address = ipaddr.IPv4 | ipaddr.IPv6;

/** What a blocked range is, as the refusal names it. */
export type BlockedCategory =
  | 'unspecified'
  | 'loopback'
  | 'link-local'
  | 'private'
  | 'unique-local'
  | 'site-local'
  | 'carrier-grade NAT'
  | 'multicast'
  | 'broadcast'
  | 'reserved'
  | 'documentation'
  | 'benchmarking';

/** A range no http step reaches unless allowed: its category and its CIDR. */
export interface BlockedRange {
  category: BlockedCategory;
  cidr: string;
}

interface Range extends BlockedRange {
  network: Address;
  bits: number;
}

function range(cidr: string, category: BlockedCategory): Range {
  const [network, bits] = ipaddr.parseCIDR(cidr);
  return { cidr, category, network, bits };
}

/** Blocked IPv4 ranges, first match wins (the broadcast address before the rest of 240/4). */
const IPV4_BLOCKED: readonly Range[] = [
  range('0.0.0.0/8', 'unspecified'),
  range('10.0.0.0/8', 'private'),
  range('100.64.0.0/10', 'carrier-grade NAT'),
  range('127.0.0.0/8', 'loopback'),
  range('169.254.0.0/16', 'link-local'),
  range('172.16.0.0/12', 'private'),
  range('192.0.0.0/24', 'reserved'),
  range('192.0.2.0/24', 'documentation'),
  range('192.168.0.0/16', 'private'),
  range('198.18.0.0/15', 'benchmarking'),
  range('198.51.100.0/24', 'documentation'),
  range('203.0.113.0/24', 'documentation'),
  range('224.0.0.0/4', 'multicast'),
  range('255.255.255.255/32', 'broadcast'),
  range('240.0.0.0/4', 'reserved'),
];

/** Blocked IPv6 ranges, after the forms that carry an IPv4 address have been judged by it. */
const IPV6_BLOCKED: readonly Range[] = [
  range('::/128', 'unspecified'),
  range('::1/128', 'loopback'),
  range('64:ff9b:1::/48', 'reserved'),
  range('100::/64', 'reserved'),
  range('2001:2::/48', 'benchmarking'),
  range('2001:db8::/32', 'documentation'),
  range('3fff::/20', 'documentation'),
  range('fc00::/7', 'unique-local'),
  range('fe80::/10', 'link-local'),
  range('fec0::/10', 'site-local'),
  range('ff00::/8', 'multicast'),
  // The rest of ::/8 (IPv4-compatible ::a.b.c.d, IPv4-translated ::ffff:0:a.b.c.d) is reserved.
  range('::/8', 'reserved'),
];

const MAPPED = range('::ffff:0:0/96', 'reserved');
const COMPATIBLE = range('::/96', 'reserved');
const TRANSLATED = range('::ffff:0:0:0/96', 'reserved');
const NAT64 = range('64:ff9b::/96', 'reserved');
const SIX_TO_FOUR = range('2002::/16', 'reserved');

function inRange(address: Address, r: { network: Address; bits: number }): boolean {
  return address.kind() === r.network.kind() && (address as ipaddr.IPv4).match(r.network as ipaddr.IPv4, r.bits);
}

function v4FromBytes(bytes: number[]): ipaddr.IPv4 {
  return new ipaddr.IPv4(bytes);
}

/**
 * The IPv4 address an IPv6 address stands for or carries: IPv4-mapped (::ffff:a.b.c.d),
 * IPv4-compatible (::a.b.c.d), IPv4-translated (::ffff:0:a.b.c.d), NAT64 (64:ff9b::a.b.c.d) and
 * 6to4 (2002:aabb:ccdd::). None for any other address.
 */
export function embeddedIPv4(address: Address): ipaddr.IPv4 | undefined {
  if (address.kind() !== 'ipv6') return undefined;
  const v6 = address as ipaddr.IPv6;
  const bytes = v6.toByteArray();
  if (inRange(v6, MAPPED) || inRange(v6, TRANSLATED) || inRange(v6, NAT64)) return v4FromBytes(bytes.slice(12, 16));
  // :: and ::1 are themselves, not 0.0.0.0 and 0.0.0.1.
  if (inRange(v6, COMPATIBLE)) return bytes.slice(12, 14).every((b) => b === 0) ? undefined : v4FromBytes(bytes.slice(12, 16));
  if (inRange(v6, SIX_TO_FOUR)) return v4FromBytes(bytes.slice(2, 6));
  return undefined;
}

/**
 * Reads an address in any spelling a URL or a socket gives: dotted, decimal (2130706433), hex
 * (0x7f000001), octal (0177.0.0.1) or short (127.1) IPv4, and IPv6 with or without brackets, with
 * an embedded IPv4 part or a zone. Undefined when the text is not an address (a host name).
 */
export function parseAddress(text: string): Address | undefined {
  let value = text.trim();
  if (value.startsWith('[') && value.endsWith(']')) value = value.slice(1, -1);
  if (value.includes(':')) {
    // The zone (fe80::1%eth0) says which interface, not which address. The URL parser spells the
    // rest canonically: ipaddr.js alone reads ::1.2.3.4 as ::ffff:1.2.3.4.
    value = value.replace(/%.*$/, '');
    try {
      value = new URL(`http://[${value}]/`).hostname.slice(1, -1);
    } catch {
      return undefined;
    }
  } else if (value.endsWith('.')) {
    value = value.slice(0, -1);
  }
  if (!ipaddr.isValid(value)) return undefined;
  try {
    return ipaddr.parse(value);
  } catch {
    return undefined;
  }
}

/** The blocked range an address is in, or undefined for a public address. */
export function blockedRange(address: Address): BlockedRange | undefined {
  if (address.kind() === 'ipv4') {
    const found = IPV4_BLOCKED.find((r) => inRange(address, r));
    return found && { category: found.category, cidr: found.cidr };
  }
  const v6 = address as ipaddr.IPv6;
  // :: and ::1 first: they are in ::/96 but carry no IPv4 address.
  const own = IPV6_BLOCKED.slice(0, 2).find((r) => inRange(v6, r));
  if (own !== undefined) return { category: own.category, cidr: own.cidr };
  const v4 = embeddedIPv4(v6);
  if (v4 !== undefined) {
    const carried = blockedRange(v4);
    if (carried !== undefined) return carried;
    // A public IPv4 address mapped, through NAT64 or 6to4 is that public address; the deprecated forms are not.
    if (inRange(v6, MAPPED) || inRange(v6, NAT64) || inRange(v6, SIX_TO_FOUR)) return undefined;
  }
  const found = IPV6_BLOCKED.find((r) => inRange(v6, r));
  return found && { category: found.category, cidr: found.cidr };
}

/** What one allow-list entry allows: a range of addresses, or a host name (`*.` for its subdomains). */
type AllowEntry = { kind: 'cidr'; network: Address; bits: number } | { kind: 'name'; name: string } | { kind: 'suffix'; suffix: string };

/** A parsed allow-list (TASKSTREAM_HTTP_ALLOW): CIDRs, single addresses and host names. */
export interface AllowList {
  /** The entries as given, for messages. */
  readonly entries: readonly string[];
  readonly rules: readonly AllowEntry[];
}

/** What the embedded stack and the CLI allow: this machine's loopback addresses. */
export const LOCAL_HTTP_ALLOW: readonly string[] = Object.freeze(['127.0.0.0/8', '::1']);

/** An allow-list entry that is neither a CIDR, an address nor a host name. */
export class InvalidAllowEntryError extends Error {
  override name = 'InvalidAllowEntryError';
  constructor(
    readonly entry: string,
    reason: string,
  ) {
    super(`invalid http allow-list entry "${entry}": ${reason}`);
  }
}

const LABEL = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/;

function hostName(value: string): string | undefined {
  const name = value.toLowerCase().replace(/\.$/, '');
  if (name.length === 0 || name.length > 253) return undefined;
  const labels = name.split('.');
  if (!labels.every((l) => LABEL.test(l))) return undefined;
  // A URL reads a name whose last label is a number as an IPv4 address, never as a name.
  const last = labels.at(-1)!;
  if (/^(\d+|0x[0-9a-f]*)$/.test(last)) return undefined;
  return name;
}

const ENTRY_FORMS = 'expected a CIDR (10.0.0.0/8), an address (::1) or a host name (api.internal, *.internal)';

function parseEntry(entry: string): AllowEntry {
  const slash = entry.indexOf('/');
  const base = slash === -1 ? entry : entry.slice(0, slash);
  const address = parseAddress(base);
  if (address !== undefined) {
    const max = address.kind() === 'ipv4' ? 32 : 128;
    if (!isCanonicalDotted(base, address)) throw new InvalidAllowEntryError(entry, `write IPv4 addresses as four decimal numbers, such as ${slash === -1 ? '10.0.0.1' : '10.0.0.0/8'}`);
    if (slash === -1) return { kind: 'cidr', network: address, bits: max };
    const bits = entry.slice(slash + 1);
    if (!/^\d{1,3}$/.test(bits)) throw new InvalidAllowEntryError(entry, 'expected a CIDR such as 127.0.0.0/8 or fd00::/8');
    if (Number(bits) > max) throw new InvalidAllowEntryError(entry, `an ${address.kind() === 'ipv4' ? 'IPv4' : 'IPv6'} prefix is at most /${max}`);
    return { kind: 'cidr', network: address, bits: Number(bits) };
  }
  if (entry.startsWith('*.')) {
    const suffix = hostName(entry.slice(2));
    if (suffix !== undefined) return { kind: 'suffix', suffix };
  }
  const name = hostName(entry);
  if (name !== undefined) return { kind: 'name', name };
  throw new InvalidAllowEntryError(entry, ENTRY_FORMS);
}

/** Allow-list IPv4 entries are plain dotted quads: 10.1 or 012.0.0.0/8 would be a typo, not a wish. */
function isCanonicalDotted(text: string, address: Address): boolean {
  if (address.kind() !== 'ipv4') return true;
  return ipaddr.IPv4.isValidFourPartDecimal(text.trim());
}

/** Parses allow-list entries; throws InvalidAllowEntryError naming the first bad one. Blank entries are ignored. */
export function parseAllowList(entries: readonly string[]): AllowList {
  const kept = entries.map((e) => e.trim()).filter((e) => e.length > 0);
  return { entries: kept, rules: kept.map(parseEntry) };
}

/** The entries of a comma-separated setting (TASKSTREAM_HTTP_ALLOW), validated; none when unset or empty. */
export function parseAllowSetting(value: string | undefined): string[] {
  if (value === undefined) return [];
  const entries = value
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e.length > 0);
  parseAllowList(entries);
  return entries;
}

function normalisedName(host: string): string {
  return host.toLowerCase().replace(/\.$/, '');
}

/** Whether the allow-list names this host (the URL's host name), so whatever it resolves to may be reached. */
export function allowsHost(list: AllowList, host: string): boolean {
  const name = normalisedName(host);
  return list.rules.some((r) => (r.kind === 'name' && r.name === name) || (r.kind === 'suffix' && name.endsWith(`.${r.suffix}`)));
}

function allowsAddress(list: AllowList, address: Address): boolean {
  const v4 = embeddedIPv4(address);
  return list.rules.some((r) => r.kind === 'cidr' && (inRange(address, r) || (v4 !== undefined && inRange(v4, r))));
}

/** The verdict on one address: allowed (public, or in the allow-list), or the range that blocks it. */
export type AddressVerdict = { allowed: true; address: string } | { allowed: false; address: string; range: BlockedRange };

/**
 * Judges an address (any spelling parseAddress reads). An IPv4-mapped address is judged, and
 * named, as the IPv4 address it is. Throws a TypeError for text that is not an address.
 */
export function checkAddress(list: AllowList, text: string): AddressVerdict {
  const parsed = parseAddress(text);
  if (parsed === undefined) throw new TypeError(`not an IP address: "${text}"`);
  const address = parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress() ? (parsed as ipaddr.IPv6).toIPv4Address() : parsed;
  const shown = address.toString();
  const blocked = blockedRange(address);
  if (blocked === undefined || allowsAddress(list, address)) return { allowed: true, address: shown };
  return { allowed: false, address: shown, range: blocked };
}

/**
 * Why a connection was refused, with what would allow it:
 * `http step refused to connect to 127.0.0.1 (from "localhost"): loopback addresses are blocked;
 * allow them with TASKSTREAM_HTTP_ALLOW (e.g. 127.0.0.0/8)`.
 */
export function refusalMessage(host: string, verdict: { address: string; range: BlockedRange }): string {
  const from = parseAddress(host) === undefined ? ` (from "${host}")` : '';
  return `http step refused to connect to ${verdict.address}${from}: ${verdict.range.category} addresses are blocked; allow them with TASKSTREAM_HTTP_ALLOW (e.g. ${verdict.range.cidr})`;
}
