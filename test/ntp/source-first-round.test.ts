/**
 * `NtpSource.firstRound()`: it resolves when the first poll (the initial burst)
 * has ended for every server — answered, timed out, refused for good — and not
 * a moment before, with the selection it came to; it rejects when the source
 * closes first. In virtual time on the simulated network, except for the NTS
 * key exchange, which is real TCP to a port where nothing listens.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SourceUnavailableError, systemMonotonic, type Scheduler } from '../../src/index.js';
import {
  ntpSource,
  type NtpServerStatus,
  type NtpSource,
  type NtpSourceOptions,
  type Selection,
} from '../../src/ntp/index.js';
import {
  SimulatedClock,
  createSimulatedNtpNetwork,
  type SimulatedNtpServer,
  type SimulatedNtpServerOptions,
} from '../../src/testing/index.js';
import { mulberry32 } from '../../src/_internals/prng.js';
import { freeTcpPort } from '../integration/helpers/nts-server.js';

const S = 1000;
/** The source's defaults: a burst of 4 exchanges 2 s apart, each with a 1 s timeout. */
const BURST = 4;
const SPACING_MS = 2 * S;
const TIMEOUT_MS = 1 * S;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Ended {
  /** Virtual time from the subscription to the resolution (ms). */
  readonly at: number;
  readonly selection: Selection;
  /** Requests each simulated server had received by then. */
  readonly requests: readonly number[];
  readonly servers: readonly NtpServerStatus[];
}

/** A source on a simulated network of these servers (on `sim`), closed after the test; not subscribed. */
function simulated(
  serverOptions: readonly SimulatedNtpServerOptions[],
  extra: Partial<NtpSourceOptions> = {},
  sim: SimulatedClock = new SimulatedClock({ driftPpm: 10 }),
) {
  const network = createSimulatedNtpNetwork(sim, { seed: 5 });
  const servers: SimulatedNtpServer[] = serverOptions.map((o) =>
    network.addServer({ requestDelayMs: 5, responseDelayMs: 5, ...o }),
  );
  const source: NtpSource = ntpSource({
    servers: servers.map((s) => s.address),
    transport: network,
    scheduler: sim,
    wall: sim.wall,
    random: mulberry32(7),
    ...extra,
  });
  cleanups.push(() => source.close());
  return { sim, servers, source };
}

/** A source on a simulated network of these servers, subscribed, and its first round watched. */
function rig(
  serverOptions: readonly SimulatedNtpServerOptions[],
  extra: Partial<NtpSourceOptions> = {},
) {
  const { sim, servers, source } = simulated(serverOptions, extra);
  const t0 = sim.monotonic.now();
  cleanups.push(source.subscribe(() => undefined, sim.monotonic));
  let ended: Ended | undefined;
  let settled = 0;
  const first = source.firstRound().then((selection) => {
    settled++;
    // Taken in the same turn as the resolution: what the round had come to then.
    ended = {
      at: sim.monotonic.now() - t0,
      selection,
      requests: servers.map((s) => s.requestTimes.length),
      servers: source.servers(),
    };
    return selection;
  });
  // A test that fails before the round ends closes the source: no unhandled rejection then.
  first.catch(() => undefined);
  return { sim, t0, servers, source, first, ended: () => ended, settled: () => settled };
}

describe('NtpSource.firstRound()', () => {
  it('resolves once every server has finished its burst: two answer, one is silent, one sends DENY', async () => {
    const r = rig([{}, { offsetMs: 0.5 }, {}, { kissCode: 'DENY' }]);
    const [a, b, silent] = r.servers as [
      SimulatedNtpServer,
      SimulatedNtpServer,
      SimulatedNtpServer,
    ];
    silent.stop();

    // The first round of exchanges waits out the silent and the DENY server's timeout; the
    // answering servers' last exchange leaves 3 spacings (and round trips) later.
    await r.sim.advanceAsync(TIMEOUT_MS + 3 * SPACING_MS);
    expect(r.settled()).toBe(0);
    expect(a.requestTimes).toHaveLength(3);

    await r.sim.advanceAsync(60 * S);
    const ended = r.ended();
    expect(r.settled()).toBe(1);
    expect(ended).toBeDefined();
    // Every answering server had had its whole burst answered when the promise resolved.
    expect(ended?.requests).toEqual([BURST, BURST, 1, 1]);
    // The burst's last request (the source polls on afterwards), and its round trip.
    const lastRequest =
      Math.max(...[a, b].map((s) => s.requestTimes[BURST - 1] ?? Infinity)) - r.t0;
    expect(ended?.at).toBeGreaterThanOrEqual(lastRequest + 10);
    expect(ended?.at).toBeLessThan(lastRequest + 20);
    for (const s of ended?.servers.slice(0, 2) ?? []) {
      expect(s.state).toBe('ok');
      expect((s.lastExchange?.t4 ?? Infinity) - r.t0).toBeLessThanOrEqual(ended?.at ?? -Infinity);
    }
    // The silent one cost one timeout, the DENY one stopped the source asking it.
    expect(ended?.servers[2]).toMatchObject({ state: 'unreachable' });
    expect(ended?.servers[2]?.lastRejection?.reason).toBe('timeout');
    expect(ended?.servers[3]).toMatchObject({ state: 'stopped', kissCode: 'DENY' });

    const selection = await r.first;
    // Four configured, so one may lie; the two answers overlap: both agree.
    expect(selection).toMatchObject({ ok: true, configured: 4, maxFalsetickers: 1 });
    expect(selection.ok && [...selection.truechimers].sort()).toEqual(
      [a.address, b.address].sort(),
    );
    expect(selection).toBe(ended?.selection);
  });

  it('resolves with the same selection ever after, though the source polls on', async () => {
    const r = rig([{}]);
    await r.sim.advanceAsync(30 * S);
    const selection = await r.first;
    expect(selection.ok).toBe(true);
    const requests = r.servers[0]?.requestTimes.length ?? 0;
    await r.sim.advanceAsync(10 * 60 * S);
    expect(r.servers[0]?.requestTimes.length).toBeGreaterThan(requests);
    expect(r.source.lastSelection()).not.toBe(selection);
    await expect(r.source.firstRound()).resolves.toBe(selection);
    // Closing does not take back a round that ended.
    await r.source.close();
    await expect(r.source.firstRound()).resolves.toBe(selection);
  });

  it('with every server silent, resolves after one timeout with no-candidates, not a hang', async () => {
    const r = rig([{}, {}]);
    for (const s of r.servers) s.stop();
    await r.sim.advanceAsync(60 * S);
    const ended = r.ended();
    expect(ended?.at).toBeGreaterThanOrEqual(TIMEOUT_MS);
    expect(ended?.at).toBeLessThanOrEqual(TIMEOUT_MS + 1);
    expect(ended?.requests).toEqual([1, 1]);
    expect(ended?.selection).toMatchObject({
      ok: false,
      reason: 'no-candidates',
      configured: 2,
      maxFalsetickers: 0,
    });
  });

  it('says no-majority when fewer answer than may lie, and names a falseticker', async () => {
    const lonely = rig([{}, {}, {}]);
    for (const s of lonely.servers.slice(1)) s.stop();
    await lonely.sim.advanceAsync(60 * S);
    expect(lonely.ended()?.selection).toMatchObject({
      ok: false,
      reason: 'no-majority',
      configured: 3,
      maxFalsetickers: 1,
    });

    const outvoted = rig([{}, { offsetMs: 0.2 }, { offsetMs: 900 }]);
    await outvoted.sim.advanceAsync(60 * S);
    const selection = outvoted.ended()?.selection;
    expect(selection?.ok && selection.falsetickers).toEqual([outvoted.servers[2]?.address]);
  });

  it('waits for a subscriber: nothing is polled, nothing resolves, until one comes', async () => {
    const { sim, servers, source } = simulated([{}], { initialBurst: 1 });
    const server = servers[0] as SimulatedNtpServer;
    let done = false;
    const first = source.firstRound().then((s) => ((done = true), s));
    await sim.advanceAsync(60 * S);
    expect(done).toBe(false);
    expect(server.requestTimes).toHaveLength(0);
    cleanups.push(source.subscribe(() => undefined, sim.monotonic));
    await sim.advanceAsync(S);
    expect(done).toBe(true);
    expect((await first).ok).toBe(true);
  });

  it('keeps a process alive from the start to the first poll: that timer is not unref’d, idle waits are', async () => {
    const sim = new SimulatedClock();
    /** Every timer the source sets, and whether it asked not to keep the process alive. */
    const timers: { readonly ms: number; unrefd: boolean }[] = [];
    const scheduler: Scheduler = {
      setTimeout(callback, ms) {
        const timer = { ms, unrefd: false, inner: sim.setTimeout(callback, ms) };
        timers.push(timer);
        return Object.assign(timer, { unref: () => void (timer.unrefd = true) });
      },
      clearTimeout: (handle) => sim.clearTimeout((handle as { inner: unknown }).inner),
    };
    const { source } = simulated([{}], { scheduler, initialBurst: 1 }, sim);
    cleanups.push(source.subscribe(() => undefined, sim.monotonic));
    expect(timers[0]).toEqual(expect.objectContaining({ ms: 0, unrefd: false }));
    await sim.advanceAsync(S);
    expect((await source.firstRound()).ok).toBe(true);
    // The wait for the next poll, a minimum interval on, does not hold a process.
    const idle = timers.filter((t) => t.ms >= 60 * S);
    expect(idle.length).toBeGreaterThan(0);
    expect(idle.every((t) => t.unrefd)).toBe(true);
  });

  it('rejects with SourceUnavailableError when the source closes (or its signal aborts) first', async () => {
    const closed = rig([{}]);
    await closed.sim.advanceAsync(SPACING_MS);
    expect(closed.settled()).toBe(0);
    const closing = closed.source.close();
    await expect(closed.first).rejects.toBeInstanceOf(SourceUnavailableError);
    await closing;
    await expect(closed.source.firstRound()).rejects.toBeInstanceOf(SourceUnavailableError);

    const abort = new AbortController();
    const aborted = rig([{}], { signal: abort.signal });
    await aborted.sim.advanceAsync(SPACING_MS);
    abort.abort();
    await expect(aborted.first).rejects.toThrow(/closed/);

    const never = ntpSource({ servers: ['192.0.2.1'], signal: AbortSignal.abort() });
    await expect(never.firstRound()).rejects.toBeInstanceOf(SourceUnavailableError);
  });

  it('counts a failed NTS key exchange as that server’s end of the round', async () => {
    const deadPort = await freeTcpPort();
    const source = ntpSource({ servers: [{ host: '127.0.0.1', port: deadPort, nts: true }] });
    const off = source.subscribe(() => undefined, systemMonotonic);
    cleanups.push(async () => {
      off();
      await source.close();
    });
    // Nothing listens, so the connection is refused at once: no timer to wait out.
    const selection = await source.firstRound();
    expect(selection).toMatchObject({ ok: false, reason: 'no-candidates', configured: 1 });
    expect(source.servers()[0]).toMatchObject({ state: 'rejected' });
    expect(source.servers()[0]?.lastRejection?.reason).toBe('nts-ke');
  });
});
