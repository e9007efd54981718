/**
 * A programmable NTP server on the loopback interface, for tests (Node only).
 * It speaks real NTPv4/v3 server mode, so any client (ours, chronyd, ntpdate)
 * can use it, and its clock, delays and misbehaviour are under the test's control.
 *
 * @module
 */
import type dgram from 'node:dgram';
import { InvalidArgumentError } from '../errors.js';
import { epochMsToNtp } from '../ntp/era.js';
import {
  NtpMode,
  decodeNtpPacket,
  encodeNtpPacket,
  referenceIdFromString,
  type NtpPacket,
} from '../ntp/packet.js';

/**
 * Misbehaviours the server can be told to show. Each makes a client refuse the
 * reply for one reason:
 * `'truncated'` (40 bytes), `'wrong-mode'` (mode 5), `'wrong-version'` (version 5),
 * `'zero-transmit'`, `'bad-origin'` (a random origin: a spoof), `'duplicate'` (the
 * reply sent twice), `'other-port'` (sent from another socket), `'negative-delay'`
 * (claims to have held the request 1 s), `'absurd-delay'` (transmit 1 s before
 * receive), `'drop'` (no reply).
 *
 * @example
 * ```ts
 * server.setFault('bad-origin', { thenValid: true }); // a spoof, then the real reply
 * ```
 */
export type NtpServerFault =
  | 'truncated'
  | 'wrong-mode'
  | 'wrong-version'
  | 'zero-transmit'
  | 'bad-origin'
  | 'duplicate'
  | 'other-port'
  | 'negative-delay'
  | 'absurd-delay'
  | 'drop';

/**
 * Kiss-o'-Death codes the server can answer with.
 *
 * @example
 * ```ts
 * const code: NtpKissCode = 'RATE';
 * ```
 */
export type NtpKissCode = 'DENY' | 'RSTR' | 'RATE';

/**
 * Settings that can change while the server runs ({@link LoopbackNtpServer.configure}).
 *
 * @example
 * ```ts
 * server.configure({ requestDelayMs: 1, responseDelayMs: 15, jitterMs: 2 });
 * ```
 */
export interface NtpServerBehaviour {
  /** Delay before stamping T2 (ms): the request's one-way delay. Default 0. */
  readonly requestDelayMs?: number;
  /** Delay after stamping T3 (ms): the reply's one-way delay. Default 0. */
  readonly responseDelayMs?: number;
  /** Extra uniform random delay in [0, jitterMs) on each direction (ms). Default 0. */
  readonly jitterMs?: number;
  /** Stratum to advertise; default 1. */
  readonly stratum?: number;
  /** Leap indicator; default 0 (3 = unsynchronized). */
  readonly leap?: number;
  /** Reference ID: up to 4 ASCII characters or a 32-bit number; default `'LOCL'`. */
  readonly referenceId?: string | number;
  /** Root delay to advertise (ms); default 0. */
  readonly rootDelayMs?: number;
  /** Root dispersion to advertise (ms); default 0. */
  readonly rootDispersionMs?: number;
  /** Precision to advertise (log₂ s); default −20 (about 1 µs). */
  readonly precision?: number;
  /** Answer every request with this Kiss-o'-Death code; `undefined` to stop. */
  readonly kissCode?: NtpKissCode | undefined;
  /**
   * Last word on each reply: return the bytes to send (several datagrams in an
   * array), or `undefined` to send nothing. For fuzzing.
   */
  readonly mutateReply?:
    | ((reply: Uint8Array, request: Uint8Array) => Uint8Array | readonly Uint8Array[] | undefined)
    | undefined;
}

/**
 * Options of {@link createNtpServer}.
 *
 * @example
 * ```ts
 * const options: NtpServerOptions = { offsetMs: 250, driftPpm: 50, requestDelayMs: 2, responseDelayMs: 8 };
 * ```
 */
export interface NtpServerOptions extends NtpServerBehaviour {
  /** Address to bind; default `'127.0.0.1'`. */
  readonly host?: string;
  /** Port to bind; default 0 (an ephemeral port, see `port`). */
  readonly port?: number;
  /** Server clock minus `performance.timeOrigin + performance.now()` at start (ms); default 0. */
  readonly offsetMs?: number;
  /** Server clock rate error against `performance.now()` (ppm); default 0. */
  readonly driftPpm?: number;
  /**
   * The `performance.now()` reading from which drift accumulates; default the
   * moment of creation. Give several servers the same value (and offset and
   * drift) and they share one clock exactly.
   */
  readonly driftSinceMs?: number;
  /** Random numbers for jitter; default `Math.random`. */
  readonly random?: () => number;
  /**
   * A leap second at `atMs` (epoch ms on the server's leap-free timescale, the
   * midnight that ends a UTC month). `'step'`: the server announces it (leap
   * indicator 1 or 2) until then and steps its clock, back 1 s at `atMs` for an
   * insert or forward 1 s at `atMs − 1000` for a delete, as ntpd and chronyd do
   * by default. `'smear'`: no announcement; the second is spread linearly over
   * `smearWindowMs` (default 24 h, noon to noon) centred on `atMs`, as Google's
   * and AWS's servers do. `trueNow()` and `trueAt()` include it.
   */
  readonly leapSecond?: {
    readonly atMs: number;
    readonly direction: 'insert' | 'delete';
    readonly mode: 'step' | 'smear';
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
   * @throws {InvalidArgumentError} When `ms` is not finite.
   */
  step(ms: number): void;
  /**
   * Sets the server clock to `performance.timeOrigin + performance.now() + ms`.
   * @throws {InvalidArgumentError} When `ms` is not finite.
   */
  setOffset(ms: number): void;
  /**
   * Changes the rate error from now on, keeping the clock continuous.
   * @throws {InvalidArgumentError} When `ppm` is not finite.
   */
  setDriftPpm(ppm: number): void;
  /**
   * Changes delays, header fields, kiss code or the reply mutator.
   * @throws {InvalidArgumentError} Naming a setting that is out of range.
   */
  configure(behaviour: NtpServerBehaviour): void;
  /**
   * Misbehaves on the next `count` requests (default: until changed); with
   * `thenValid` the correct reply follows the faulty one. `undefined` stops.
   * @throws {InvalidArgumentError} When `count` is not positive.
   */
  setFault(
    fault: NtpServerFault | undefined,
    options?: { readonly count?: number; readonly thenValid?: boolean },
  ): void;
  /** Stops answering and frees the sockets. Idempotent. */
  close(): Promise<void>;
}

interface Behaviour {
  requestDelayMs: number;
  responseDelayMs: number;
  jitterMs: number;
  stratum: number;
  leap: number;
  referenceId: number;
  rootDelayMs: number;
  rootDispersionMs: number;
  precision: number;
  kissCode: NtpKissCode | undefined;
  mutateReply: NtpServerBehaviour['mutateReply'];
}

function nonNegative(name: string, value: number): number {
  if (typeof value !== 'number' || !(value >= 0) || !Number.isFinite(value)) {
    throw new InvalidArgumentError(name, value, 'a finite number ≥ 0');
  }
  return value;
}

function finite(name: string, value: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new InvalidArgumentError(name, value, 'a finite number');
  }
  return value;
}

function applyBehaviour(target: Behaviour, b: NtpServerBehaviour): void {
  if (b.requestDelayMs !== undefined)
    target.requestDelayMs = nonNegative('requestDelayMs', b.requestDelayMs);
  if (b.responseDelayMs !== undefined)
    target.responseDelayMs = nonNegative('responseDelayMs', b.responseDelayMs);
  if (b.jitterMs !== undefined) target.jitterMs = nonNegative('jitterMs', b.jitterMs);
  if (b.stratum !== undefined) {
    if (!Number.isInteger(b.stratum) || b.stratum < 0 || b.stratum > 255) {
      throw new InvalidArgumentError('stratum', b.stratum, 'an integer in [0, 255]');
    }
    target.stratum = b.stratum;
  }
  if (b.leap !== undefined) {
    if (!Number.isInteger(b.leap) || b.leap < 0 || b.leap > 3) {
      throw new InvalidArgumentError('leap', b.leap, 'an integer in [0, 3]');
    }
    target.leap = b.leap;
  }
  if (b.referenceId !== undefined) {
    target.referenceId =
      typeof b.referenceId === 'string' ? referenceIdFromString(b.referenceId) : b.referenceId;
  }
  if (b.rootDelayMs !== undefined) target.rootDelayMs = nonNegative('rootDelayMs', b.rootDelayMs);
  if (b.rootDispersionMs !== undefined) {
    target.rootDispersionMs = nonNegative('rootDispersionMs', b.rootDispersionMs);
  }
  if (b.precision !== undefined) {
    if (!Number.isInteger(b.precision) || b.precision < -128 || b.precision > 127) {
      throw new InvalidArgumentError('precision', b.precision, 'an integer in [-128, 127]');
    }
    target.precision = b.precision;
  }
  if ('kissCode' in b) {
    if (b.kissCode !== undefined && !['DENY', 'RSTR', 'RATE'].includes(b.kissCode)) {
      throw new InvalidArgumentError('kissCode', b.kissCode, "'DENY', 'RSTR', 'RATE' or undefined");
    }
    target.kissCode = b.kissCode;
  }
  if ('mutateReply' in b) target.mutateReply = b.mutateReply;
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

function randomTimestamp(): { seconds: number; fraction: number } {
  const words = new Uint32Array(2);
  crypto.getRandomValues(words);
  return { seconds: words[0] ?? 1, fraction: words[1] ?? 1 };
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
 * @throws {InvalidArgumentError} When an option is out of range.
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
  // Loaded here, not at the top, so that importing chronobound/testing in a browser
  // (for the clocks and checkers) does not pull in Node modules.
  const [{ default: udp }, { isIP }] = await Promise.all([
    import('node:dgram'),
    import('node:net'),
  ]);
  const host = options.host ?? '127.0.0.1';
  const family = isIP(host) === 6 ? 'udp6' : 'udp4';
  if (isIP(host) === 0) throw new InvalidArgumentError('host', host, 'an IP address');
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new InvalidArgumentError('port', port, 'an integer in [0, 65535]');
  }
  const random = options.random ?? Math.random;
  const behaviour: Behaviour = {
    requestDelayMs: 0,
    responseDelayMs: 0,
    jitterMs: 0,
    stratum: 1,
    leap: 0,
    referenceId: referenceIdFromString('LOCL'),
    rootDelayMs: 0,
    rootDispersionMs: 0,
    precision: -20,
    kissCode: undefined,
    mutateReply: undefined,
  };
  applyBehaviour(behaviour, options);

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

  let fault: NtpServerFault | undefined;
  let faultCount = Infinity;
  let thenValid = false;
  let requests = 0;
  let replies = 0;
  let closed = false;
  const timers = new Set<ReturnType<typeof setTimeout>>();

  const socket = udp.createSocket(family);
  const other = udp.createSocket(family);
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

  const takeFault = (): { fault: NtpServerFault | undefined; thenValid: boolean } => {
    if (fault === undefined || faultCount <= 0) return { fault: undefined, thenValid: false };
    const taken = { fault, thenValid };
    faultCount--;
    if (faultCount <= 0) fault = undefined;
    return taken;
  };

  socket.on('message', (msg, rinfo) => {
    if (closed) return;
    requests++;
    let request: NtpPacket;
    try {
      request = decodeNtpPacket(msg);
    } catch {
      return; // not NTP: a real server stays silent
    }
    if (request.mode !== NtpMode.client) return;
    const requestBytes = Uint8Array.from(msg);
    const { fault: current, thenValid: alsoValid } = takeFault();
    if (current === 'drop') return;
    const b = { ...behaviour };
    const jitter = (): number => (b.jitterMs > 0 ? random() * b.jitterMs : 0);
    later(b.requestDelayMs + jitter(), () => {
      const received = performance.now();
      const t2 = trueAt(received);
      const kiss = b.kissCode;
      const header = {
        leap: kiss ? 3 : leapIndicator(leapFreeAt(received), b.leap),
        version: request.version >= 1 && request.version <= 4 ? request.version : 4,
        mode: NtpMode.server,
        stratum: kiss ? 0 : b.stratum,
        poll: request.poll,
        precision: b.precision,
        rootDelayMs: b.rootDelayMs,
        rootDispersionMs: b.rootDispersionMs,
        referenceId: kiss ? referenceIdFromString(kiss) : b.referenceId,
        referenceTimestamp: epochMsToNtp(t2),
        originTimestamp: request.transmitTimestamp,
        receiveTimestamp: epochMsToNtp(t2),
      };
      // T3 as late as possible before the reply leaves (then the response delay).
      const t3 = trueAt(performance.now());
      const valid = encodeNtpPacket({ ...header, transmitTimestamp: epochMsToNtp(t3) });
      let faulty: Uint8Array | undefined;
      let from = socket;
      let copies = 1;
      switch (current) {
        case 'truncated':
          faulty = valid.slice(0, 40);
          break;
        case 'wrong-mode':
          faulty = encodeNtpPacket({
            ...header,
            mode: NtpMode.broadcast,
            transmitTimestamp: epochMsToNtp(t3),
          });
          break;
        case 'wrong-version':
          faulty = encodeNtpPacket({ ...header, version: 5, transmitTimestamp: epochMsToNtp(t3) });
          break;
        case 'zero-transmit':
          faulty = encodeNtpPacket({ ...header, transmitTimestamp: { seconds: 0, fraction: 0 } });
          break;
        case 'bad-origin':
          faulty = encodeNtpPacket({
            ...header,
            originTimestamp: randomTimestamp(),
            transmitTimestamp: epochMsToNtp(t3),
          });
          break;
        case 'negative-delay':
          faulty = encodeNtpPacket({ ...header, transmitTimestamp: epochMsToNtp(t2 + 1000) });
          break;
        case 'absurd-delay':
          faulty = encodeNtpPacket({ ...header, transmitTimestamp: epochMsToNtp(t2 - 1000) });
          break;
        case 'other-port':
          faulty = valid;
          from = other;
          break;
        case 'duplicate':
          faulty = valid;
          copies = 2;
          break;
        default:
          break;
      }
      const outgoing: { from: dgram.Socket; bytes: Uint8Array }[] = [];
      if (faulty !== undefined) {
        for (let i = 0; i < copies; i++) outgoing.push({ from, bytes: faulty });
        if (alsoValid) outgoing.push({ from: socket, bytes: valid });
      } else {
        outgoing.push({ from: socket, bytes: valid });
      }
      later(b.responseDelayMs + jitter(), () => {
        for (const { from: sender, bytes } of outgoing) {
          const mutated = b.mutateReply ? b.mutateReply(bytes, requestBytes) : bytes;
          if (mutated === undefined) continue;
          const list: readonly Uint8Array[] = mutated instanceof Uint8Array ? [mutated] : mutated;
          for (const datagram of list) send(sender, datagram, rinfo);
        }
      });
    });
  });

  const address = family === 'udp6' ? `[${host}]:${bound}` : `${host}:${bound}`;
  return {
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
      applyBehaviour(behaviour, b);
    },
    setFault(next, faultOptions = {}) {
      const count = faultOptions.count ?? Infinity;
      if (!(count > 0)) throw new InvalidArgumentError('count', count, 'a number > 0');
      fault = next;
      faultCount = count;
      thenValid = faultOptions.thenValid ?? false;
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
  };
}
