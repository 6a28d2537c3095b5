import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { unsentBytes, watchForStall } from '../src/stall.js';

describe('watchForStall: a streaming client that reads nothing of what waits for it', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('is dropped once the bytes waiting for it have not gone down for the limit', () => {
    const drop = vi.fn();
    watchForStall(() => 4096, 10_000, drop);
    vi.advanceTimersByTime(9_000);
    expect(drop).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1_000);
    expect(drop).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(60_000);
    expect(drop).toHaveBeenCalledTimes(1);
  });

  it('is kept while it reads, however slowly, and while nothing waits for it', () => {
    let waiting = 1_000_000;
    const drop = vi.fn();
    watchForStall(() => waiting, 10_000, drop);
    for (let i = 0; i < 100; i++) {
      vi.advanceTimersByTime(9_000);
      waiting -= 1;
    }
    waiting = 0;
    vi.advanceTimersByTime(60_000);
    expect(drop).not.toHaveBeenCalled();
  });

  it('counts more bytes written while it reads nothing as no progress', () => {
    let waiting = 100;
    const drop = vi.fn();
    watchForStall(() => waiting, 10_000, drop);
    for (let i = 0; i < 10; i++) {
      vi.advanceTimersByTime(1_000);
      waiting += 8;
    }
    expect(drop).toHaveBeenCalledTimes(1);
  });

  it('starts counting again when it reads after a pause', () => {
    let waiting = 5_000;
    const drop = vi.fn();
    watchForStall(() => waiting, 10_000, drop);
    vi.advanceTimersByTime(8_000);
    waiting = 4_000;
    // Seen at the next check (at 9 s): the limit runs from there.
    vi.advanceTimersByTime(9_000);
    expect(drop).not.toHaveBeenCalled();
    vi.advanceTimersByTime(2_000);
    expect(drop).toHaveBeenCalledTimes(1);
  });

  it("does not count a pause of the gateway's own against the client", () => {
    const drop = vi.fn();
    watchForStall(() => 4096, 10_000, drop);
    vi.advanceTimersByTime(5_000);
    // The event loop was blocked for 30 s: the checks due meanwhile all come late.
    vi.setSystemTime(Date.now() + 30_000);
    vi.advanceTimersByTime(1_000);
    expect(drop).not.toHaveBeenCalled();
    vi.advanceTimersByTime(4_000);
    expect(drop).toHaveBeenCalledTimes(1);
  });

  it('never drops a client once stopped', () => {
    const drop = vi.fn();
    const stop = watchForStall(() => 4096, 10_000, drop);
    vi.advanceTimersByTime(5_000);
    stop();
    vi.advanceTimersByTime(60_000);
    expect(drop).not.toHaveBeenCalled();
  });
});

describe('unsentBytes', () => {
  it('goes down as a slow client reads part of one large write, where writableLength does not', async () => {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const accepted = once(server, 'connection') as Promise<[Socket]>;
    const client = connect((server.address() as { port: number }).port, '127.0.0.1');
    client.pause();
    const [socket] = await accepted;
    try {
      // More than loopback's socket buffers hold for a client reading nothing.
      socket.write(Buffer.alloc(32 * 1024 * 1024, 120));
      await new Promise((r) => setTimeout(r, 200));
      const before = unsentBytes(socket);
      const writable = socket.writableLength;
      expect(before).toBeGreaterThan(0);
      let read = 0;
      while (read < 8 * 1024 * 1024) {
        const chunk = client.read() as Buffer | null;
        if (chunk === null) await new Promise((r) => setTimeout(r, 10));
        else read += chunk.length;
      }
      await new Promise((r) => setTimeout(r, 200));
      expect(unsentBytes(socket)).toBeLessThan(before);
      expect(socket.writableLength).toBe(writable);
    } finally {
      client.destroy();
      socket.destroy();
      server.close();
    }
  });

  it('is 0 without a socket', () => {
    expect(unsentBytes(undefined)).toBe(0);
  });
});
