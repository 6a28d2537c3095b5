import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { freePort, testPortBlock } from '../src/ports.js';

const listen = (port: number) =>
  new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
    const server = createServer().once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
const close = (server: ReturnType<typeof createServer>) => new Promise<void>((resolve) => server.close(() => resolve()));

describe('freePort, under vitest', () => {
  it('hands out distinct ports, each bindable, from a block below the ephemeral range where there is room for one', async () => {
    const ports: number[] = [];
    for (let i = 0; i < 20; i++) ports.push(await freePort());
    expect(new Set(ports).size).toBe(20);
    for (const port of ports) await close(await listen(port));
    const ephemeralStart = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (ephemeralStart >= 20_400) {
      expect(testPortBlock).toBeDefined();
      const { first, size } = testPortBlock!;
      expect(first + size).toBeLessThanOrEqual(ephemeralStart);
      for (const port of ports) expect(port >= first && port < first + size, `${port} in ${first}-${first + size - 1}`).toBe(true);
    }
  });

  // Outside vitest's workers, or with no room below the ephemeral range, the kernel chooses: nothing to skip.
  it.skipIf(testPortBlock === undefined)('skips a port of its block that something else holds', async () => {
    const block = testPortBlock!;
    const last = await freePort();
    const expected = block.first + ((last - block.first + 1) % block.size);
    const holder = await listen(expected).catch(() => undefined);
    try {
      expect(await freePort()).not.toBe(expected);
    } finally {
      if (holder) await close(holder);
    }
  });
});
