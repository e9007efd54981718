/**
 * A programmable NTP server on the loopback interface, for tests (Node only).
 * It speaks real NTPv4/v3 server mode, so any client (ours, chronyd, ntpdate)
 * can use it, and its clock, delays and misbehaviour are under the test's control.
 *
 * @module
 */
import dgram from 'node:dgram';
import { isIP } from 'node:net';
import { InvalidArgumentError } from '../../errors.js';
import {
  FaultPlan,
  applyServerBehaviour,
  buildNtpReplies,
  finite,
  mutatedDatagrams,
  nonNegative,
  serverBehaviour,
  takeRequest,
  type NtpServerBehaviour,
  type NtpServerFault,
} from '../ntp-reply.js';

export type { NtpServerFault, NtpKissCode, NtpServerBehaviour } from '../ntp-reply.js';

/**
 * Options of {@link createNtpServer}.
 *
 * @example
 * ```ts
 * const server = await createNtpServer({ offsetMs: 250, driftPpm: 50, requestDelayMs: 2, responseDelayMs: 8 });
 * const x = await queryNtp({ host: server.host, port: server.port });
 * x.systemOffsetMs; // ≈ 250 (the server runs 250 ms ahead of this host), within x.errorMs
 * x.delayMs;        // ≥ 10: the 2 + 8 ms of one-way delays, plus the loopback's own
 * await server.close();
 * ```
 */
export interface NtpServerOptions extends NtpServerBehaviour {
  /**
   * Address to bind.
   *
   * @defaultValue `'127.0.0.1'`
   */
  readonly host?: string;
  /**
   * Port to bind; 0 picks an ephemeral port (see `port`).
   *
   * @defaultValue `0`
   */
  readonly port?: number;
  /**
   * Server clock minus `performance.timeOrigin + performance.now()` at start (ms).
   *
   * @defaultValue `0`
   */
  readonly offsetMs?: number;
  /**
   * Server clock rate error against `performance.now()` (ppm).
   *
   * @defaultValue `0`
   */
  readonly driftPpm?: number;
  /**
   * The `performance.now()` reading from which drift accumulates. Give several servers the same
   * value (and offset and drift) and they share one clock exactly.
   *
   * @defaultValue the moment of creation
   */
  readonly driftSinceMs?: number;
  /**
   * Random numbers for jitter.
   *
   * @defaultValue `Math.random`
   */
  readonly random?: () => number;
  /**
   * A leap second at `atMs` (epoch ms on the server's leap-free timescale, the midnight that ends a
   * UTC month). `'step'`: the server announces it (leap indicator 1 or 2) until then and steps its
   * clock, back 1 s at `atMs` for an insert or forward 1 s at `atMs − 1000` for a delete, as ntpd
   * and chronyd do by default. `'smear'`: no announcement; the second is spread linearly over
   * `smearWindowMs` centred on `atMs`, as Google's and AWS's servers do. `trueNow()` and `trueAt()`
   * include it.
   *
   * @defaultValue none: no leap second
   */
  readonly leapSecond?: {
    readonly atMs: number;
    readonly direction: 'insert' | 'delete';
    readonly mode: 'step' | 'smear';
    /**
     * How long the smear lasts (ms), centred on `atMs`; the default runs noon to noon.
     *
     * @defaultValue `86_400_000` (24 h)
     */
    readonly smearWindowMs?: number;
  };
}

/**
 * A running loopback NTP server.
 *
 * @example
 * ```ts
 * const server = await createNtpServer({ offsetMs: 100 });
 * const x = await queryNtp({ host: server.host, port: server.port });
 * const mono = performance.now();
 * Math.abs(mono + x.offsetMs - server.trueAt(mono)) <= x.errorMs; // true
 * await server.close();
 * ```
 */
export interface LoopbackNtpServer {
  /** The bound address. */
  readonly host: string;
  /** The bound port. */
  readonly port: number;
  /** `host:port`, ready for `ntpSource({ servers: [server.address] })`. */
  readonly address: string;
  /** Requests received and datagrams sent so far. */
  readonly stats: { readonly requests: number; readonly replies: number };
  /** The server clock now (epoch ms): the truth a client's interval must contain. */
  trueNow(): number;
  /** The server clock at a given `performance.now()` reading (epoch ms). */
  trueAt(performanceNowMs: number): number;
  /**
   * Steps the server clock by `ms` (either sign).
   * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When `ms` is not finite.
   */
  step(ms: number): void;
  /**
   * Sets the server clock to `performance.timeOrigin + performance.now() + ms`.
   * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When `ms` is not finite.
   */
  setOffset(ms: number): void;
  /**
   * Changes the rate error from now on, keeping the clock continuous.
   * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When `ppm` is not finite.
   */
  setDriftPpm(ppm: number): void;
  /**
   * Changes delays, header fields, kiss code or the reply mutator.
   * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} Naming a setting that is out of range.
   */
  configure(behaviour: NtpServerBehaviour): void;
  /**
   * Misbehaves on the next `count` requests (default: until changed); with
   * `thenValid` the correct reply follows the faulty one. `undefined` stops.
   * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When `count` is not positive.
   */
  setFault(
    fault: NtpServerFault | undefined,
    options?: { readonly count?: number; readonly thenValid?: boolean },
  ): void;
  /** Stops answering and frees the sockets. Idempotent. */
  close(): Promise<void>;
  /** Same as `close()`, for `await using server = await createNtpServer()`. */
  [Symbol.asyncDispose](): Promise<void>;
}

function bind(socket: dgram.Socket, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    socket.once('error', onError);
    socket.bind(port, host, () => {
      socket.off('error', onError);
      resolve();
    });
  });
}

/**
 * Starts a loopback NTP server whose clock is
 * `performance.timeOrigin + performance.now() + offset + drift·elapsed + steps`,
 * so a test in the same process knows the exact truth at any `performance.now()`
 * reading. A request's one-way delay is applied before T2 is stamped and the
 * reply's after T3 is stamped, so the asymmetry is real.
 *
 * @param options - Clock, delays, header fields, kiss code, faults; see {@link NtpServerOptions}.
 * @returns The running server.
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When an option is out of range.
 *
 * @example
 * ```ts
 * const server = await createNtpServer({ offsetMs: -40, requestDelayMs: 1, responseDelayMs: 10 });
 * const source = ntpSource({ servers: [server.address], pollIntervalMs: 1000, sampleSpacingMs: 0 });
 * // … later
 * await server.close();
 * ```
 */
export async function createNtpServer(options: NtpServerOptions = {}): Promise<LoopbackNtpServer> {
  const host = options.host ?? '127.0.0.1';
  const family = isIP(host) === 6 ? 'udp6' : 'udp4';
  if (isIP(host) === 0) throw new InvalidArgumentError('host', host, 'an IP address');
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new InvalidArgumentError('port', port, 'an integer in [0, 65535]');
  }
  const random = options.random ?? Math.random;
  const behaviour = serverBehaviour(options);

  // The clock: base + offset + drift·(p − driftOrigin), p = performance.now().
  const base = performance.timeOrigin;
  let offset = finite('offsetMs', options.offsetMs ?? 0);
  let drift = finite('driftPpm', options.driftPpm ?? 0) * 1e-6;
  let driftOrigin = finite('driftSinceMs', options.driftSinceMs ?? performance.now());
  const leapFreeAt = (p: number): number => base + p + offset + drift * (p - driftOrigin);
  const leapSecond = options.leapSecond;
  if (leapSecond !== undefined) {
    finite('leapSecond.atMs', leapSecond.atMs);
    nonNegative('leapSecond.smearWindowMs', leapSecond.smearWindowMs ?? 0);
  }
  const sign = leapSecond?.direction === 'delete' ? -1 : 1;
  const smearWindowMs = leapSecond?.smearWindowMs ?? 24 * 3600 * 1000;
  /** What the leap has taken off the leap-free reading `t` (ms; negative for a delete). */
  const leapCorrection = (t: number): number => {
    if (leapSecond === undefined) return 0;
    if (leapSecond.mode === 'smear') {
      const progress = (t - (leapSecond.atMs - smearWindowMs / 2)) / smearWindowMs;
      return sign * 1000 * Math.min(1, Math.max(0, progress));
    }
    const stepAt = sign > 0 ? leapSecond.atMs : leapSecond.atMs - 1000;
    return t >= stepAt ? sign * 1000 : 0;
  };
  const trueAt = (p: number): number => {
    const t = leapFreeAt(p);
    return t - leapCorrection(t);
  };
  /** The leap indicator a stepping server sends at reading `t`: announced until the step. */
  const leapIndicator = (t: number, configured: number): number => {
    if (leapSecond === undefined || leapSecond.mode === 'smear') return configured;
    const stepAt = sign > 0 ? leapSecond.atMs : leapSecond.atMs - 1000;
    return t < stepAt ? (sign > 0 ? 1 : 2) : configured;
  };

  const faults = new FaultPlan();
  let requests = 0;
  let replies = 0;
  let closed = false;
  const timers = new Set<ReturnType<typeof setTimeout>>();

  const socket = dgram.createSocket(family);
  const other = dgram.createSocket(family);
  // Send errors (e.g. the client went away) must not crash the test process.
  socket.on('error', () => undefined);
  other.on('error', () => undefined);
  await bind(socket, port, host);
  await bind(other, 0, host);
  const bound = socket.address().port;

  // Node's timers count whole ms of a cached loop time, so setTimeout alone would
  // make delays up to ~1 ms short or long, and unevenly so between the two
  // directions. Sleep with a timer for the bulk, then finish on setImmediate polls.
  const later = (ms: number, fn: () => void): void => {
    if (ms <= 0) {
      fn();
      return;
    }
    const due = performance.now() + ms;
    const finish = (): void => {
      if (closed) return;
      if (performance.now() >= due) fn();
      else setImmediate(finish);
    };
    const coarse = ms - 2;
    if (coarse <= 0) {
      setImmediate(finish);
      return;
    }
    const timer = setTimeout(() => {
      timers.delete(timer);
      finish();
    }, coarse);
    timers.add(timer);
  };

  const send = (from: dgram.Socket, bytes: Uint8Array, rinfo: dgram.RemoteInfo): void => {
    if (closed) return;
    replies++;
    from.send(bytes, rinfo.port, rinfo.address, () => undefined);
  };

  socket.on('message', (msg, rinfo) => {
    if (closed) return;
    requests++;
    const taken = takeRequest(msg, faults);
    if (taken === undefined) return;
    const { request, fault: current, thenValid: alsoValid } = taken;
    const requestBytes = Uint8Array.from(msg);
    const b = { ...behaviour };
    const jitter = (): number => (b.jitterMs > 0 ? random() * b.jitterMs : 0);
    later(b.requestDelayMs + jitter(), () => {
      const received = performance.now();
      const t2 = trueAt(received);
      const leap = leapIndicator(leapFreeAt(received), b.leap);
      // T3 as late as possible before the reply leaves (then the response delay).
      const t3 = trueAt(performance.now());
      const outgoing = buildNtpReplies({
        request,
        t2,
        t3,
        leap,
        behaviour: b,
        fault: current,
        thenValid: alsoValid,
      });
      later(b.responseDelayMs + jitter(), () => {
        for (const { bytes, fromOtherPort } of outgoing) {
          const sender = fromOtherPort ? other : socket;
          for (const datagram of mutatedDatagrams(b, bytes, requestBytes)) {
            send(sender, datagram, rinfo);
          }
        }
      });
    });
  });

  const address = family === 'udp6' ? `[${host}]:${bound}` : `${host}:${bound}`;
  const server: LoopbackNtpServer = {
    host,
    port: bound,
    address,
    get stats() {
      return { requests, replies };
    },
    trueNow: () => trueAt(performance.now()),
    trueAt,
    step(ms) {
      offset += finite('ms', ms);
    },
    setOffset(ms) {
      const p = performance.now();
      offset = finite('ms', ms) - drift * (p - driftOrigin);
    },
    setDriftPpm(ppm) {
      const p = performance.now();
      const next = finite('ppm', ppm) * 1e-6;
      offset += drift * (p - driftOrigin);
      driftOrigin = p;
      drift = next;
    },
    configure(b) {
      applyServerBehaviour(behaviour, b);
    },
    setFault(next, faultOptions = {}) {
      faults.set(next, faultOptions);
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      await Promise.all(
        [socket, other].map((s) => new Promise<void>((resolve) => s.close(() => resolve()))),
      );
    },
    [Symbol.asyncDispose](): Promise<void> {
      return server.close();
    },
  };
  return server;
}
