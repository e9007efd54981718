/**
 * An NTS session (RFC 8915 §5): the keys and cookies from a key exchange, and
 * the two pure steps of every NTS-protected exchange — building a request
 * around a 48-byte NTP header, and verifying a reply to it. No I/O and no
 * clock reads happen here, so the same session serves `queryNts`, a poller or
 * a simulated network.
 *
 * A reply is accepted only if it echoes the request's Unique Identifier and
 * carries an NTS Authenticator, last, that verifies under the S2C key over the
 * header and every field before it; its encrypted cookies then refill the jar.
 * Anything else is refused with an {@link NtsRejectedError} whose `reason`
 * says why — never treated as a plain NTP reply.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { InvalidArgumentError } from '../../errors.js';
import { BoundedMap } from '../../_internals/bounded-map.js';
import { concatBytes } from '../../_internals/bytes.js';
import { NTP_PACKET_SIZE, referenceIdFromString } from '../packet.js';
import { AES_SIV_KEY_LENGTH, aeadAesSivCmac256Open, aeadAesSivCmac256Seal } from './aes-siv.js';
import { CookieJar, NTS_MAX_COOKIES } from './cookies.js';
import {
  NtsExtensionFieldError,
  NtsNoCookiesError,
  NtsRejectedError,
  type NtsRejectionReason,
} from './errors.js';
import {
  NtsExtensionFieldType,
  decodeAuthenticator,
  encodeAuthenticator,
  encodeExtensionField,
  parseExtensionFields,
  type ExtensionField,
} from './extension-fields.js';
import type { NtsKeyExchangeResult } from './ke.js';

/** Unique Identifier length (RFC 8915 §5.3: at least 32 bytes). */
const UNIQUE_ID_LENGTH = 32;
/** AEAD nonce length (RFC 8915 §5.6: at least 16 for AEAD_AES_SIV_CMAC_256). */
const NONCE_LENGTH = 16;
/** Cookies and placeholders together stay below this, so a request is not fragmented (chrony's figure). */
const MAX_TOTAL_COOKIE_BYTES = 8 * 108;
/** Smallest last extension field without a MAC (RFC 7822 §7.5). */
const MIN_LAST_FIELD_LENGTH = 28;
/** How many answered or abandoned requests are remembered to name replays. */
const HISTORY_SIZE = 64;
const NTS_NAK = referenceIdFromString('NTSN');

/**
 * Where a session's keys came from and where its NTP requests go.
 *
 * @example
 * ```ts
 * const session = new NtsSession({ c2sKey, s2cKey, cookies, ntpHost: '127.0.0.1', ntpPort: 123 });
 * session.rekey(await ntsKeyExchange({ host: 'time.example' })); // a key exchange's result is one too
 * ```
 */
export type NtsSessionKeys = Pick<
  NtsKeyExchangeResult,
  'c2sKey' | 's2cKey' | 'cookies' | 'ntpHost' | 'ntpPort'
>;

/**
 * Options of {@link NtsSession}.
 *
 * @example
 * ```ts
 * new NtsSession(ke, { random: (n) => new Uint8Array(n) }); // deterministic tests only
 * ```
 */
export interface NtsSessionOptions {
  /**
   * Cookies kept at most.
   *
   * @defaultValue `8` (`NTS_MAX_COOKIES`)
   */
  readonly maxCookies?: number;
  /**
   * Source of Unique Identifiers and nonces.
   *
   * @defaultValue `crypto.randomBytes`
   */
  readonly random?: (length: number) => Uint8Array;
}

/**
 * One outstanding NTS request, as returned by {@link NtsSession.buildRequest}:
 * the datagram to send and what its reply must match.
 *
 * @example
 * ```ts
 * // session: 32-byte keys and two 100-byte cookies
 * const request = session.buildRequest(
 *   encodeNtpPacket({ mode: NtpMode.client, version: 4, transmitTimestamp: epochMsToNtp(Date.UTC(2026, 0, 1)) }),
 * );
 * request.cookiesRequested; //=> 7 (the cookie it spends and 6 placeholders: one left, so 8 after the reply)
 * request.bytes.length;     //=> 852
 * request.uniqueId.length;  //=> 32
 * ```
 */
export interface NtsRequest {
  /** The whole datagram: header, Unique Identifier, cookie, placeholders, authenticator. */
  readonly bytes: Uint8Array;
  /** The Unique Identifier the reply must echo. */
  readonly uniqueId: Uint8Array;
  /** How many new cookies the request asks for (the cookie plus the placeholders). */
  readonly cookiesRequested: number;
  /** The key generation the request was built with. */
  readonly generation: number;
}

/**
 * What a verified reply yielded.
 *
 * @example
 * ```ts
 * const { cookiesReceived, cookiesHeld } = session.verifyReply(bytes, request);
 * ```
 */
export interface NtsVerifiedReply {
  /** Cookies the reply carried (inside its authenticator). */
  readonly cookiesReceived: number;
  /** Cookies in the jar afterwards. */
  readonly cookiesHeld: number;
}

type RequestState = 'pending' | 'answered' | 'abandoned';

function hexOf(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

/**
 * Keys, cookies and request bookkeeping for NTS-protected NTP with one server.
 *
 * @example
 * ```ts
 * const session = new NtsSession(await ntsKeyExchange({ host: 'time.example' }));
 * const request = session.buildRequest(encodeNtpPacket({ mode: 3, version: 4, transmitTimestamp: nonce }));
 * // … send request.bytes to session.ntpHost:session.ntpPort, receive `reply` …
 * session.verifyReply(reply, request); // throws NtsRejectedError unless authentic
 * ```
 */
export class NtsSession {
  readonly #jar: CookieJar;
  readonly #random: (length: number) => Uint8Array;
  readonly #requests = new BoundedMap<string, { state: RequestState; generation: number }>(
    HISTORY_SIZE,
  );
  #c2s: Uint8Array = new Uint8Array(0);
  #s2c: Uint8Array = new Uint8Array(0);
  #ntpHost = '';
  #ntpPort = 123;
  #server = '';
  #generation = 0;
  #nak = false;

  /**
   * @param keys - A key exchange's result (or the same fields from elsewhere).
   * @param options - Jar size, random source.
   * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When a key is not 32 bytes or an option is out of range.
   */
  constructor(keys: NtsSessionKeys, options: NtsSessionOptions = {}) {
    this.#jar = new CookieJar(options.maxCookies ?? NTS_MAX_COOKIES);
    const random = options.random ?? ((n: number) => new Uint8Array(randomBytes(n)));
    if (typeof random !== 'function') {
      throw new InvalidArgumentError('random', random, 'a function (length) => Uint8Array');
    }
    this.#random = random;
    this.rekey(keys);
  }

  /**
   * Replaces the keys and cookies with a new key exchange's, forgetting the old
   * ones; replies to requests built before are then refused as replays.
   *
   * @param keys - The new key exchange's result.
   * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When a key is not 32 bytes or the NTP address is malformed.
   *
   * @example
   * ```ts
   * if (session.needsKeyExchange) session.rekey(await ntsKeyExchange({ host }));
   * ```
   */
  rekey(keys: NtsSessionKeys): void {
    for (const name of ['c2sKey', 's2cKey'] as const) {
      const key = keys?.[name];
      if (!(key instanceof Uint8Array) || key.length !== AES_SIV_KEY_LENGTH) {
        throw new InvalidArgumentError(name, key, `${AES_SIV_KEY_LENGTH} bytes`);
      }
    }
    if (typeof keys.ntpHost !== 'string' || keys.ntpHost === '') {
      throw new InvalidArgumentError('ntpHost', keys.ntpHost, 'a host name or IP address');
    }
    if (!Number.isInteger(keys.ntpPort) || keys.ntpPort < 1 || keys.ntpPort > 65535) {
      throw new InvalidArgumentError('ntpPort', keys.ntpPort, 'an integer in [1, 65535]');
    }
    const cookies: readonly Uint8Array[] = keys.cookies;
    const list: unknown = cookies;
    if (!Array.isArray(list)) {
      throw new InvalidArgumentError('cookies', cookies, 'an array of Uint8Array');
    }
    this.#c2s.fill(0);
    this.#s2c.fill(0);
    this.#c2s = new Uint8Array(keys.c2sKey);
    this.#s2c = new Uint8Array(keys.s2cKey);
    this.#ntpHost = keys.ntpHost;
    this.#ntpPort = keys.ntpPort;
    this.#server =
      isIP(keys.ntpHost) === 6
        ? `[${keys.ntpHost}]:${keys.ntpPort}`
        : `${keys.ntpHost}:${keys.ntpPort}`;
    this.#jar.clear();
    this.#jar.add(...cookies);
    this.#generation++;
    this.#nak = false;
    for (const entry of this.#requests.values()) {
      if (entry.state === 'pending') entry.state = 'abandoned';
    }
  }

  /**
   * NTP server the requests go to (negotiated in the key exchange).
   *
   * @example
   * ```ts
   * socket.send(request.bytes, session.ntpPort, session.ntpHost);
   * ```
   */
  get ntpHost(): string {
    return this.#ntpHost;
  }

  /**
   * NTP port the requests go to.
   *
   * @example
   * ```ts
   * session.ntpPort; // 123 unless negotiated
   * ```
   */
  get ntpPort(): number {
    return this.#ntpPort;
  }

  /**
   * Cookies left; each request uses one.
   *
   * @example
   * ```ts
   * console.log(`${session.cookies} cookies left`);
   * ```
   */
  get cookies(): number {
    return this.#jar.size;
  }

  /**
   * How many key exchanges this session has been given (1 after construction).
   *
   * @example
   * ```ts
   * session.keyGeneration; // 2 after one rekey()
   * ```
   */
  get keyGeneration(): number {
    return this.#generation;
  }

  /**
   * Whether a new key exchange is needed before the next request: no cookie is
   * left, or an NTS NAK said the server cannot use them.
   *
   * @example
   * ```ts
   * if (session.needsKeyExchange) session.rekey(await ntsKeyExchange({ host }));
   * ```
   */
  get needsKeyExchange(): boolean {
    return this.#nak || this.#jar.size === 0;
  }

  /**
   * Builds an NTS-protected request around an NTP client header: Unique
   * Identifier (32 random bytes), one cookie (used once, never again), Cookie
   * Placeholders asking for enough cookies to refill the jar, and the NTS
   * Authenticator — AEAD_AES_SIV_CMAC_256 under the C2S key over nothing, with
   * the header and the fields before it as associated data.
   *
   * @param header - The 48-byte NTPv4 client header (e.g. from `encodeNtpPacket`).
   * @returns The datagram and what the reply must match.
   * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When `header` is not 48 bytes of NTPv4.
   * @throws {@link NtsNoCookiesError} When the session needs a key exchange first.
   *
   * @example
   * ```ts
   * const request = session.buildRequest(encodeNtpPacket({ version: 4, mode: 3, transmitTimestamp: nonce }));
   * ```
   */
  buildRequest(header: Uint8Array): NtsRequest {
    if (!(header instanceof Uint8Array) || header.length !== NTP_PACKET_SIZE) {
      throw new InvalidArgumentError('header', header, `the ${NTP_PACKET_SIZE}-byte NTP header`);
    }
    if (((header[0] ?? 0) >> 3) % 8 !== 4) {
      throw new InvalidArgumentError(
        'header',
        header,
        'an NTPv4 header (extension fields need v4)',
      );
    }
    if (this.#nak) throw new NtsNoCookiesError(this.#server, 'the server sent an NTS NAK');
    const cookie = this.#jar.take();
    if (cookie === undefined) throw new NtsNoCookiesError(this.#server, 'all cookies were used');
    const uniqueId = this.#randomBytes(UNIQUE_ID_LENGTH);
    const nonce = this.#randomBytes(NONCE_LENGTH);
    // Ask for as many cookies as it takes to refill the jar, within a size budget.
    const wanted = Math.min(
      this.#jar.capacity - this.#jar.size,
      Math.max(1, Math.floor(MAX_TOTAL_COOKIE_BYTES / (cookie.length + 4))),
    );
    const fields = [
      encodeExtensionField(NtsExtensionFieldType.uniqueIdentifier, uniqueId),
      encodeExtensionField(NtsExtensionFieldType.cookie, cookie),
    ];
    for (let i = 1; i < wanted; i++) {
      fields.push(
        encodeExtensionField(
          NtsExtensionFieldType.cookiePlaceholder,
          new Uint8Array(cookie.length),
        ),
      );
    }
    cookie.fill(0);
    const associated = concatBytes([header, ...fields]);
    const sealed = aeadAesSivCmac256Seal(this.#c2s, nonce, associated, new Uint8Array(0));
    const bytes = concatBytes([
      associated,
      encodeAuthenticator(nonce, sealed, MIN_LAST_FIELD_LENGTH),
    ]);
    this.#requests.remember(hexOf(uniqueId), { state: 'pending', generation: this.#generation });
    return { bytes, uniqueId, cookiesRequested: wanted, generation: this.#generation };
  }

  /**
   * Verifies a reply to `request` (RFC 8915 §5.7) and takes the cookies it carries.
   * Checks, in order, each with its reason: extension fields well formed
   * (`nts-malformed`); NTS fields present at all (`nts-unauthenticated`); the
   * Unique Identifier is this request's (`nts-replay` for an earlier request's or
   * a second reply, `nts-uid-mismatch` otherwise); an NTS NAK (`nts-nak`: the
   * cookies are dropped and {@link needsKeyExchange} turns true); an
   * authenticator, last and well formed (`nts-unauthenticated`,
   * `nts-malformed`); its tag verifies under the S2C key over everything before
   * it (`nts-bad-tag`); its plaintext holds well-formed fields (`nts-malformed`).
   * Nothing changes unless every check passes, except the NAK.
   *
   * The NTP header (mode, stratum, origin, …) is not judged here: pass the same
   * bytes to `validateNtpReply` after this, as `queryNts` does.
   *
   * @param bytes - The received datagram.
   * @param request - The request it should answer.
   * @param server - Name for refusals; default the session's `ntpHost:ntpPort`.
   * @returns How many cookies it brought.
   * @throws {@link NtsRejectedError} With the reason.
   *
   * @example
   * ```ts
   * try { session.verifyReply(msg, request) } catch (e) { if (e instanceof NtsRejectedError) console.warn(e.reason) }
   * ```
   */
  verifyReply(bytes: Uint8Array, request: NtsRequest, server?: string): NtsVerifiedReply {
    const reject = (reason: NtsRejectionReason, detail: string): never => {
      throw new NtsRejectedError(server ?? this.#server, reason, detail);
    };
    if (!(bytes instanceof Uint8Array) || bytes.length < NTP_PACKET_SIZE) {
      return reject('nts-malformed', `${bytes?.length ?? 0} bytes, shorter than the NTP header`);
    }
    let fields: ExtensionField[];
    try {
      fields = parseExtensionFields(bytes);
    } catch (error) {
      return reject(
        'nts-malformed',
        error instanceof NtsExtensionFieldError ? error.message : String(error),
      );
    }
    if (fields.length === 0) {
      return reject('nts-unauthenticated', 'no extension fields: a plain NTP reply, not NTS');
    }
    const uids = fields.filter((f) => f.type === NtsExtensionFieldType.uniqueIdentifier);
    const auths = fields.filter((f) => f.type === NtsExtensionFieldType.authenticator);
    if (uids.length > 1) return reject('nts-malformed', `${uids.length} Unique Identifier fields`);
    if (auths.length > 1) return reject('nts-malformed', `${auths.length} authenticator fields`);
    const uid = uids[0];
    if (uid === undefined) return reject('nts-uid-mismatch', 'no Unique Identifier field');
    if (!equalBytes(uid.body, request.uniqueId)) {
      const known = this.#requests.get(hexOf(uid.body));
      if (known !== undefined && known.state !== 'pending') {
        return reject(
          'nts-replay',
          `it answers an earlier request (${known.state}${known.generation === this.#generation ? '' : ', older keys'})`,
        );
      }
      return reject('nts-uid-mismatch', 'the Unique Identifier is not the one sent');
    }
    const state = this.#requests.get(hexOf(request.uniqueId));
    if (state === undefined || state.state === 'answered') {
      return reject('nts-replay', 'the request was already answered');
    }
    if (state.state === 'abandoned' || request.generation !== this.#generation) {
      return reject('nts-replay', 'the request was abandoned or built with older keys');
    }
    const auth = auths[0];
    if (auth === undefined) {
      const view = new DataView(bytes.buffer, bytes.byteOffset, NTP_PACKET_SIZE);
      if (view.getUint8(1) === 0 && view.getUint32(12) === NTS_NAK) {
        this.#nak = true;
        this.#jar.clear();
        return reject(
          'nts-nak',
          'NTS NAK (kiss code NTSN): the server cannot use the cookie; cookies dropped, a new key exchange is needed',
        );
      }
      return reject(
        'nts-unauthenticated',
        'no NTS Authenticator field: the reply is not authenticated',
      );
    }
    if (auth.offset + auth.length !== bytes.length) {
      return reject('nts-malformed', 'the authenticator is not the last field');
    }
    let nonce: Uint8Array;
    let ciphertext: Uint8Array;
    try {
      ({ nonce, ciphertext } = decodeAuthenticator(auth.body));
    } catch (error) {
      return reject(
        'nts-malformed',
        error instanceof NtsExtensionFieldError ? error.message : String(error),
      );
    }
    const plaintext = aeadAesSivCmac256Open(
      this.#s2c,
      nonce,
      bytes.subarray(0, auth.offset),
      ciphertext,
    );
    if (plaintext === undefined) {
      return reject('nts-bad-tag', 'the authenticator does not verify under the S2C key');
    }
    let inner: ExtensionField[];
    try {
      inner = parseExtensionFields(plaintext, { start: 0, minLength: 4 });
    } catch (error) {
      return reject(
        'nts-malformed',
        `encrypted fields: ${error instanceof NtsExtensionFieldError ? error.message : String(error)}`,
      );
    }
    const cookies = inner.filter((f) => f.type === NtsExtensionFieldType.cookie).map((f) => f.body);
    state.state = 'answered';
    this.#jar.add(...cookies);
    return { cookiesReceived: cookies.length, cookiesHeld: this.#jar.size };
  }

  /**
   * Marks a request as given up (timed out): a late reply to it is refused as
   * `nts-replay`.
   *
   * @param request - The request.
   *
   * @example
   * ```ts
   * session.abandon(request);
   * ```
   */
  abandon(request: NtsRequest): void {
    const entry = this.#requests.get(hexOf(request.uniqueId));
    if (entry?.state === 'pending') entry.state = 'abandoned';
  }

  #randomBytes(length: number): Uint8Array {
    const bytes = this.#random(length);
    if (!(bytes instanceof Uint8Array) || bytes.length !== length) {
      throw new InvalidArgumentError('random', bytes, `${length} bytes`);
    }
    return new Uint8Array(bytes);
  }
}
