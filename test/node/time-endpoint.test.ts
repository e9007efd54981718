import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  InvalidArgumentError,
  TrueClock,
  httpTimeSource,
  intervalContains,
  systemMonotonic,
  type TimeServerClock,
} from '../../src/index.js';
import { timeEndpoint, type TimeEndpointOptions } from '../../src/node/index.js';
import { SimulatedClock, manualSource, truthfulSample } from '../../src/testing/index.js';
import { trueClockOn } from '../support/clock.js';
import { expectInvalidArgument } from '../support/errors.js';
import { serverTruth } from '../support/server-truth.js';
import {
  BAD_TIME_QUERIES,
  BAD_TIME_SERVER_OPTIONS,
  NOT_TIME_PATHS,
  TEST_NONCE,
  expectTimeReplyResponse,
} from '../support/time-servers.js';

const NONCE = TEST_NONCE;
const OFFSET_MS = 5_000;

/**
 * The server's truth, by definition: its monotonic clock plus a fixed offset
 * 5 s ahead of this machine's wall clock. Its TrueClock is synced to exactly
 * that, claiming ±2 ms.
 */
const truth = serverTruth(OFFSET_MS);

const servers: Server[] = [];
const clocks: TrueClock[] = [];

async function serve(
  clock: TimeServerClock,
  options?: TimeEndpointOptions,
  fallback?: (res: import('node:http').ServerResponse) => void,
): Promise<string> {
  const handler = timeEndpoint(clock, options);
  const server = createServer((req, res) =>
    handler(req, res, fallback ? () => fallback(res) : undefined),
  );
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function syncedServerClock(): TrueClock {
  const source = manualSource(1000);
  const clock = new TrueClock({ source, monotonic: systemMonotonic, freeRunningAfterMs: Infinity });
  clocks.push(clock);
  source.push(truth.sample(2));
  return clock;
}

/** Sends raw bytes and returns the whole response (the request asks to close). */
function raw(base: string, request: string): Promise<string> {
  const { port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () => socket.write(request));
    const chunks: Buffer[] = [];
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('end', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.on('error', reject);
  });
}

let base: string;
let serverClock: TrueClock;

beforeAll(async () => {
  serverClock = syncedServerClock();
  base = await serve(serverClock);
});

afterAll(async () => {
  for (const c of clocks) await c.close();
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((resolve) => s.close(resolve));
  }
});

describe('timeEndpoint over node:http', () => {
  it('answers GET /time?nonce=… with a fixed 256-byte JSON reply, no-store', async () => {
    const before = truth.now();
    const wallBefore = Date.now();
    const res = await fetch(`${base}/time?nonce=${NONCE}`);
    const after = truth.now();
    const wallAfter = Date.now();
    // ε only grows between samples, so the clock's ε now bounds the one it sent.
    const epsilonAfter = serverClock.now().uncertaintyMs;
    expect(res.headers.get('content-length')).toBe('256');
    const reply = await expectTimeReplyResponse(res);
    expect(reply.t3).toBeGreaterThanOrEqual(reply.t2);
    // The clock's own ε (2 ms synced, plus drift since), rounded up, plus 1 µs.
    expect(reply.errorMs).toBeGreaterThanOrEqual(2.001);
    expect(reply.errorMs).toBeLessThanOrEqual(epsilonAfter + 0.002);
    // The server's stamps are its truth within its own ε.
    expect(reply.t2).toBeGreaterThanOrEqual(before - reply.errorMs);
    expect(reply.t3).toBeLessThanOrEqual(after + reply.errorMs);
    // 5 s ahead of this machine's wall clock (however long the request took).
    expect(reply.t2 - wallBefore).toBeGreaterThan(OFFSET_MS - 1000);
    expect(reply.t3 - wallAfter).toBeLessThan(OFFSET_MS + 1000);
  });

  it('every 200 reply is the same size', async () => {
    const lengths = new Set<string | null>();
    for (let i = 0; i < 20; i++) {
      const nonce = i.toString(16).padStart(32, 'f');
      const res = await fetch(`${base}/time?nonce=${nonce}`);
      lengths.add(res.headers.get('content-length'));
      await expectTimeReplyResponse(res, nonce);
    }
    expect([...lengths]).toEqual(['256']);
  });

  it('a browser-style client synced through it contains the server truth, 5 s off the local wall clock', async () => {
    const client = new TrueClock({
      source: httpTimeSource({ url: `${base}/time`, samples: 8 }),
      monotonic: systemMonotonic,
      // A loaded machine stretches a loopback round trip past 100 ms (seen: the default 50 ms
      // limit made a reading unsynchronized); what this test needs is the 5 s offset told apart.
      maxUncertaintyMs: OFFSET_MS / 2,
    });
    clocks.push(client);
    await client.ready({ timeoutMs: 30_000 });
    for (let i = 0; i < 20; i++) {
      // The truth is read just before and just after the reading: under load the
      // process can stall between any two statements, so the interval must reach
      // into that bracket rather than contain one instant read after it.
      const truthBefore = truth.now();
      const r = client.now();
      const truthAfter = truth.now();
      expect(r.status).toBe('synchronized');
      expect(r.latest).toBeGreaterThanOrEqual(truthBefore);
      expect(r.earliest).toBeLessThanOrEqual(truthAfter);
      // The server's 2 ms chain into the client's bound; the round trip adds to it
      // (how much depends on the machine's load, so only a bound that still tells
      // the server's time from the local wall clock is asserted).
      expect(r.uncertaintyMs).toBeGreaterThan(2);
      expect(r.uncertaintyMs).toBeLessThan(OFFSET_MS / 2);
      expect(intervalContains(r, Date.now())).toBe(false);
      // Let the next exchange of the burst come in between reads.
      await new Promise((resolve) => setImmediate(resolve));
    }
  });

  it.each(['POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH'])(
    'refuses %s with 405 and Allow: GET',
    async (method) => {
      const res = await fetch(`${base}/time?nonce=${NONCE}`, { method });
      expect(res.status).toBe(405);
      expect(res.headers.get('allow')).toBe('GET');
      expect(res.headers.get('cache-control')).toBe('no-store');
      if (method !== 'HEAD') expect(await res.text()).toBe('method not allowed: use GET\n');
    },
  );

  it.each(NOT_TIME_PATHS)('answers 404 on %s', async (path) => {
    const res = await fetch(`${base}${path}`);
    expect(res.status).toBe(404);
    expect(await res.text()).toBe('not found\n');
  });

  for (const [what, query] of BAD_TIME_QUERIES) {
    it(`answers 400 to ${what}, echoing nothing`, async () => {
      const res = await fetch(`${base}/time${query}`);
      expect(res.status).toBe(400);
      expect(res.headers.get('cache-control')).toBe('no-store');
      const body = await res.text();
      expect(body).toBe('expected exactly one query parameter: nonce=<32 lowercase hex digits>\n');
    });
  }

  it('refuses a request body (413, connection closed) unless within maxBodyBytes', async () => {
    const withBody = await raw(
      base,
      `GET /time?nonce=${NONCE} HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nConnection: close\r\n\r\n0123456789`,
    );
    expect(withBody).toMatch(/^HTTP\/1\.1 413 /);
    expect(withBody).toMatch(/\r\nconnection: close\r\n/i);
    const chunked = await raw(
      base,
      `GET /time?nonce=${NONCE} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
    );
    expect(chunked).toMatch(/^HTTP\/1\.1 413 /);
    const tolerant = await serve(serverClock, { maxBodyBytes: 16 });
    const small = await raw(
      tolerant,
      `GET /time?nonce=${NONCE} HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nConnection: close\r\n\r\n0123456789`,
    );
    expect(small).toMatch(/^HTTP\/1\.1 200 /);
    const empty = await raw(
      base,
      `GET /time?nonce=${NONCE} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
    );
    expect(empty).toMatch(/^HTTP\/1\.1 200 /);
  });

  it('answers 503 while its clock is unsynchronized, then 200 once synced', async () => {
    const source = manualSource(1000);
    const clock = new TrueClock({ source, monotonic: systemMonotonic });
    clocks.push(clock);
    const url = await serve(clock);
    const refused = await fetch(`${url}/time?nonce=${NONCE}`);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(refused.headers.get('cache-control')).toBe('no-store');
    expect(await refused.text()).toBe('clock unsynchronized\n');
    source.push(truth.sample(1));
    expect((await fetch(`${url}/time?nonce=${NONCE}`)).status).toBe(200);
  });

  it('answers 503 when its clock only has an assumed bound or ε above its maximum', async () => {
    const source = manualSource(1000);
    const clock = new TrueClock({ source, monotonic: systemMonotonic, maxUncertaintyMs: 10 });
    clocks.push(clock);
    const url = await serve(clock);
    source.push({ ...truth.sample(1, 'os'), assumed: true });
    expect((await fetch(`${url}/time?nonce=${NONCE}`)).status).toBe(503);
    source.push(truth.sample(11, 'far'));
    expect((await fetch(`${url}/time?nonce=${NONCE}`)).status).toBe(503);
  });

  it('answers 503 after a suspend disrupted its clock, before the periodic watchdog noticed', async () => {
    const sim = new SimulatedClock();
    const source = manualSource(1000);
    const clock = trueClockOn(sim, source, {
      watchdogIntervalMs: 0,
    });
    clocks.push(clock);
    source.push(truthfulSample(sim, 1));
    const url = await serve(clock);
    expect((await fetch(`${url}/time?nonce=${NONCE}`)).status).toBe(200);
    sim.suspend(30_000);
    const res = await fetch(`${url}/time?nonce=${NONCE}`);
    expect(res.status).toBe(503);
    expect(await res.text()).toBe('clock disrupted\n');
    // Only evidence gathered after the disruption ends it.
    sim.advance(10);
    source.push(truthfulSample(sim, 1));
    expect((await fetch(`${url}/time?nonce=${NONCE}`)).status).toBe(200);
  });

  it('passes other paths to next() when given one', async () => {
    const url = await serve(serverClock, {}, (res) => {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('app');
    });
    expect(await (await fetch(`${url}/index.html`)).text()).toBe('app');
    expect((await fetch(`${url}/time?nonce=${NONCE}`)).status).toBe(200);
    expect((await fetch(`${url}/time`, { method: 'POST' })).status).toBe(405);
  });

  it('honours path and allowOrigin', async () => {
    const url = await serve(serverClock, {
      path: '/api/v1/time',
      allowOrigin: 'https://app.example',
    });
    expect((await fetch(`${url}/time?nonce=${NONCE}`)).status).toBe(404);
    const res = await fetch(`${url}/api/v1/time?nonce=${NONCE}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe('https://app.example');
  });

  it.each(BAD_TIME_SERVER_OPTIONS)('rejects a bad %s', (argument, options) => {
    expectInvalidArgument(() => timeEndpoint(serverClock, options), argument);
  });

  it('rejects something that is not a clock', () => {
    expect(() => timeEndpoint({} as TimeServerClock)).toThrow(InvalidArgumentError);
  });
});
