import { NatsConnectionImpl, setTransportFactory, type NatsConnection } from '@nats-io/transport-node';
import { NodeTransport, nodeResolveHost } from '@nats-io/transport-node/lib/node_transport.js';
import type { NodeConnectionOptions } from '@nats-io/transport-node/lib/connect.js';

/**
 * NATS.js writes its outgoing buffer to the socket once per microtask checkpoint, so a service
 * handling many messages at once (acknowledgements, publishes, requests from different
 * continuations) makes many small writes. On loopback each write also runs the receiving side's
 * network path, which made socket writes 12-19% of every service's time. This transport holds
 * what the client sends until the event loop turns (or MAX_HELD_BYTES are held) and writes it as
 * one frame, in the client's order. A close writes what is held first; what is held when the
 * connection fails is lost, as what was written to a failing socket was before.
 */
export class CoalescingTransport extends NodeTransport {
  private held: Uint8Array[] = [];
  private heldBytes = 0;

  override send(frame: Uint8Array): void {
    if (this.held.push(frame) === 1) setImmediate(() => this.sendHeld());
    this.heldBytes += frame.length;
    // A burst (a large flow's first view write, a rebuild) goes out as it grows, not as one copy at the end of the turn.
    if (this.heldBytes >= MAX_HELD_BYTES) this.sendHeld();
  }

  override close(err?: Error): Promise<void> {
    this.sendHeld();
    return super.close(err);
  }

  override disconnect(): void {
    this.sendHeld();
    super.disconnect();
  }

  private sendHeld(): void {
    const held = this.held;
    if (held.length === 0) return;
    this.held = [];
    this.heldBytes = 0;
    super.send(held.length === 1 ? held[0]! : concat(held));
  }
}

/** Bytes held at most before they are written without waiting for the turn to end. */
export const MAX_HELD_BYTES = 64 * 1024;

function concat(frames: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const frame of frames) length += frame.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const frame of frames) {
    out.set(frame, at);
    at += frame.length;
  }
  return out;
}

/** transport-node's `connect`, with the coalescing transport (for this and every later connection of the process). */
export function connectCoalescing(options: NodeConnectionOptions): Promise<NatsConnection> {
  setTransportFactory({ factory: () => new CoalescingTransport(), dnsResolveFn: nodeResolveHost });
  return NatsConnectionImpl.connect(options);
}
