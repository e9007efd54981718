/**
 * The end of `ntpSource`'s first round, for `NtpSource.firstRound()`: every
 * server has finished its first poll (its initial burst answered, or it timed
 * out, or it refused for good), and the selection the round came to.
 *
 * @module
 */
import { SourceUnavailableError } from '../errors.js';
import { selectOffset, type Selection } from './select.js';
import type { ServerRecord } from './source-server.js';

/**
 * Which servers have finished a poll since the source first started, and the
 * callers waiting for all of them.
 * @internal
 */
export class FirstRound {
  readonly #name: string;
  readonly #servers: readonly ServerRecord[];
  readonly #maxFalsetickers: number | undefined;
  readonly #polled = new Set<ServerRecord>();
  readonly #waiters: {
    readonly resolve: (selection: Selection) => void;
    readonly reject: (error: Error) => void;
  }[] = [];
  #result: Selection | undefined;
  #closed: SourceUnavailableError | undefined;

  constructor(name: string, servers: readonly ServerRecord[], maxFalsetickers: number | undefined) {
    this.#name = name;
    this.#servers = servers;
    this.#maxFalsetickers = maxFalsetickers;
  }

  /** The round's selection once it ends; rejected if the source closes first. */
  wait(): Promise<Selection> {
    if (this.#result !== undefined) return Promise.resolve(this.#result);
    if (this.#closed !== undefined) return Promise.reject(this.#closed);
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /**
   * `polled` finished a poll that was not cut short; `selection` is the source's
   * latest. Ends the round once every server has finished one or was stopped
   * (kiss code DENY or RSTR).
   */
  polled(polled: readonly ServerRecord[], selection: Selection | undefined): void {
    if (this.#result !== undefined || this.#closed !== undefined) return;
    for (const s of polled) this.#polled.add(s);
    if (!this.#servers.every((s) => s.stopped || this.#polled.has(s))) return;
    // No server answered, so no selection ran: say so in the same shape.
    const f = this.#maxFalsetickers;
    const result =
      selection ??
      selectOffset([], {
        configured: this.#servers.length,
        ...(f === undefined ? {} : { maxFalsetickers: f }),
      });
    this.#result = result;
    for (const w of this.#waiters.splice(0)) w.resolve(result);
  }

  /** The source closed: a round that has not ended never will. */
  close(): void {
    if (this.#result !== undefined || this.#closed !== undefined) return;
    const error = new SourceUnavailableError(this.#name, 'the NTP source was closed');
    this.#closed = error;
    for (const w of this.#waiters.splice(0)) w.reject(error);
  }
}
