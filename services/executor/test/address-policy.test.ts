import { confineToLoopback } from '@taskstream/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allowsHost, checkAddress, InvalidAllowEntryError, LOCAL_HTTP_ALLOW, parseAllowList, parseAllowSetting, refusalMessage } from '../src/steps/address-policy.js';

// Pure classification: addresses here are strings only, nothing connects anywhere.
// Should the code under test ever try to reach one of them, the connect or lookup is refused before anything leaves this machine.
let restoreNetwork: () => void;
beforeAll(() => {
  restoreNetwork = confineToLoopback();
});
afterAll(() => restoreNetwork());
const none = parseAllowList([]);
const verdict = (address: string, allow: readonly string[] = []) => checkAddress(parseAllowList(allow), address);
const category = (address: string) => {
  const v = checkAddress(none, address);
  return v.allowed ? 'public' : v.range.category;
};

describe('address classification', () => {
  it.each([
    ['0.0.0.0', 'unspecified', '0.0.0.0/8'],
    ['0.1.2.3', 'unspecified', '0.0.0.0/8'],
    ['10.0.0.1', 'private', '10.0.0.0/8'],
    ['10.255.255.255', 'private', '10.0.0.0/8'],
    ['100.64.0.1', 'carrier-grade NAT', '100.64.0.0/10'],
    ['100.127.255.255', 'carrier-grade NAT', '100.64.0.0/10'],
    ['127.0.0.1', 'loopback', '127.0.0.0/8'],
    ['127.255.255.254', 'loopback', '127.0.0.0/8'],
    ['169.254.169.254', 'link-local', '169.254.0.0/16'],
    ['172.16.0.1', 'private', '172.16.0.0/12'],
    ['172.31.255.255', 'private', '172.16.0.0/12'],
    ['192.0.0.8', 'reserved', '192.0.0.0/24'],
    ['192.0.2.1', 'documentation', '192.0.2.0/24'],
    ['192.168.1.1', 'private', '192.168.0.0/16'],
    ['198.18.0.1', 'benchmarking', '198.18.0.0/15'],
    ['198.19.255.255', 'benchmarking', '198.18.0.0/15'],
    ['198.51.100.7', 'documentation', '198.51.100.0/24'],
    ['203.0.113.9', 'documentation', '203.0.113.0/24'],
    ['224.0.0.1', 'multicast', '224.0.0.0/4'],
    ['239.255.255.250', 'multicast', '224.0.0.0/4'],
    ['240.0.0.1', 'reserved', '240.0.0.0/4'],
    ['254.1.2.3', 'reserved', '240.0.0.0/4'],
    ['255.255.255.255', 'broadcast', '255.255.255.255/32'],
    ['::', 'unspecified', '::/128'],
    ['::1', 'loopback', '::1/128'],
    ['fe80::1', 'link-local', 'fe80::/10'],
    ['fe80::1%eth0', 'link-local', 'fe80::/10'],
    ['febf:ffff::1', 'link-local', 'fe80::/10'],
    ['fec0::1', 'site-local', 'fec0::/10'],
    ['fc00::1', 'unique-local', 'fc00::/7'],
    ['fd12:3456::1', 'unique-local', 'fc00::/7'],
    ['ff02::1', 'multicast', 'ff00::/8'],
    ['2001:db8::1', 'documentation', '2001:db8::/32'],
    ['3fff::1', 'documentation', '3fff::/20'],
    ['2001:2::1', 'benchmarking', '2001:2::/48'],
    ['100::1', 'reserved', '100::/64'],
    ['64:ff9b:1::a00:1', 'reserved', '64:ff9b:1::/48'],
  ])('blocks %s as %s (%s)', (address, expected, cidr) => {
    expect(checkAddress(none, address)).toMatchObject({ allowed: false, range: { category: expected, cidr } });
  });

  it.each(['1.1.1.1', '11.0.0.1', '100.63.255.255', '100.128.0.1', '126.255.255.255', '128.0.0.1', '169.253.255.255', '172.15.255.255', '172.32.0.1', '192.0.1.1', '192.169.0.1', '198.17.255.255', '198.20.0.1', '223.255.255.255', '2606:4700::1111', '2a00:1450::1'])(
    'lets public %s through',
    (address) => {
      expect(checkAddress(none, address)).toEqual({ allowed: true, address });
    },
  );

  it('reads every spelling of an IPv4 address, and names it in dotted form', () => {
    for (const spelling of ['2130706433', '0x7f000001', '0177.0.0.1', '127.1', '0x7f.1', '017700000001', '127.0.0.1.']) {
      expect(checkAddress(none, spelling), spelling).toMatchObject({ allowed: false, address: '127.0.0.1', range: { category: 'loopback' } });
    }
    expect(category('0')).toBe('unspecified');
    expect(checkAddress(none, '2852039166')).toMatchObject({ address: '169.254.169.254', range: { category: 'link-local' } });
  });

  it('reads the spellings a URL canonicalises the same way (the http step sees the URL host)', () => {
    for (const spelling of ['2130706433', '0x7f000001', '0177.0.0.1', '127.1', '[::ffff:127.0.0.1]', '[::ffff:7f00:1]', '[0:0:0:0:0:ffff:7f00:1]']) {
      const host = new URL(`http://${spelling}:8080/`).hostname;
      expect(checkAddress(none, host), `${spelling} -> ${host}`).toMatchObject({ allowed: false, address: '127.0.0.1', range: { category: 'loopback', cidr: '127.0.0.0/8' } });
    }
    expect(checkAddress(none, new URL('http://[::1]/').hostname)).toMatchObject({ allowed: false, address: '::1', range: { category: 'loopback' } });
  });

  it('judges IPv4-mapped, -compatible, -translated, NAT64 and 6to4 addresses by the IPv4 address they carry', () => {
    expect(checkAddress(none, '::ffff:127.0.0.1')).toMatchObject({ allowed: false, address: '127.0.0.1', range: { category: 'loopback', cidr: '127.0.0.0/8' } });
    expect(checkAddress(none, '::ffff:7f00:1')).toMatchObject({ allowed: false, address: '127.0.0.1' });
    expect(checkAddress(none, '::ffff:169.254.169.254')).toMatchObject({ allowed: false, address: '169.254.169.254', range: { category: 'link-local' } });
    expect(checkAddress(none, '::ffff:10.0.0.1')).toMatchObject({ allowed: false, range: { category: 'private' } });
    expect(category('::127.0.0.1')).toBe('loopback');
    expect(category('::7f00:1')).toBe('loopback');
    expect(category('::ffff:0:127.0.0.1')).toBe('loopback');
    expect(category('64:ff9b::7f00:1')).toBe('loopback');
    expect(category('64:ff9b::169.254.169.254')).toBe('link-local');
    expect(category('64:ff9b::192.168.0.1')).toBe('private');
    expect(category('2002:7f00:1::1')).toBe('loopback');
    expect(category('2002:a9fe:a9fe::')).toBe('link-local');
    expect(category('2002:c0a8:101::1')).toBe('private');
    // A public address mapped, through NAT64 or 6to4 is that public address...
    expect(checkAddress(none, '::ffff:1.1.1.1')).toEqual({ allowed: true, address: '1.1.1.1' });
    expect(category('64:ff9b::101:101')).toBe('public');
    expect(category('2002:101:101::1')).toBe('public');
    // ...while the deprecated compatible and translated forms are reserved whatever they carry.
    expect(verdict('::1.1.1.1')).toMatchObject({ allowed: false, range: { category: 'reserved', cidr: '::/8' } });
    expect(verdict('::ffff:0:1.1.1.1')).toMatchObject({ allowed: false, range: { category: 'reserved', cidr: '::/8' } });
  });

  it('refuses text that is not an address rather than judging it', () => {
    expect(() => checkAddress(none, 'localhost')).toThrow(TypeError);
    expect(() => checkAddress(none, '')).toThrow(TypeError);
  });
});

describe('the allow-list', () => {
  it('lets through the ranges and addresses it names, and nothing else', () => {
    expect(verdict('127.0.0.2', ['127.0.0.2/32'])).toEqual({ allowed: true, address: '127.0.0.2' });
    expect(verdict('127.0.0.1', ['127.0.0.2/32'])).toMatchObject({ allowed: false, range: { category: 'loopback' } });
    expect(verdict('127.0.0.2', ['127.0.0.2'])).toMatchObject({ allowed: true });
    expect(verdict('10.1.2.3', ['10.0.0.0/8'])).toMatchObject({ allowed: true });
    expect(verdict('192.168.1.1', ['10.0.0.0/8'])).toMatchObject({ allowed: false });
    expect(verdict('fd00::5', ['fd00::/8'])).toMatchObject({ allowed: true });
    expect(verdict('fe80::5', ['fd00::/8'])).toMatchObject({ allowed: false });
  });

  it('LOCAL_HTTP_ALLOW allows loopback in every form, and nothing else private', () => {
    for (const address of ['127.0.0.1', '127.9.9.9', '::1', '::ffff:127.0.0.1', '::ffff:7f00:1', '2130706433', '64:ff9b::7f00:1']) {
      expect(verdict(address, LOCAL_HTTP_ALLOW), address).toMatchObject({ allowed: true });
    }
    for (const address of ['169.254.169.254', '10.0.0.1', '0.0.0.0', '::', 'fe80::1', '::ffff:169.254.169.254']) {
      expect(verdict(address, LOCAL_HTTP_ALLOW), address).toMatchObject({ allowed: false });
    }
    expect(Object.isFrozen(LOCAL_HTTP_ALLOW)).toBe(true);
  });

  it('keeps the address families apart: ::1 does not allow 127.0.0.1, nor 127.0.0.0/8 ::1', () => {
    expect(verdict('127.0.0.1', ['::1'])).toMatchObject({ allowed: false });
    expect(verdict('::1', ['127.0.0.0/8'])).toMatchObject({ allowed: false });
  });

  it('allows host names exactly, case and a final dot aside, and *.name for subdomains only', () => {
    const list = parseAllowList(['api.internal', '*.svc.local']);
    expect(allowsHost(list, 'api.internal')).toBe(true);
    expect(allowsHost(list, 'API.Internal.')).toBe(true);
    expect(allowsHost(list, 'x.api.internal')).toBe(false);
    expect(allowsHost(list, 'api.internal.evil')).toBe(false);
    expect(allowsHost(list, 'a.svc.local')).toBe(true);
    expect(allowsHost(list, 'a.b.svc.local')).toBe(true);
    expect(allowsHost(list, 'svc.local')).toBe(false);
    expect(allowsHost(list, 'evilsvc.local')).toBe(false);
    expect(allowsHost(parseAllowList(['127.0.0.0/8']), 'localhost')).toBe(false);
  });

  it.each([
    ['127.0.0.0/33', 'at most /32'],
    ['::1/129', 'at most /128'],
    ['10.0.0.0/8/1', 'CIDR'],
    ['10.0.0.0/x', 'CIDR'],
    ['300.1.1.1', 'host name'],
    ['10.1', 'four decimal numbers'],
    ['0x7f000001', 'four decimal numbers'],
    ['2130706433', 'four decimal numbers'],
    ['0177.0.0.1/8', 'four decimal numbers'],
    ['api internal', 'host name'],
    ['http://api.internal', 'host name'],
    ['-bad.example', 'host name'],
    ['*', 'host name'],
    ['*.', 'host name'],
  ])('refuses the entry %s, naming it', (entry, reason) => {
    expect(() => parseAllowList(['127.0.0.0/8', entry])).toThrow(InvalidAllowEntryError);
    expect(() => parseAllowList([entry])).toThrow(`invalid http allow-list entry "${entry}"`);
    expect(() => parseAllowList([entry])).toThrow(reason);
  });

  it('reads TASKSTREAM_HTTP_ALLOW: comma-separated, spaces and empty entries ignored, nothing when unset', () => {
    expect(parseAllowSetting(' 127.0.0.0/8, ::1 ,api.internal,, ')).toEqual(['127.0.0.0/8', '::1', 'api.internal']);
    expect(parseAllowSetting(undefined)).toEqual([]);
    expect(parseAllowSetting('')).toEqual([]);
    expect(() => parseAllowSetting('127.0.0.0/8,10.0.0.0/99')).toThrow('"10.0.0.0/99"');
  });
});

describe('the refusal', () => {
  it('names the address, the host it came from, the rule, and what would allow it', () => {
    const blocked = checkAddress(none, '127.0.0.1');
    if (blocked.allowed) throw new Error('expected a refusal');
    expect(refusalMessage('localhost', blocked)).toBe('http step refused to connect to 127.0.0.1 (from "localhost"): loopback addresses are blocked; allow them with TASKSTREAM_HTTP_ALLOW (e.g. 127.0.0.0/8)');
    expect(refusalMessage('127.0.0.1', blocked)).toBe('http step refused to connect to 127.0.0.1: loopback addresses are blocked; allow them with TASKSTREAM_HTTP_ALLOW (e.g. 127.0.0.0/8)');
    const metadata = checkAddress(none, '169.254.169.254');
    if (metadata.allowed) throw new Error('expected a refusal');
    expect(refusalMessage('metadata.example', metadata)).toContain('link-local addresses are blocked; allow them with TASKSTREAM_HTTP_ALLOW (e.g. 169.254.0.0/16)');
  });
});
