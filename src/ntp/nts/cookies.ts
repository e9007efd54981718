/**
 * The NTS cookie jar (RFC 8915 §5.7): cookies are opaque to the client, each
 * is sent once (reusing one would let an observer link requests), the oldest
 * first, and replies refill the jar up to its capacity.
 *
 * @module
 */
import { requireInteger } from '../../_internals/validate.js';

/**
 * How many cookies a session keeps, and a fresh key exchange hands out (RFC 8915
 * recommends 8).
 *
 * @example
 * ```ts
 * const jar = new CookieJar(NTS_MAX_COOKIES);
 * ```
 */
export const NTS_MAX_COOKIES: number = 8;

/**
 * Longest cookie accepted, in bytes (servers use about 100).
 *
 * @example
 * ```ts
 * if (cookie.length > NTS_MAX_COOKIE_LENGTH) ignore();
 * ```
 */
export const NTS_MAX_COOKIE_LENGTH: number = 1024;

/**
 * Whether a cookie can be carried exactly in an extension field: not empty, at
 * most {@link NTS_MAX_COOKIE_LENGTH} bytes, and a multiple of 4 (a field pads its
 * body to 4 bytes, and a padded cookie would no longer be the server's cookie).
 *
 * @param cookie - The cookie bytes.
 * @returns `true` when usable.
 *
 * @example
 * ```ts
 * const usable = cookies.filter(isUsableCookie);
 * ```
 */
export function isUsableCookie(cookie: Uint8Array): boolean {
  return (
    cookie instanceof Uint8Array &&
    cookie.length > 0 &&
    cookie.length <= NTS_MAX_COOKIE_LENGTH &&
    cookie.length % 4 === 0
  );
}

/**
 * A first-in, first-out jar of at most `capacity` cookies, each handed out once.
 *
 * @example
 * ```ts
 * const jar = new CookieJar();
 * jar.add(...keyExchange.cookies);
 * const cookie = jar.take(); // undefined when empty
 * ```
 */
export class CookieJar {
  readonly #capacity: number;
  #cookies: Uint8Array[] = [];

  /**
   * @param capacity - At most this many cookies are kept; default 8.
   * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When `capacity` is not an integer ≥ 1.
   */
  constructor(capacity: number = NTS_MAX_COOKIES) {
    this.#capacity = requireInteger('capacity', capacity, 1);
  }

  /**
   * How many cookies the jar holds at most.
   *
   * @example
   * ```ts
   * jar.capacity; // 8
   * ```
   */
  get capacity(): number {
    return this.#capacity;
  }

  /**
   * How many cookies are in the jar.
   *
   * @example
   * ```ts
   * if (jar.size === 0) await rekey();
   * ```
   */
  get size(): number {
    return this.#cookies.length;
  }

  /**
   * Adds cookies (copies) in order; unusable ones and those beyond capacity are dropped.
   *
   * @param cookies - Cookies from a key exchange or a reply.
   * @returns How many were kept.
   *
   * @example
   * ```ts
   * jar.add(...newCookies);
   * ```
   */
  add(...cookies: Uint8Array[]): number {
    let kept = 0;
    for (const cookie of cookies) {
      if (this.#cookies.length >= this.#capacity) break;
      if (!isUsableCookie(cookie)) continue;
      this.#cookies.push(new Uint8Array(cookie));
      kept++;
    }
    return kept;
  }

  /**
   * Removes and returns the oldest cookie; it is never handed out again.
   *
   * @returns The cookie, or `undefined` when the jar is empty.
   *
   * @example
   * ```ts
   * const cookie = jar.take();
   * ```
   */
  take(): Uint8Array | undefined {
    return this.#cookies.shift();
  }

  /**
   * Drops every cookie (after an NTS NAK, or before new keys).
   *
   * @example
   * ```ts
   * jar.clear();
   * ```
   */
  clear(): void {
    for (const cookie of this.#cookies) cookie.fill(0);
    this.#cookies = [];
  }
}
