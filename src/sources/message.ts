/**
 * Time over a channel the app already has open (a WebSocket, a worker port, a
 * WebRTC data channel): the time exchange of `exchange-source.ts` carried as
 * messages, answered on the other end by `answerTimeRequest`.
 *
 * @module
 */
import { InvalidArgumentError, TimeExchangeError } from '../errors.js';
import { timeReplyCandidate, timeRequest, type TimeRequest } from '../protocol/messages.js';
import {
  describeFailure,
  exchangeTimeSource,
  resolveExchangeOptions,
  type TimeExchangeOptions,
} from './exchange-source.js';
import type { DisposableTimeSource } from './types.js';

/**
 * Options of {@link messageTimeSource}.
 *
 * @example
 * ```ts
 * // Client and server in one process, a queued callback for the channel (server: a synchronized TrueClock):
 * let deliver: (message: unknown) => void = () => undefined;
 * const client = new TrueClock({
 *   source: messageTimeSource({
 *     send: (request) => queueMicrotask(() => deliver(answerTimeRequest(server, request))),
 *     onMessage: (listener) => {
 *       deliver = listener;
 *       return () => (deliver = () => undefined);
 *     },
 *   }),
 * });
 * (await client.ready()).uncertaintyMs; // the server's ε plus a few µs of round trip
 * ```
 */
export interface MessageTimeSourceOptions extends TimeExchangeOptions {
  /** Sends a request to the server; serialize it however the channel needs. */
  readonly send: (request: TimeRequest) => void;
  /**
   * Registers a listener for every incoming message (objects or JSON strings;
   * anything that is not a time reply is ignored) and returns a function that
   * unregisters it.
   */
  readonly onMessage: (listener: (message: unknown) => void) => () => void;
}

/**
 * A {@link TimeSource} that syncs over a channel the app already has open (a
 * WebSocket, a worker port, a WebRTC data channel): the same four-timestamp
 * exchange and bound as {@link httpTimeSource}, with the server answering through
 * {@link answerTimeRequest}. Replies that do not echo a pending nonce are reported
 * as `'nonce-mismatch'` and do not end the exchange; a missing reply is a
 * `'timeout'`; a throwing `send` is `'network'`. Problems carry an
 * `TimeExchangeError`; none of them yields a sample. A sample that contradicts the
 * kept ones beyond `maxDriftPpm` (the server's clock stepped, or the host slewed
 * the local monotonic clock) replaces them and is reported as
 * `'inconsistent-sample'` (no error: the new sample is delivered).
 *
 * Samples carry `evidenceFrom` = T1 of their exchange. The source has
 * `maxSampleGapMs` = `pollIntervalMs + samples · timeoutMs` and
 * `invalidate(monotonicAt)`, which `TrueClock` calls when it sees a suspend,
 * VM pause or clock step: only evidence gathered after the disruption may end
 * it, so samples gathered at or before `monotonicAt` are forgotten, a reply to
 * a request sent before it is dropped, and a fresh poll starts at once.
 *
 * @param options - How to send and receive, and the exchange tuning.
 * @returns A source to pass to `new TrueClock({ source })`.
 * @throws {@link InvalidArgumentError} When `send`/`onMessage` are not functions or a tuning option is out of range.
 *
 * @example
 * ```ts
 * const ws = new WebSocket('wss://example.com/live');
 * const source = messageTimeSource({
 *   send: (request) => ws.send(JSON.stringify(request)),
 *   onMessage: (listener) => {
 *     const handler = (event: MessageEvent) => listener(event.data);
 *     ws.addEventListener('message', handler);
 *     return () => ws.removeEventListener('message', handler);
 *   },
 * });
 * const clock = new TrueClock({ source });
 * await clock.ready();
 * ```
 */
export function messageTimeSource(options: MessageTimeSourceOptions): DisposableTimeSource {
  if (typeof options?.send !== 'function') {
    throw new InvalidArgumentError('send', options?.send, 'a function that sends a request');
  }
  if (typeof options.onMessage !== 'function') {
    throw new InvalidArgumentError(
      'onMessage',
      options.onMessage,
      'a function that registers a message listener',
    );
  }
  const name = options.name ?? 'message';
  const config = resolveExchangeOptions(options, name, `message channel ${name}`);
  const { send, onMessage } = options;
  return exchangeTimeSource(config, (report) => {
    let pending: { nonce: string; resolve: (reply: unknown) => void } | undefined;
    const unlisten = onMessage((message) => {
      const reply = timeReplyCandidate(message);
      if (reply === undefined) return;
      if (pending !== undefined && reply.nonce === pending.nonce) {
        const { resolve } = pending;
        pending = undefined;
        resolve(reply);
        return;
      }
      // A stale or forged reply is reported but does not end the exchange.
      report(
        new TimeExchangeError(
          config.where,
          'nonce-mismatch',
          pending === undefined
            ? 'a reply arrived with no request pending'
            : 'a reply does not echo the pending nonce',
        ),
      );
    });
    return {
      roundTrip(nonce, signal) {
        return new Promise<unknown>((resolve, reject) => {
          pending = { nonce, resolve };
          signal.addEventListener(
            'abort',
            () => {
              if (pending?.nonce === nonce) pending = undefined;
              reject(new TimeExchangeError(config.where, 'timeout', 'the exchange was aborted'));
            },
            { once: true },
          );
          try {
            send(timeRequest(nonce));
          } catch (error) {
            pending = undefined;
            reject(new TimeExchangeError(config.where, 'network', describeFailure(error)));
          }
        });
      },
      close() {
        pending = undefined;
        unlisten();
      },
    };
  });
}
