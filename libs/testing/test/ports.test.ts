import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { freePort } from '../src/ports.js';

describe('freePort, under vitest', () => {
  it('hands out distinct ports below the ephemeral range, each bindable, and skips one that is taken', async () => {
    const ephemeralStart = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    const ports: number[] = [];
    for (let i = 0; i < 20; i++) ports.push(await freePort());
    expect(new Set(ports).size).toBe(20);
    for (const port of ports) expect(port).toBeLessThan(ephemeralStart);

    // Taken by someone else: the next port handed out is another one.
    const expected = ports.at(-1)! + 1;
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(expected, '127.0.0.1', resolve));
    try {
      const next = await freePort();
      expect(next).not.toBe(expected);
      await new Promise<void>((resolve, reject) => {
        const probe = createServer().once('error', reject);
        probe.listen(next, '127.0.0.1', () => probe.close(() => resolve()));
      });
    } finally {
      await new Promise<void>((resolve) => holder.close(() => resolve()));
    }
  });
});
