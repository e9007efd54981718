/**
 * What an NTP server says, shared by the loopback UDP server (`createNtpServer`)
 * and the simulated network (`createSimulatedNtpNetwork`): its settings, its
 * faults, and the reply datagrams it builds for a request. Browser-safe: no I/O,
 * no `node:` imports. Its helpers are internal; its types are public (re-exported
 * from `chronobound/testing`).
 *
 * @module
 */
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
 * server.configure({ kissCode: 'RATE' }); // server: a loopback (or simulated) NTP server
 * await queryNtp({ host: server.host, port: server.port });
 * //=> rejects with NtpKissOfDeathError, kissCode 'RATE': "the server asks to poll less often"
 * ```
 */
export type NtpKissCode = 'DENY' | 'RSTR' | 'RATE';

/**
 * Settings that can change while the server runs
 * ({@link chronobound/testing/node!LoopbackNtpServer.configure | LoopbackNtpServer.configure}).
 *
 * @example
 * ```ts
 * server.configure({ requestDelayMs: 1, responseDelayMs: 15, jitterMs: 2 });
 * ```
 */
export interface NtpServerBehaviour {
  /**
   * Delay before stamping T2 (ms): the request's one-way delay.
   *
   * @defaultValue `0`
   */
  readonly requestDelayMs?: number;
  /**
   * Delay after stamping T3 (ms): the reply's one-way delay.
   *
   * @defaultValue `0`
   */
  readonly responseDelayMs?: number;
  /**
   * Extra uniform random delay in [0, jitterMs) on each direction (ms).
   *
   * @defaultValue `0`
   */
  readonly jitterMs?: number;
  /**
   * Stratum to advertise.
   *
   * @defaultValue `1`
   */
  readonly stratum?: number;
  /**
   * Leap indicator (3 = unsynchronized).
   *
   * @defaultValue `0`
   */
  readonly leap?: number;
  /**
   * Reference ID: up to 4 ASCII characters or a 32-bit number.
   *
   * @defaultValue `'LOCL'`
   */
  readonly referenceId?: string | number;
  /**
   * Root delay to advertise (ms).
   *
   * @defaultValue `0`
   */
  readonly rootDelayMs?: number;
  /**
   * Root dispersion to advertise (ms).
   *
   * @defaultValue `0`
   */
  readonly rootDispersionMs?: number;
  /**
   * Precision to advertise (log₂ s); the default is about 1 µs.
   *
   * @defaultValue `-20`
   */
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
 * The settings a server holds, all present.
 * @internal
 */
export interface ServerBehaviour {
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

/**
 * A server's settings: stratum 1, `LOCL`, precision −20, no delays, then what
 * `options` set, validated.
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} Naming the first setting out of range.
 * @internal
 */
export function serverBehaviour(options: NtpServerBehaviour): ServerBehaviour {
  const behaviour: ServerBehaviour = {
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
  applyServerBehaviour(behaviour, options);
  return behaviour;
}

/**
 * `value` if it is a finite number ≥ 0.
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} Naming `name` otherwise.
 * @internal
 */
export function nonNegative(name: string, value: number): number {
  if (typeof value !== 'number' || !(value >= 0) || !Number.isFinite(value)) {
    throw new InvalidArgumentError(name, value, 'a finite number ≥ 0');
  }
  return value;
}

/**
 * `value` if it is a finite number.
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} Naming `name` otherwise.
 * @internal
 */
export function finite(name: string, value: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new InvalidArgumentError(name, value, 'a finite number');
  }
  return value;
}

/**
 * Copies the settings `b` gives into `target`, validating each.
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} Naming the first setting out of range.
 * @internal
 */
export function applyServerBehaviour(target: ServerBehaviour, b: NtpServerBehaviour): void {
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

/**
 * The fault a server is told to show, and for how many more requests.
 * @internal
 */
export class FaultPlan {
  #fault: NtpServerFault | undefined;
  #count = Infinity;
  #thenValid = false;

  /**
   * Misbehaves on the next `count` requests (default: until changed).
   * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When `count` is not positive.
   */
  set(
    fault: NtpServerFault | undefined,
    options: { readonly count?: number; readonly thenValid?: boolean } = {},
  ): void {
    const count = options.count ?? Infinity;
    if (!(count > 0)) throw new InvalidArgumentError('count', count, 'a number > 0');
    this.#fault = fault;
    this.#count = count;
    this.#thenValid = options.thenValid ?? false;
  }

  /** The fault for the request that just arrived (and whether a valid reply follows it). */
  take(): { fault: NtpServerFault | undefined; thenValid: boolean } {
    if (this.#fault === undefined || this.#count <= 0)
      return { fault: undefined, thenValid: false };
    const taken = { fault: this.#fault, thenValid: this.#thenValid };
    this.#count--;
    if (this.#count <= 0) this.#fault = undefined;
    return taken;
  }
}

/**
 * A request a server answers: the decoded client-mode packet and the fault to show for it.
 * @internal
 */
export interface TakenRequest {
  readonly request: NtpPacket;
  readonly fault: NtpServerFault | undefined;
  /** Send the valid reply after the faulty one. */
  readonly thenValid: boolean;
}

/**
 * What a server makes of a datagram that reached it: the request and the fault
 * to show (taken from `faults`, so it counts towards the fault's `count`), or
 * `undefined` when the server stays silent: the datagram is not NTP, not a
 * client-mode request, or the fault is `'drop'`.
 * @internal
 */
export function takeRequest(bytes: Uint8Array, faults: FaultPlan): TakenRequest | undefined {
  let request: NtpPacket;
  try {
    request = decodeNtpPacket(bytes);
  } catch {
    return undefined; // not NTP: a real server stays silent
  }
  if (request.mode !== NtpMode.client) return undefined;
  const { fault, thenValid } = faults.take();
  return fault === 'drop' ? undefined : { request, fault, thenValid };
}

/**
 * A random 64-bit timestamp (a spoofed origin).
 * @internal
 */
export function randomTimestamp(): { seconds: number; fraction: number } {
  const words = new Uint32Array(2);
  crypto.getRandomValues(words);
  return { seconds: words[0] ?? 1, fraction: words[1] ?? 1 };
}

/**
 * One datagram a server sends for a request.
 * @internal
 */
export interface OutgoingReply {
  /** The bytes, before `mutateReply`. */
  readonly bytes: Uint8Array;
  /** Sent from another socket (another port) than the one the request reached. */
  readonly fromOtherPort: boolean;
}

/**
 * What a server knows when it answers one request.
 * @internal
 */
export interface ReplyInput {
  /** The decoded client-mode request. */
  readonly request: NtpPacket;
  /** The server clock when the request arrived (epoch ms): T2, and the reference time. */
  readonly t2: number;
  /** The server clock as the reply leaves (epoch ms): T3. */
  readonly t3: number;
  /** The leap indicator to send unless a kiss code is set. */
  readonly leap: number;
  /** The settings at the time the request arrived. */
  readonly behaviour: ServerBehaviour;
  /** The fault to show for this request, if any. */
  readonly fault: NtpServerFault | undefined;
  /** Send the valid reply after the faulty one. */
  readonly thenValid: boolean;
}

/**
 * The datagrams a server sends for a request: the valid reply, or what `fault`
 * makes of it (a faulty copy, two copies, one from another port, …), with the
 * valid one after it when `thenValid`. `'drop'` is the caller's to honour (it
 * sends nothing and builds nothing).
 * @internal
 */
export function buildNtpReplies(input: ReplyInput): OutgoingReply[] {
  const { request, t2, t3, behaviour: b, fault, thenValid } = input;
  const kiss = b.kissCode;
  const header = {
    leap: kiss ? 3 : input.leap,
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
  const valid = encodeNtpPacket({ ...header, transmitTimestamp: epochMsToNtp(t3) });
  let faulty: Uint8Array | undefined;
  let fromOtherPort = false;
  let copies = 1;
  switch (fault) {
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
      fromOtherPort = true;
      break;
    case 'duplicate':
      faulty = valid;
      copies = 2;
      break;
    default:
      break;
  }
  const outgoing: OutgoingReply[] = [];
  if (faulty !== undefined) {
    for (let i = 0; i < copies; i++) outgoing.push({ bytes: faulty, fromOtherPort });
    if (thenValid) outgoing.push({ bytes: valid, fromOtherPort: false });
  } else {
    outgoing.push({ bytes: valid, fromOtherPort: false });
  }
  return outgoing;
}

/**
 * What `mutateReply` makes of one outgoing datagram: the datagrams to send.
 * @internal
 */
export function mutatedDatagrams(
  behaviour: ServerBehaviour,
  bytes: Uint8Array,
  request: Uint8Array,
): readonly Uint8Array[] {
  const mutated = behaviour.mutateReply ? behaviour.mutateReply(bytes, request) : bytes;
  if (mutated === undefined) return [];
  return mutated instanceof Uint8Array ? [mutated] : mutated;
}
