/**
 * A TCP proxy between a process and Redis, for the cluster's edge tests (in
 * the manner of toxiproxy): it delays, throttles (bytes/s, each way), cuts
 * connections (now, or once a reply has passed N bytes) and black-holes
 * (nothing crosses, the sockets stay open, as with a network partition;
 * healed, the bytes held cross in order, as TCP retransmits them — bytes
 * are never dropped from a live connection, which TCP cannot do either).
 *
 *   client ──► [upstream pump] ──► redis
 *   client ◄── [downstream pump] ◄─ redis     each pump: one chunk at a time, in order
 */
import { once } from 'node:events';
import { createConnection, createServer, type Server, type Socket } from 'node:net';

/** What the link does to the bytes that cross it. */
export interface LinkFaults {
  /** Added to every chunk, each way (ms). */
  delayMs: number;
  /** Bytes per second each way, per connection; undefined: as fast as it goes. */
  bytesPerSecond: number | undefined;
  /** Nothing crosses (held until healed), sockets stay open. */
  blackhole: boolean;
}

const healthy: LinkFaults = { delayMs: 0, bytesPerSecond: undefined, blackhole: false };
/** A throttled pump writes a slice this often (ms). */
const sliceMs = 20;
/** Unsent bytes above which a pump pauses its source. */
const highWater = 1 << 20;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** One direction of one connection: chunks leave in order, faults applied as they leave. */
class Pump {
  readonly #from: Socket;
  readonly #to: Socket;
  readonly #proxy: TcpProxy;
  readonly #queue: Array<{ data: Buffer; at: number }> = [];
  #queued = 0;
  #running = false;
  /** Bytes sent since the proxy's last `cutAfter`. */
  sent = 0;

  constructor(from: Socket, to: Socket, proxy: TcpProxy) {
    this.#from = from;
    this.#to = to;
    this.#proxy = proxy;
    from.on('data', (data: Buffer) => {
      this.#queue.push({ data, at: performance.now() });
      this.#queued += data.length;
      if (this.#queued > highWater) from.pause();
      void this.#run();
    });
  }

  async #run(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      await this.#pump();
    } catch {
      // The other side went away mid-write: the link ends (its sockets' error handlers close both).
    }
    this.#running = false;
  }

  async #pump(): Promise<void> {
    while (this.#queue.length > 0 && !this.#to.destroyed) {
      const { data, at } = this.#queue.shift()!;
      const faults = this.#proxy.faults;
      const wait = at + faults.delayMs - performance.now();
      if (wait > 0) await sleep(wait);
      while (this.#proxy.faults.blackhole && !this.#to.destroyed) await sleep(sliceMs);
      const rate = this.#proxy.faults.bytesPerSecond;
      const slice = rate === undefined ? data.length : Math.max(1, Math.floor((rate * sliceMs) / 1000));
      for (let offset = 0; offset < data.length && !this.#to.destroyed; offset += slice) {
        const piece = data.subarray(offset, offset + slice);
        if (!this.#to.write(piece)) await Promise.race([once(this.#to, 'drain'), once(this.#to, 'close')]);
        this.sent += piece.length;
        this.#proxy.onSent(this);
        if (rate !== undefined && offset + slice < data.length) await sleep(sliceMs);
      }
      if (rate !== undefined) await sleep(sliceMs);
      this.#drained(data.length);
    }
  }

  #drained(bytes: number): void {
    this.#queued -= bytes;
    if (this.#queued <= highWater) this.#from.resume();
  }
}

interface Link {
  readonly client: Socket;
  readonly server: Socket;
  readonly down: Pump;
}

export class TcpProxy {
  readonly #server: Server;
  readonly #target: { host: string; port: number };
  readonly #links = new Set<Link>();
  /** Cut the connection whose downstream passes this many bytes (once). */
  #cutAfter: number | undefined;
  faults: LinkFaults = { ...healthy };
  /** Connections cut so far (by `cut` or `cutAfter`). */
  cuts = 0;

  private constructor(server: Server, target: { host: string; port: number }) {
    this.#server = server;
    this.#target = target;
    server.on('connection', (client) => this.#accept(client));
  }

  /** Listens on a free loopback port, forwarding to `target`. */
  static async start(target: { host?: string; port: number }): Promise<TcpProxy> {
    const server = createServer();
    const proxy = new TcpProxy(server, { host: target.host ?? '127.0.0.1', port: target.port });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return proxy;
  }

  get port(): number {
    return (this.#server.address() as { port: number }).port;
  }

  /** redis:// URL through the proxy. */
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Open connections now. */
  get connections(): number {
    return this.#links.size;
  }

  /** Changes the faults (for chunks that leave from now on). */
  set(faults: Partial<LinkFaults>): void {
    this.faults = { ...this.faults, ...faults };
  }

  /** No fault from now on. */
  heal(): void {
    this.faults = { ...healthy };
    this.#cutAfter = undefined;
  }

  /** Ends every connection now (the client sees a reset; it may connect again). */
  cut(): void {
    for (const link of [...this.#links]) this.#cutLink(link);
  }

  /** Cuts, once, the first connection that sends `bytes` more toward the client from now on (a reply cut mid-way). */
  cutAfter(bytes: number): void {
    for (const link of this.#links) link.down.sent = 0;
    this.#cutAfter = bytes;
  }

  onSent(pump: Pump): void {
    if (this.#cutAfter === undefined || pump.sent < this.#cutAfter) return;
    const link = [...this.#links].find((candidate) => candidate.down === pump);
    if (link === undefined) return;
    this.#cutAfter = undefined;
    this.#cutLink(link);
  }

  async close(): Promise<void> {
    this.cut();
    this.#server.close();
    await once(this.#server, 'close');
  }

  #accept(client: Socket): void {
    const server = createConnection(this.#target);
    const link: Link = { client, server, down: new Pump(server, client, this) };
    new Pump(client, server, this);
    this.#links.add(link);
    const end = (): void => {
      this.#links.delete(link);
      client.destroy();
      server.destroy();
    };
    for (const socket of [client, server]) {
      socket.on('error', end);
      socket.on('close', end);
    }
  }

  #cutLink(link: Link): void {
    this.cuts++;
    this.#links.delete(link);
    link.client.resetAndDestroy();
    link.server.destroy();
  }
}
