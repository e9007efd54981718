/**
 * A simulated network of NTP servers in virtual time: a `DatagramTransport` for
 * `ntpSource({ transport })` (or `NtpSocket`) whose servers answer on a
 * `SimulatedClock`'s timers, with configurable offsets, one-way delays, jitter,
 * loss, kiss codes and faults. No sockets, no DNS, no real time: hours of polling
 * run in milliseconds, and the same seed gives the same run. Browser-safe.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js';
import { mulberry32 } from '../_internals/prng.js';
import type {
  DatagramFamily,
  DatagramHandlers,
  DatagramSocket,
  DatagramTransport,
} from '../ntp/transport.js';
import {
  FaultPlan,
  applyServerBehaviour,
  buildNtpReplies,
  finite,
  mutatedDatagrams,
  serverBehaviour,
  takeRequest,
  type NtpServerBehaviour,
  type NtpServerFault,
  type ServerBehaviour,
} from './ntp-reply.js';
import type { SimulatedClock } from './simulated-clock.js';

/**
 * Settings of a simulated server that can change while it runs: those of the
 * loopback server ({@link NtpServerBehaviour}: one-way delays, jitter, header
 * fields, kiss code, reply mutator) plus loss.
 *
 * @example
 * ```ts
 * server.configure({ requestDelayMs: 5, responseDelayMs: 12, jitterMs: 3, lossRate: 0.05 });
 * ```
 */
export interface SimulatedNtpServerBehaviour extends NtpServerBehaviour {
  /**
   * Probability in [0, 1] that a datagram to or from this server is lost (each request and each
   * reply datagram independently).
   *
   * @defaultValue `0`
   */
  readonly lossRate?: number;
}

/**
 * Options of {@link SimulatedNtpNetwork.addServer}.
 *
 * @example
 * ```ts
 * const sim = new SimulatedClock();
 * const network = createSimulatedNtpNetwork(sim);
 * const a = network.addServer({ offsetMs: 3, requestDelayMs: 10, responseDelayMs: 14, name: 'a.example' });
 * a.address; //=> '192.0.2.1:123'
 * const pending = queryNtp({ host: 'a.example', transport: network, scheduler: sim, monotonic: sim.monotonic, wall: sim.wall });
 * await sim.advanceAsync(100);
 * const x = await pending;
 * x.delayMs;        //=> 24
 * x.systemOffsetMs; //=> 1 (3 ms, less half the 4 ms asymmetry of the path; x.errorMs ≈ 12 covers it)
 * ```
 */
export interface SimulatedNtpServerOptions extends SimulatedNtpServerBehaviour {
  /**
   * The server's IP address.
   *
   * @defaultValue the next free one of 192.0.2.1–254 (RFC 5737's TEST-NET-1)
   */
  readonly host?: string;
  /**
   * The server's port.
   *
   * @defaultValue `123`
   */
  readonly port?: number;
  /**
   * A host name the network's `lookup` resolves to `host` (as DNS would).
   *
   * @defaultValue none
   */
  readonly name?: string;
  /**
   * Server clock minus true time (`sim.trueNow()`) at the start (ms); 0 is an honest server.
   *
   * @defaultValue `0`
   */
  readonly offsetMs?: number;
  /**
   * The server clock's rate error against true time (ppm).
   *
   * @defaultValue `0`
   */
  readonly driftPpm?: number;
}

/**
 * One simulated NTP server.
 *
 * @example
 * ```ts
 * const a = network.addServer({ offsetMs: 2, requestDelayMs: 8, responseDelayMs: 8 });
 * const source = ntpSource({ servers: [a.address], transport: network, scheduler: sim });
 * a.stop(); // it goes silent
 * ```
 */
export interface SimulatedNtpServer {
  /** Its IP address. */
  readonly host: string;
  /** Its port. */
  readonly port: number;
  /** `host:port` (`[host]:port` for IPv6), ready for `ntpSource({ servers: [server.address] })`. */
  readonly address: string;
  /** Its host name, if it has one. */
  readonly name: string | undefined;
  /** Whether it answers (see `stop()` and `start()`). */
  readonly running: boolean;
  /** Requests that reached it, datagrams it sent, and datagrams to or from it that were lost. */
  readonly stats: { readonly requests: number; readonly replies: number; readonly lost: number };
  /**
   * The sending machine's monotonic readings (`sim.monotonic.now()`) at which each
   * request to this server was sent, lost ones included: the client's schedule.
   */
  readonly requestTimes: readonly number[];
  /** The server clock now (epoch ms). */
  trueNow(): number;
  /**
   * The server clock at true time `trueMs` (epoch ms), at the current offset and drift.
   * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When `trueMs` is not finite.
   */
  clockAt(trueMs: number): number;
  /**
   * Steps the server clock by `ms` (either sign).
   * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When `ms` is not finite.
   */
  step(ms: number): void;
  /**
   * Sets the server clock to true time + `ms`.
   * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When `ms` is not finite.
   */
  setOffset(ms: number): void;
  /**
   * Changes the server clock's rate error from now on, keeping it continuous.
   * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When `ppm` is not finite.
   */
  setDriftPpm(ppm: number): void;
  /**
   * Changes delays, jitter, loss, header fields, kiss code or the reply mutator.
   * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} Naming a setting that is out of range.
   */
  configure(behaviour: SimulatedNtpServerBehaviour): void;
  /**
   * Misbehaves on the next `count` requests (default: until changed); with
   * `thenValid` the correct reply follows the faulty one. `undefined` stops.
   * `'other-port'` replies from port + 1.
   * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When `count` is not positive.
   */
  setFault(
    fault: NtpServerFault | undefined,
    options?: { readonly count?: number; readonly thenValid?: boolean },
  ): void;
  /** Stops answering: requests that reach it from now on are ignored (replies already on the way still arrive). */
  stop(): void;
  /** Answers again. */
  start(): void;
}

/**
 * One datagram the network carried (or lost).
 *
 * @example
 * ```ts
 * const requests = network.datagrams().filter((d) => d.kind === 'request');
 * ```
 */
export interface SimulatedDatagram {
  /** True time it was sent (epoch ms, `sim.trueNow()`). */
  readonly atMs: number;
  /** The simulated machine's monotonic reading when it was sent. */
  readonly monotonicMs: number;
  /** A request (client to server) or a reply (server to client). */
  readonly kind: 'request' | 'reply';
  /** `host:port` of the sender. */
  readonly from: string;
  /** `host:port` of the receiver. */
  readonly to: string;
  /** It never arrived: lost, nothing listening, or the receiver closed. */
  readonly lost: boolean;
}

/**
 * A simulated network of NTP servers; it is the `DatagramTransport` to inject.
 *
 * @example
 * ```ts
 * const network = createSimulatedNtpNetwork(sim, { seed: 7 });
 * const a = network.addServer({ requestDelayMs: 10, responseDelayMs: 10 });
 * const source = ntpSource({ servers: [a.address], transport: network, scheduler: sim, wall: sim.wall });
 * ```
 */
export interface SimulatedNtpNetwork extends DatagramTransport {
  /**
   * Adds a server.
   * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When an option is out of range, or the address or name is taken.
   */
  addServer(options?: SimulatedNtpServerOptions): SimulatedNtpServer;
  /** The servers, in the order they were added. */
  readonly servers: readonly SimulatedNtpServer[];
  /** Client sockets open now (0 once every source and socket on it closed). */
  readonly openSockets: number;
  /** Every datagram sent so far, in order. */
  datagrams(): readonly SimulatedDatagram[];
}

/**
 * Options of {@link createSimulatedNtpNetwork}.
 *
 * @example
 * ```ts
 * const network = createSimulatedNtpNetwork(new SimulatedClock(), { seed: 42 });
 * network.addServer({ jitterMs: 5, lossRate: 0.1 }); // jitter and losses drawn from seed 42: the same on every run
 * ```
 */
export interface SimulatedNtpNetworkOptions {
  /**
   * Seed of the network's generator for jitter and loss. Same seed, same run.
   *
   * @defaultValue `1`
   */
  readonly seed?: number;
  /** Uniform random numbers in [0, 1) instead of the seeded generator. */
  readonly random?: () => number;
}

/** Where simulated clients send from (RFC 5737 TEST-NET-2, RFC 3849's documentation prefix). */
const CLIENT_ADDRESS: Readonly<Record<DatagramFamily, string>> = {
  4: '198.51.100.1',
  6: '2001:db8::c',
};
const FIRST_EPHEMERAL_PORT = 49152;
/**
 * A link carries one datagram at a time: two requests reach a server at least
 * this far apart (ms; a 48-byte NTP packet takes about 0.5 µs at 1 Gb/s), so a
 * server never stamps two replies with the same time, as a real one never does.
 */
const SERIALIZATION_MS = 0.001;

interface Client {
  readonly address: string;
  readonly port: number;
  readonly handlers: DatagramHandlers;
  open: boolean;
}

interface ServerState {
  readonly behaviour: ServerBehaviour;
  lossRate: number;
  offset: number;
  drift: number;
  driftOrigin: number;
  running: boolean;
  requests: number;
  replies: number;
  lost: number;
  readonly requestTimes: number[];
  readonly faults: FaultPlan;
  /** Monotonic reading at which the latest request is due to reach the server. */
  lastArrival: number;
}

function isIpLiteral(host: string): boolean {
  if (/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.test(host)) {
    return host.split('.').every((part) => Number(part) <= 255);
  }
  return /^[0-9a-f:.]+$/i.test(host) && host.split(':').length >= 3;
}

function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function probability(name: string, value: number): number {
  if (typeof value !== 'number' || !(value >= 0 && value <= 1)) {
    throw new InvalidArgumentError(name, value, 'a probability in [0, 1]');
  }
  return value;
}

/**
 * Creates a simulated network of NTP servers on `sim`'s timers. Pass it as the
 * `transport` of `ntpSource` (with `scheduler: sim`, and the clock's
 * `monotonic: sim.monotonic`) and the whole path — bursts, polling, timeouts,
 * validation, selection, `TrueClock` — runs in virtual time: advance it with
 * `sim.advanceAsync(ms)`.
 *
 * A request sent at monotonic reading m reaches its server after
 * `requestDelayMs + U(0, jitterMs)` on `sim`'s timers (and at least 1 µs after the
 * request before it: a link carries one datagram at a time); the server stamps T2 and
 * T3 from its clock (true time + offset + drift) at that moment; the reply
 * arrives `responseDelayMs + U(0, jitterMs)` later. Each datagram is lost with
 * the server's `lossRate`. A server with offset 0 tells true time, so a
 * `TrueClock` fed by it must contain `sim.trueNow()`.
 *
 * @param sim - The simulated machine whose timers carry the datagrams.
 * @param options - The seed (or generator) for jitter and loss.
 * @returns The network; add servers with `addServer`.
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When `sim` is not a SimulatedClock-like scheduler or the seed is not an integer.
 *
 * @example
 * ```ts
 * const sim = new SimulatedClock({ driftPpm: 30 });
 * const network = createSimulatedNtpNetwork(sim);
 * const servers = [0, 1, 2].map(() => network.addServer({ requestDelayMs: 8, responseDelayMs: 9, jitterMs: 2 }));
 * const clock = new TrueClock({
 *   source: ntpSource({ servers: servers.map((s) => s.address), transport: network, scheduler: sim, wall: sim.wall }),
 *   monotonic: sim.monotonic,
 *   wall: sim.wall,
 *   scheduler: sim,
 * });
 * await sim.advanceAsync(3_600_000); // an hour of polling, at once
 * ```
 */
export function createSimulatedNtpNetwork(
  sim: SimulatedClock,
  options: SimulatedNtpNetworkOptions = {},
): SimulatedNtpNetwork {
  if (
    typeof sim?.setTimeout !== 'function' ||
    typeof sim.trueNow !== 'function' ||
    typeof sim.monotonic?.now !== 'function'
  ) {
    throw new InvalidArgumentError('sim', sim, 'a SimulatedClock');
  }
  if (options.seed !== undefined && !Number.isInteger(options.seed)) {
    throw new InvalidArgumentError('seed', options.seed, 'an integer');
  }
  if (options.random !== undefined && typeof options.random !== 'function') {
    throw new InvalidArgumentError('random', options.random, 'a function returning [0, 1)');
  }
  const random = options.random ?? mulberry32(options.seed ?? 1);
  const servers: SimulatedNtpServer[] = [];
  const listeners = new Map<string, { server: SimulatedNtpServer; state: ServerState }>();
  const names = new Map<string, string>();
  const clients = new Map<string, Client>();
  const log: SimulatedDatagram[] = [];
  let nextHost = 1;
  let nextPort = FIRST_EPHEMERAL_PORT;

  const key = (host: string, port: number): string => `${host}|${port}`;
  const record = (
    kind: SimulatedDatagram['kind'],
    from: string,
    to: string,
    lost: boolean,
  ): void => {
    log.push({ atMs: sim.trueNow(), monotonicMs: sim.monotonic.now(), kind, from, to, lost });
  };
  const jitter = (b: ServerBehaviour): number => (b.jitterMs > 0 ? random() * b.jitterMs : 0);
  const dropped = (state: ServerState): boolean => state.lossRate > 0 && random() < state.lossRate;

  /** A request reached `server`: answer it as an NTP server would. */
  const answer = (
    server: SimulatedNtpServer,
    state: ServerState,
    bytes: Uint8Array,
    client: Client,
  ): void => {
    if (!state.running) return;
    state.requests++;
    const taken = takeRequest(bytes, state.faults);
    if (taken === undefined) return;
    const { request, fault, thenValid } = taken;
    const b = { ...state.behaviour };
    // No processing time in virtual time: the reply leaves as the request arrives.
    const t2 = server.trueNow();
    const outgoing = buildNtpReplies({
      request,
      t2,
      t3: t2,
      leap: b.leap,
      behaviour: b,
      fault,
      thenValid,
    });
    const delay = b.responseDelayMs + jitter(b);
    const to = formatAddress(client.address, client.port);
    const datagrams = outgoing.flatMap(({ bytes: reply, fromOtherPort }) =>
      mutatedDatagrams(b, reply, bytes).map((datagram) => ({
        datagram: Uint8Array.from(datagram),
        port: fromOtherPort ? (server.port === 65535 ? 65534 : server.port + 1) : server.port,
      })),
    );
    for (const { datagram, port } of datagrams) {
      const lost = dropped(state);
      record('reply', formatAddress(server.host, port), to, lost);
      state.replies++;
      if (lost) {
        state.lost++;
        continue;
      }
      sim.setTimeout(() => {
        if (client.open) client.handlers.onMessage(datagram, { address: server.host, port });
      }, delay);
    }
  };

  const network: SimulatedNtpNetwork = {
    get servers() {
      return servers.slice();
    },
    get openSockets() {
      return clients.size;
    },
    datagrams: () => log.slice(),

    addServer(serverOptions: SimulatedNtpServerOptions = {}): SimulatedNtpServer {
      let host = serverOptions.host;
      if (host === undefined) {
        while (
          nextHost <= 254 &&
          listeners.has(key(`192.0.2.${nextHost}`, serverOptions.port ?? 123))
        ) {
          nextHost++;
        }
        if (nextHost > 254) {
          throw new InvalidArgumentError('host', host, 'an address (192.0.2.0/24 is full)');
        }
        host = `192.0.2.${nextHost++}`;
      } else if (typeof host !== 'string' || !isIpLiteral(host)) {
        throw new InvalidArgumentError('host', host, 'an IPv4 or IPv6 address');
      }
      const port = serverOptions.port ?? 123;
      if (!Number.isInteger(port) || port < 1 || port > 65535) {
        throw new InvalidArgumentError('port', port, 'an integer in [1, 65535]');
      }
      if (listeners.has(key(host, port))) {
        throw new InvalidArgumentError('host', host, 'an address and port no other server has');
      }
      const name = serverOptions.name;
      if (name !== undefined && (typeof name !== 'string' || name === '' || isIpLiteral(name))) {
        throw new InvalidArgumentError('name', name, 'a host name (not an address)');
      }
      if (name !== undefined && names.has(name)) {
        throw new InvalidArgumentError('name', name, 'a name no other server has');
      }
      const state: ServerState = {
        behaviour: serverBehaviour(serverOptions),
        lossRate: probability('lossRate', serverOptions.lossRate ?? 0),
        offset: finite('offsetMs', serverOptions.offsetMs ?? 0),
        drift: finite('driftPpm', serverOptions.driftPpm ?? 0) * 1e-6,
        driftOrigin: sim.trueNow(),
        running: true,
        requests: 0,
        replies: 0,
        lost: 0,
        requestTimes: [],
        faults: new FaultPlan(),
        lastArrival: -Infinity,
      };
      const clockAt = (trueMs: number): number =>
        trueMs + state.offset + state.drift * (trueMs - state.driftOrigin);
      const server: SimulatedNtpServer = {
        host,
        port,
        address: formatAddress(host, port),
        name,
        get running() {
          return state.running;
        },
        get stats() {
          return { requests: state.requests, replies: state.replies, lost: state.lost };
        },
        get requestTimes() {
          return state.requestTimes.slice();
        },
        trueNow: () => clockAt(sim.trueNow()),
        clockAt: (trueMs) => clockAt(finite('trueMs', trueMs)),
        step(ms) {
          state.offset += finite('ms', ms);
        },
        setOffset(ms) {
          state.offset = finite('ms', ms) - state.drift * (sim.trueNow() - state.driftOrigin);
        },
        setDriftPpm(ppm) {
          const now = sim.trueNow();
          const next = finite('ppm', ppm) * 1e-6;
          state.offset += state.drift * (now - state.driftOrigin);
          state.driftOrigin = now;
          state.drift = next;
        },
        configure(b) {
          const lossRate =
            b.lossRate === undefined ? state.lossRate : probability('lossRate', b.lossRate);
          applyServerBehaviour(state.behaviour, b);
          state.lossRate = lossRate;
        },
        setFault(fault, faultOptions) {
          state.faults.set(fault, faultOptions);
        },
        stop() {
          state.running = false;
        },
        start() {
          state.running = true;
        },
      };
      listeners.set(key(host, port), { server, state });
      if (name !== undefined) names.set(name, host);
      servers.push(server);
      return server;
    },

    open(family: DatagramFamily, handlers: DatagramHandlers): DatagramSocket {
      if (family !== 4 && family !== 6) {
        throw new InvalidArgumentError('family', family, '4 or 6');
      }
      const address = CLIENT_ADDRESS[family];
      let port = nextPort;
      while (clients.has(key(address, port)))
        port = port >= 65535 ? FIRST_EPHEMERAL_PORT : port + 1;
      nextPort = port >= 65535 ? FIRST_EPHEMERAL_PORT : port + 1;
      const client: Client = { address, port, handlers, open: true };
      clients.set(key(address, port), client);
      const from = formatAddress(address, port);
      return {
        send(bytes, toAddress, toPort) {
          if (!client.open) throw new Error('the socket is closed');
          const target = listeners.get(key(toAddress, toPort));
          const to = formatAddress(toAddress, toPort);
          if (target === undefined) {
            // Nothing listens there: the datagram goes nowhere, as UDP's would.
            record('request', from, to, true);
            return;
          }
          const { server, state } = target;
          state.requestTimes.push(sim.monotonic.now());
          const lost = dropped(state);
          record('request', from, to, lost);
          if (lost) {
            state.lost++;
            return;
          }
          const copy = Uint8Array.from(bytes);
          const now = sim.monotonic.now();
          const arrival = Math.max(
            now + state.behaviour.requestDelayMs + jitter(state.behaviour),
            state.lastArrival + SERIALIZATION_MS,
          );
          state.lastArrival = arrival;
          sim.setTimeout(() => answer(server, state, copy, client), arrival - now);
        },
        close() {
          client.open = false;
          clients.delete(key(address, port));
        },
      };
    },

    lookup(host: string): Promise<string> {
      const address = names.get(host);
      return address === undefined
        ? Promise.reject(
            new Error(`getaddrinfo ENOTFOUND ${host} (no simulated server has this name)`),
          )
        : Promise.resolve(address);
    },
  };
  return network;
}
