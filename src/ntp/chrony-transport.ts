/**
 * The cmdmon transport: one `tracking` request/reply exchange with chronyd over
 * UDP, with resends, a timeout, abort, and a random sequence number that a
 * reply must echo.
 *
 * @module
 */
import { createSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { AbortError, ChronyTimeoutError, SourceUnavailableError } from '../errors.js';
import { unrefTimer } from '../_internals/timers.js';
import type { MonotonicSource, Scheduler } from '../clock/types.js';
import type { ChronyTarget } from './chrony-options.js';
import {
  decodeChronyReplyHeader,
  decodeChronyTrackingReply,
  encodeChronyTrackingRequest,
  type ChronyTracking,
} from './chrony-protocol.js';

/** A lost datagram is resent this many times within the timeout. */
const RESENDS = 2;

/**
 * One request/reply exchange, stamped on the monotonic clock.
 * @internal
 */
export interface TrackingExchange<T> {
  readonly tracking: ChronyTracking;
  /** Monotonic reading just before the first request was sent. */
  readonly sentAt: number;
  /** Monotonic reading when the reply arrived. */
  readonly receivedAt: number;
  /** What `beforeSend` returned. */
  readonly prepared: T;
}

/**
 * How one tracking exchange runs.
 * @internal
 */
export interface TrackingExchangeOptions<T> {
  readonly timeoutMs: number;
  readonly signal: AbortSignal | undefined;
  readonly monotonic: MonotonicSource;
  readonly scheduler: Scheduler;
  /** Background polls must not keep the process alive. */
  readonly background: boolean;
  /** Runs synchronously right before the first send. */
  readonly beforeSend: () => T;
}

/**
 * Resolves the target and performs one tracking exchange: the request is resent
 * twice within the timeout, and only a reply from chronyd's address and port that
 * echoes the random sequence number is taken.
 *
 * @throws {@link ChronyTimeoutError} When no reply arrives within `timeoutMs`.
 * @throws {@link ChronyProtocolError} When chronyd refuses or the reply is malformed.
 * @throws {@link chronobound!SourceUnavailableError | SourceUnavailableError} When the host cannot be resolved or the socket fails.
 * @throws {@link chronobound!AbortError | AbortError} When `signal` aborts.
 * @internal
 */
export async function exchangeTracking<T>(
  target: ChronyTarget,
  options: TrackingExchangeOptions<T>,
): Promise<TrackingExchange<T>> {
  const operation = `chrony tracking request to ${target.label}`;
  if (options.signal?.aborted) throw new AbortError(operation, options.signal.reason);
  let address = target.host;
  let family = isIP(target.host);
  if (family === 0) {
    try {
      const resolved = await lookup(target.host);
      address = resolved.address;
      family = resolved.family;
    } catch (error) {
      throw new SourceUnavailableError(
        `chrony ${target.label}`,
        `cannot resolve ${JSON.stringify(target.host)}`,
        { cause: error },
      );
    }
    if (options.signal?.aborted) throw new AbortError(operation, options.signal.reason);
  }
  return sendAndReceive(target, address, family === 6 ? 6 : 4, operation, options);
}

function sendAndReceive<T>(
  target: ChronyTarget,
  address: string,
  family: 4 | 6,
  operation: string,
  options: TrackingExchangeOptions<T>,
): Promise<TrackingExchange<T>> {
  const { monotonic, scheduler, signal, timeoutMs } = options;
  return new Promise<TrackingExchange<T>>((resolve, reject) => {
    const socket = createSocket(family === 6 ? 'udp6' : 'udp4');
    if (options.background) socket.unref();
    const sequence = randomSequence();
    const timers: unknown[] = [];
    let settled = false;
    let attempt = 0;
    let sentAt = Number.NaN;
    let prepared: T | undefined;

    const finish = (error: Error | undefined, exchange?: TrackingExchange<T>): void => {
      if (settled) return;
      settled = true;
      for (const timer of timers) scheduler.clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      try {
        socket.close();
      } catch {
        // Already closed by a failed bind; nothing to free.
      }
      if (error) reject(error);
      else resolve(exchange as TrackingExchange<T>);
    };
    const onAbort = (): void => finish(new AbortError(operation, signal?.reason));
    const later = (callback: () => void, ms: number): void => {
      const timer = scheduler.setTimeout(callback, ms);
      if (options.background) unrefTimer(timer);
      timers.push(timer);
    };
    const send = (): void => {
      const request = encodeChronyTrackingRequest(sequence, attempt++);
      socket.send(request, target.port, address, (error) => {
        if (error) {
          finish(
            new SourceUnavailableError(`chrony ${target.label}`, `send failed: ${error.message}`, {
              cause: error,
            }),
          );
        }
      });
    };

    socket.on('error', (error) =>
      finish(
        new SourceUnavailableError(`chrony ${target.label}`, `socket error: ${error.message}`, {
          cause: error,
        }),
      ),
    );
    socket.on('message', (message, remote) => {
      if (settled) return;
      const receivedAt = monotonic.now();
      // Only chronyd's address and port may answer; anything else is ignored.
      if (remote.address !== address || remote.port !== target.port) return;
      let header;
      try {
        header = decodeChronyReplyHeader(message);
      } catch {
        return;
      }
      // A reply to an earlier request (or a guess) is not ours: keep waiting.
      if (header.packetType !== 2 || header.sequence !== sequence) return;
      let tracking: ChronyTracking;
      try {
        tracking = decodeChronyTrackingReply(message, sequence);
      } catch (error) {
        finish(error as Error);
        return;
      }
      finish(undefined, { tracking, sentAt, receivedAt, prepared: prepared as T });
    });
    signal?.addEventListener('abort', onAbort, { once: true });
    later(() => finish(new ChronyTimeoutError(target.label, timeoutMs)), timeoutMs);
    socket.bind(0, () => {
      if (settled) return;
      try {
        prepared = options.beforeSend();
      } catch (error) {
        finish(error instanceof Error ? error : new Error(String(error)));
        return;
      }
      sentAt = monotonic.now();
      send();
      for (let i = 1; i <= RESENDS; i++) {
        later(send, (timeoutMs * i) / (RESENDS + 1));
      }
    });
  });
}

/** A random 32-bit sequence number: a reply must echo it, so it cannot be guessed. */
function randomSequence(): number {
  const word = new Uint32Array(1);
  globalThis.crypto.getRandomValues(word);
  return word[0] ?? 0;
}
