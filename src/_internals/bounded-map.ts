/**
 * A `Map` that remembers the `limit` keys set last through {@link BoundedMap.remember},
 * for histories of recent requests.
 * @internal
 */
export class BoundedMap<K, V> extends Map<K, V> {
  readonly #limit: number;

  constructor(limit: number) {
    super();
    this.#limit = limit;
  }

  /** Sets `key` as the newest entry (moved to the end if it was there), then drops the oldest beyond the limit. */
  remember(key: K, value: V): void {
    this.delete(key);
    this.set(key, value);
    if (this.size > this.#limit) {
      const oldest = this.keys().next();
      if (oldest.done !== true) this.delete(oldest.value);
    }
  }
}
