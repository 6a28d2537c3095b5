import dgram from 'node:dgram';
import dns, { lookup as namedLookup } from 'node:dns';
import { connect, createServer, type NetConnectOpts, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { confineToLoopback, isLoopbackTarget } from '../src/loopback-only.js';

describe('confining a test to loopback', () => {
  let server: Server;
  let port: number;
  let restore: () => void;

  beforeAll(async () => {
    server = createServer((socket) => socket.end('hello'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
    restore = confineToLoopback();
  });

  afterAll(async () => {
    restore();
    await new Promise((resolve) => server.close(resolve));
  });

  /** What the server sends, read through `net.connect`; rejects when the connect is refused. */
  const read = (options: NetConnectOpts) =>
    new Promise<string>((resolve, reject) => {
      const socket = connect(options);
      let data = '';
      socket.on('data', (chunk) => (data += chunk));
      socket.on('end', () => resolve(data));
      socket.on('error', reject);
    });

  /** A resolver that answers `address` for any name, in either of the forms Node asks for. */
  const answering = (address: string) =>
    ((_name: string, options: { all?: boolean }, callback: (e: null, a: unknown, f?: number) => void) => (options?.all ? callback(null, [{ address, family: 4 }]) : callback(null, address, 4))) as never;

  it('tells loopback targets from the rest, by string alone', () => {
    for (const host of ['127.0.0.1', '127.9.8.7', '::1', '[::1]', '::ffff:127.0.0.1', 'localhost', undefined, '']) expect(isLoopbackTarget(host), String(host)).toBe(true);
    for (const host of ['0.0.0.0', '::', '10.0.0.1', '169.254.169.254', '::ffff:10.0.0.1', 'fe80::1', 'api.example']) expect(isLoopbackTarget(host), host).toBe(false);
  });

  it('lets loopback connections through, by address and by localhost', async () => {
    expect(await read({ host: '127.0.0.1', port })).toBe('hello');
    expect(await read({ host: 'localhost', port, family: 4 })).toBe('hello');
  });

  it("resolves nothing but localhost and address literals, and refuses a name whose own resolver answers beyond loopback", async () => {
    await expect(new Promise((resolve, reject) => dns.lookup('api.example', (error, address) => (error ? reject(error) : resolve(address))))).rejects.toThrow(/ENOTFOUND api\.example/);
    // A resolver answering an address that is not loopback is refused. 0.0.0.0 is one that, should
    // the guard be broken, still reaches only this machine (Linux connects it locally).
    await expect(read({ host: 'api.example', port, lookup: answering('0.0.0.0') })).rejects.toThrow(/api\.example resolved to 0\.0\.0\.0, refused before connecting/);
    await expect(read({ host: '0.0.0.0', port })).rejects.toThrow(/a connect to 0\.0\.0\.0 was refused before it was made/);
    // The same resolver answering loopback is let through.
    expect(await read({ host: 'api.example', port, lookup: answering('127.0.0.1') })).toBe('hello');
  });

  it('confines a lookup imported by name, and the promise form, as the module object\'s', async () => {
    // Modules that import { lookup } from node:dns (the http step does) must get the confined one.
    const { lookup: importedNow } = await import('node:dns');
    expect(importedNow).toBe(dns.lookup);
    expect(namedLookup).toBe(dns.lookup);
    await expect(dns.promises.lookup('api.example')).rejects.toThrow(/ENOTFOUND api\.example \(this test resolves nothing but localhost\)/);
    expect(await dns.promises.lookup('localhost')).toEqual({ address: '127.0.0.1', family: 4 });
  });

  it('sends no DNS query beyond localhost by any path, below the dns module too', async () => {
    // Each of these would ask the configured name server (not on loopback) were the guard broken.
    await expect(dns.promises.resolve4('api.example')).rejects.toThrow(/a DNS query \(queryA\) for api\.example was refused before any query was sent/);
    await expect(new dns.promises.Resolver().resolveTxt('api.example')).rejects.toThrow(/queryTxt\) for api\.example was refused/);
    await expect(dns.promises.reverse('127.0.0.1')).rejects.toThrow(/getHostByAddr\) for 127\.0\.0\.1 was refused/);
    await expect(dns.promises.lookupService('127.0.0.1', 22)).rejects.toThrow(/a reverse lookup of 127\.0\.0\.1 was refused/);
    // The system resolver itself, as a lookup that bypassed dns.lookup would reach it.
    const binding = (process as unknown as { binding(name: string): { getaddrinfo: (...args: unknown[]) => unknown } }).binding('cares_wrap');
    expect(() => binding.getaddrinfo({}, 'api.example', 0, 0, 0)).toThrow(/a lookup of api\.example was refused before any query was sent/);
  });

  it('sends UDP to loopback only', async () => {
    const receiver = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => receiver.bind(0, '127.0.0.1', resolve));
    const received = new Promise<string>((resolve) => receiver.once('message', (data) => resolve(String(data))));
    const sender = dgram.createSocket('udp4');
    try {
      sender.send('ping', receiver.address().port, '127.0.0.1');
      expect(await received).toBe('ping');
      // 0.0.0.0 is not loopback by address, yet reaches only this machine should the guard be broken.
      expect(() => sender.send('ping', receiver.address().port, '0.0.0.0')).toThrow(/a UDP datagram to 0\.0\.0\.0 was refused before it was sent/);
      expect(() => sender.connect(receiver.address().port, '0.0.0.0')).toThrow(/a UDP datagram to 0\.0\.0\.0 was refused/);
    } finally {
      sender.close();
      receiver.close();
    }
  });
});
