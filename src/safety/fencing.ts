/**
 * Fencing tokens: a strictly increasing number issued with every lease, and a
 * storage-side guard that rejects writes carrying an older one (DDIA Fig. 8-5).
 *
 * @module
 */
import { InvalidArgumentError, StaleFencingTokenError } from '../errors.js';

/**
 * Where a {@link FencingTokenIssuer} keeps the last token it issued, so that a
 * restarted issuer continues above it. `store` must be durable when it returns
 * (e.g. write, fsync, rename; or a database row).
 *
 * @example
 * ```ts
 * const disk: bigint[] = [41n]; // what the previous run stored
 * const issuer = new FencingTokenIssuer({
 *   store: { load: () => disk.at(-1), store: (token) => void disk.push(token) },
 * });
 * issuer.next(); //=> 42n
 * disk;          //=> [41n, 42n] (stored before it was handed out)
 * ```
 */
export interface FencingTokenStore {
  /** The last token stored, or `undefined` on first start. */
  load(): bigint | undefined;
  /** Durably records `token` as issued. Throwing aborts the issue. */
  store(token: bigint): void;
}

/**
 * Options of {@link FencingTokenIssuer}.
 *
 * @example
 * ```ts
 * new FencingTokenIssuer({ start: 100n }).next(); //=> 100n (nothing stored yet)
 * ```
 */
export interface FencingTokenIssuerOptions {
  /** Persistence, so tokens keep increasing across restarts. */
  readonly store?: FencingTokenStore;
  /**
   * The first token issued when nothing is stored.
   *
   * @defaultValue `1n`
   */
  readonly start?: bigint;
}

/**
 * Issues strictly increasing `bigint` fencing tokens, one per lease grant. With
 * a store, each token is persisted before it is returned, so a restarted issuer
 * never repeats or goes below a token it issued.
 *
 * @example
 * ```ts
 * const issuer = new FencingTokenIssuer({ store });
 * const token = issuer.next(); // 1n, then 2n, ...
 * ```
 */
export class FencingTokenIssuer {
  readonly #store: FencingTokenStore | undefined;
  #last: bigint | undefined;
  #next: bigint;

  /**
   * @param options - Persistence and the first token.
   * @throws {@link InvalidArgumentError} When `start` is not a bigint ≥ 0 or the store loads something
   *   other than a bigint ≥ 0.
   */
  constructor(options: FencingTokenIssuerOptions = {}) {
    const start = options.start ?? 1n;
    if (typeof start !== 'bigint' || start < 0n) {
      throw new InvalidArgumentError('start', start, 'a bigint ≥ 0n');
    }
    this.#store = options.store;
    const loaded = this.#store?.load();
    if (loaded !== undefined && (typeof loaded !== 'bigint' || loaded < 0n)) {
      throw new InvalidArgumentError('store.load()', loaded, 'a bigint ≥ 0n or undefined');
    }
    this.#last = loaded;
    this.#next = loaded === undefined || loaded < start ? start : loaded + 1n;
  }

  /**
   * Issues the next token. With a store it is stored first; if storing throws,
   * no token is issued and the next call tries the same value again.
   *
   * @returns A token greater than every token issued before.
   * @throws {@link https://developer.mozilla.org/en-US/docs/Web/JavaScript/Reference/Global_Objects/Error | Error} Whatever the store's `store()` throws.
   *
   * @example
   * ```ts
   * const lease = Lease.acquire(clock, 10_000, { token: issuer.next() });
   * ```
   */
  next(): bigint {
    const token = this.#next;
    this.#store?.store(token);
    this.#last = token;
    this.#next = token + 1n;
    return token;
  }

  /**
   * The last token issued (or loaded from the store), if any.
   *
   * @example
   * ```ts
   * issuer.last; // undefined before the first next()
   * ```
   */
  get last(): bigint | undefined {
    return this.#last;
  }
}

/**
 * The storage side of fencing: remembers, per resource, the highest token it
 * accepted, and rejects writes with an older token. Equal tokens pass (a
 * holder writes many times under one lease). In memory; for a database, use the
 * conditional `UPDATE … WHERE token <= :token` recipe in docs/safety.md so the
 * check and the write are one atomic statement.
 *
 * @example
 * ```ts
 * const guard = new FencingGuard();
 * guard.check('file-42', 33n); // ok
 * guard.check('file-42', 34n); // ok
 * guard.check('file-42', 33n); // throws StaleFencingTokenError
 * ```
 */
export class FencingGuard {
  readonly #highest = new Map<string, bigint>();

  /**
   * Accepts `token` for `resource` (recording it as the highest seen) or
   * rejects it. Check and record happen together, so call it in the same
   * synchronous step as the write it protects.
   *
   * @param resource - What is written (a key, a file, a row).
   * @param token - The writer's fencing token (a bigint, or a safe non-negative integer).
   * @throws {@link StaleFencingTokenError} When a higher token was already accepted for `resource`.
   * @throws {@link InvalidArgumentError} When `resource` is not a string or `token` not a non-negative integer.
   *
   * @example
   * ```ts
   * guard.check(key, request.token);
   * store.set(key, request.value);
   * ```
   */
  check(resource: string, token: bigint | number): void {
    const t = toToken(token);
    const highest = this.#highest.get(requireResource(resource));
    if (highest !== undefined && t < highest) {
      throw new StaleFencingTokenError(resource, t, highest);
    }
    this.#highest.set(resource, t);
  }

  /**
   * Whether `token` would be accepted for `resource`, without recording it.
   *
   * @param resource - What is written.
   * @param token - The writer's fencing token.
   * @returns `false` when a higher token was already accepted.
   * @throws {@link InvalidArgumentError} When `resource` is not a string or `token` not a non-negative integer.
   *
   * @example
   * ```ts
   * if (!guard.accepts(key, token)) reply(409); // a newer holder already wrote: refuse
   * ```
   */
  accepts(resource: string, token: bigint | number): boolean {
    const highest = this.#highest.get(requireResource(resource));
    return highest === undefined || toToken(token) >= highest;
  }

  /**
   * The highest token accepted for `resource`, if any.
   *
   * @param resource - What is written.
   * @returns The token, or `undefined` when nothing was written yet.
   *
   * @example
   * ```ts
   * guard.highest('file-42'); // 34n
   * ```
   */
  highest(resource: string): bigint | undefined {
    return this.#highest.get(resource);
  }
}

function toToken(token: bigint | number): bigint {
  if (typeof token === 'bigint' && token >= 0n) return token;
  if (typeof token === 'number' && Number.isSafeInteger(token) && token >= 0) return BigInt(token);
  throw new InvalidArgumentError('token', token, 'a bigint ≥ 0n or a safe integer ≥ 0');
}

function requireResource(resource: string): string {
  if (typeof resource !== 'string') {
    throw new InvalidArgumentError('resource', resource, 'a string naming what is written');
  }
  return resource;
}
