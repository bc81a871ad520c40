/**
 * A wire tap: a TCP proxy on loopback between participants and the coordinator that keeps every byte each
 * participant sends (and receives), so a test can prove what did and did not leave a data owner's domain.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export class WireTap {
  /** Bytes from participants towards the coordinator, per connection. */
  readonly upstream: Buffer[][] = [];
  readonly downstream: Buffer[][] = [];
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly address: string,
  ) {}

  static async start(target: string): Promise<WireTap> {
    const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
    let tap: WireTap | undefined;
    const server = createServer((client) => {
      const up: Buffer[] = [];
      const down: Buffer[] = [];
      tap!.upstream.push(up);
      tap!.downstream.push(down);
      const upstreamSocket = connect(port, host);
      for (const s of [client, upstreamSocket]) {
        tap!.sockets.add(s);
        s.on('close', () => tap!.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.on('data', (d) => {
        up.push(Buffer.from(d));
        upstreamSocket.write(d);
      });
      upstreamSocket.on('data', (d) => {
        down.push(Buffer.from(d));
        client.write(d);
      });
      client.on('close', () => upstreamSocket.destroy());
      upstreamSocket.on('close', () => client.destroy());
    });
    const address = await new Promise<string>((resolve) => server.listen(0, '127.0.0.1', () => resolve(`127.0.0.1:${(server.address() as { port: number }).port}`)));
    tap = new WireTap(server, address);
    return tap;
  }

  /** Everything participants sent, as one buffer. */
  sent(): Buffer {
    return Buffer.concat(this.upstream.flat());
  }

  received(): Buffer {
    return Buffer.concat(this.downstream.flat());
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** The needles (each at least 4 bytes) that occur anywhere in the haystack, found in one pass. */
export function occurrences(haystack: Buffer, needles: readonly Buffer[]): Buffer[] {
  const byPrefix = new Map<number, Buffer[]>();
  for (const n of needles) {
    if (n.length < 4) throw new RangeError('needles must be at least 4 bytes');
    const k = n.readUInt32LE(0);
    byPrefix.set(k, [...(byPrefix.get(k) ?? []), n]);
  }
  const found = new Set<Buffer>();
  for (let i = 0; i + 4 <= haystack.length; i++) {
    const candidates = byPrefix.get(haystack.readUInt32LE(i));
    if (!candidates) continue;
    for (const n of candidates) if (i + n.length <= haystack.length && haystack.compare(n, 0, n.length, i, i + n.length) === 0) found.add(n);
  }
  return [...found];
}
