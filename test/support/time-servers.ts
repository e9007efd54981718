/**
 * Server clocks for the time-exchange tests, in a SimulatedClock's virtual
 * universe: a real TrueClock synced by hand, and a fake `{ now() }` clock whose
 * error and claimed ε the test chooses; and the requests and options every time
 * server (the Node endpoint and the Fetch-API handler alike) must refuse.
 */
import { expect, onTestFinished } from 'vitest';
import type {
  TimeHandlerOptions,
  TimeReading,
  TimeReply,
  TimeServerClock,
  TrueClock,
} from '../../src/index.js';
import {
  manualSource,
  truthfulSample,
  type ManualSource,
  type SimulatedClock,
} from '../../src/testing/index.js';
import { trueClockOn, type SimulatedTrueClockOptions } from './clock.js';
import { centredReading } from './readings.js';

/** A server clock synced by hand: its manual source, and `sync()` to push a truthful sample. */
export interface SyncedServerClock {
  readonly clock: TrueClock;
  readonly source: ManualSource;
  readonly sync: () => void;
}

/**
 * A server TrueClock in the same virtual universe (no periodic watchdog), synced
 * by `sync()` to within `errorMs` (the sample's error is `fraction · errorMs`).
 * Close it when done.
 */
export function syncedServerClock(
  sim: SimulatedClock,
  errorMs = 1,
  fraction = 0,
  options: SimulatedTrueClockOptions = {},
): SyncedServerClock {
  const source = manualSource(1000);
  const clock = trueClockOn(sim, source, { watchdogIntervalMs: 0, ...options });
  return { clock, source, sync: () => source.push(truthfulSample(sim, errorMs, fraction)) };
}

/** {@link syncedServerClock}, closed when the running test finishes. */
export function testServerClock(...args: Parameters<typeof syncedServerClock>): SyncedServerClock {
  const server = syncedServerClock(...args);
  onTestFinished(() => server.clock.close());
  return server;
}

/** A fake server clock: truth + `errorMs()`, claiming ±`epsilonMs`, with the given status. */
export function fakeServerClock(
  sim: SimulatedClock,
  epsilonMs: number,
  errorMs: () => number,
  status: TimeReading['status'] = 'synchronized',
): TimeServerClock {
  return { now: () => centredReading(sim.trueNow() + errorMs(), epsilonMs, status) };
}

/** A well-formed request nonce (32 lowercase hex digits). */
export const TEST_NONCE = '0123456789abcdef0123456789abcdef';

/** A well-formed time request message, as an object. */
export const TEST_REQUEST = {
  type: 'chronobound.time-request',
  v: 1,
  nonce: TEST_NONCE,
} as const;

/**
 * Messages that are not a time request, which a server answering over a
 * message channel must leave to the app (`[what, message]`).
 */
export const NOT_TIME_REQUESTS: readonly (readonly [string, unknown])[] = [
  ['undefined', undefined],
  ['null', null],
  ['a number', 42],
  ['an app message', { type: 'chat', text: 'hi' }],
  ['an app message as text', '{"type":"chat"}'],
  ['text that is not JSON', 'hello'],
  ['a reply', { ...TEST_REQUEST, type: 'chronobound.time-reply' }],
  ['version 2', { ...TEST_REQUEST, v: 2 }],
  ['no nonce', { type: 'chronobound.time-request', v: 1 }],
  ['a short nonce', { ...TEST_REQUEST, nonce: 'abc' }],
  ['an uppercase nonce', { ...TEST_REQUEST, nonce: TEST_NONCE.toUpperCase() }],
  ['a 1 MB nonce', { ...TEST_REQUEST, nonce: 'a'.repeat(1 << 20) }],
  ['a numeric nonce', { ...TEST_REQUEST, nonce: 1234 }],
  ['a nonce with a payload', { ...TEST_REQUEST, nonce: `${TEST_NONCE}<script>` }],
  ['a 2 kB JSON text', JSON.stringify({ ...TEST_REQUEST, pad: 'x'.repeat(2000) })],
];

/**
 * Queries every time server must refuse with 400 (the Node endpoint and the
 * Fetch-API handler alike): `[what, query string]`.
 */
export const BAD_TIME_QUERIES: readonly (readonly [string, string])[] = [
  ['no query', ''],
  ['an empty query', '?'],
  ['an empty nonce', '?nonce='],
  ['a short nonce', '?nonce=abc'],
  ['an uppercase nonce', `?nonce=${TEST_NONCE.toUpperCase()}`],
  ['33 digits', `?nonce=${TEST_NONCE}0`],
  ['a non-hex nonce', `?nonce=${'g'.repeat(32)}`],
  ['an extra parameter after', `?nonce=${TEST_NONCE}&x=1`],
  ['an extra parameter before', `?x=1&nonce=${TEST_NONCE}`],
  ['two nonces', `?nonce=${TEST_NONCE}&nonce=${TEST_NONCE}`],
  ['an encoded nonce', `?nonce=%30${TEST_NONCE.slice(1)}`],
  ['another parameter name', `?n=${TEST_NONCE}`],
  ['a script', `?nonce=<script>alert(1)</script>`],
  ['an 8 kB nonce', `?nonce=${'a'.repeat(8192)}`],
];

/** Paths every time server serving `/time` answers with 404. */
export const NOT_TIME_PATHS: readonly string[] = [
  '/',
  '/time/',
  '/times',
  '/TIME',
  '/time/x',
  '/api/time',
  '//time',
  `/x?nonce=${TEST_NONCE}`,
];

/** Options every time server refuses, naming the argument: `[argument, options]`. */
export const BAD_TIME_SERVER_OPTIONS: readonly (readonly [string, TimeHandlerOptions])[] = [
  ['path', { path: 'time' }],
  ['path', { path: '/time?x=1' }],
  ['path', { path: '/ti me' }],
  ['path', { path: '/time#x' }],
  ['maxBodyBytes', { maxBodyBytes: -1 }],
  ['maxBodyBytes', { maxBodyBytes: 1.5 }],
  ['allowOrigin', { allowOrigin: 'https://a\r\nSet-Cookie: x=1' }],
  ['allowOrigin', { allowOrigin: '' }],
];

/** A reply that carries times: synchronized, echoing `nonce`. */
function expectSynchronizedReply(reply: TimeReply, nonce: string): void {
  expect(reply).toMatchObject({
    type: 'chronobound.time-reply',
    v: 1,
    nonce,
    status: 'synchronized',
  });
}

/**
 * Checks a 200 answer to `GET /time?nonce=…` from a time server with default
 * options — JSON, no-store, nosniff, no CORS header, a body of exactly 256
 * characters and bytes with the fields in wire order, a synchronized reply that
 * echoes `nonce` — and returns the reply.
 */
export async function expectTimeReplyResponse(
  res: Response,
  nonce: string = TEST_NONCE,
): Promise<TimeReply> {
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('application/json');
  expect(res.headers.get('cache-control')).toBe('no-store');
  expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  expect(res.headers.get('access-control-allow-origin')).toBeNull();
  const text = await res.text();
  expect(text).toHaveLength(256);
  expect(new TextEncoder().encode(text)).toHaveLength(256);
  const reply = JSON.parse(text) as TimeReply;
  expect(Object.keys(reply)).toEqual(['type', 'v', 'nonce', 't2', 't3', 'errorMs', 'status']);
  expectSynchronizedReply(reply, nonce);
  return reply;
}

/**
 * Checks that `reply` was stamped by `clock` just now (no virtual time passed
 * since): T2 at the clock's estimate, T3 not before it, and ε the clock's own
 * rounded up to the µs plus 1 µs for the rounding of T2 and T3.
 */
export function expectStampedBy(
  reply: TimeReply,
  clock: TimeServerClock,
  nonce: string = TEST_NONCE,
): void {
  expectSynchronizedReply(reply, nonce);
  const now = clock.now();
  expect(reply.t2).toBeCloseTo(now.estimate, 3);
  expect(reply.t3).toBeGreaterThanOrEqual(reply.t2);
  expect(reply.errorMs).toBeGreaterThanOrEqual(now.uncertaintyMs + 0.001);
  expect(reply.errorMs).toBeLessThanOrEqual(now.uncertaintyMs + 0.002);
}
