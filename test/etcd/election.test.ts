/**
 * etcdElection against an in-memory etcd (FakeEtcd) and a simulated clock: the
 * local validity rule (held only while now().latest < t₀ + TTL − margin, with t₀
 * the earliest before the request left), fail-closed on an untrustworthy clock,
 * keep-alive failures and losses as typed errors, handover with increasing
 * tokens, and the fencing guard.
 */
import { describe, expect, it, vi } from 'vitest';
import {
  AbortError,
  ClockUnsynchronizedError,
  FencingGuard,
  PauseDetector,
  StaleFencingTokenError,
  TrueClock,
} from '../../src/index.js';
import {
  EtcdKeepAliveError,
  EtcdLeaseExpiredError,
  EtcdLeaseLostError,
  EtcdQuorumLostError,
  etcdElection,
  type EtcdElectionOptions,
  type EtcdLease,
} from '../../src/etcd/index.js';
import { truthfulSample } from '../../src/testing/index.js';
import { FakeEtcd, streamError } from './fake-etcd.js';
import { simulatedRig } from '../support/clock.js';

const ENDPOINTS = ['http://127.0.0.1:1001', 'http://127.0.0.1:1002', 'http://127.0.0.1:1003'];

function setup() {
  const { sim, source, clock } = simulatedRig({
    sim: { driftPpm: 0, wallOffsetMs: 0 },
    clock: { maxDriftPpm: 200, maxUncertaintyMs: Infinity, freeRunningAfterMs: Infinity },
  });
  const fake = new FakeEtcd();
  const election = (extra: Partial<EtcdElectionOptions> = {}) =>
    etcdElection({
      endpoints: ENDPOINTS,
      key: '/locks/report',
      ttlMs: 3_000,
      clock,
      fetch: fake.fetch,
      scheduler: sim,
      requestTimeoutMs: 200,
      ...extra,
    });
  const sync = (errorMs = 1): void => source.push(truthfulSample(sim, errorMs));
  return { sim, source, clock, fake, election, sync };
}

describe('campaign and the local validity of the lease', () => {
  it('grants, creates the key if absent, and uses the create revision as token', async () => {
    const { fake, election, sync } = setup();
    sync();
    fake.revision = 41n;
    const lease = await election({ value: 'node-a' }).campaign();
    expect(lease.token).toBe(42n);
    expect(fake.kv.get('/locks/report')).toMatchObject({ value: 'node-a', create: 42n });
    expect(lease.leaseId).toBe(fake.kv.get('/locks/report')!.lease);
    expect(lease.ttlMs).toBe(3_000);
    expect(lease.marginMs).toBe(300);
    expect(lease.isHeld()).toBe(true);
    // The transaction: create only if absent (create_revision == 0), attached to the lease.
    const txn = fake.calls('/v3/kv/txn')[0]!.body;
    expect(txn['compare']).toEqual([
      { target: 'CREATE', key: 'L2xvY2tzL3JlcG9ydA==', create_revision: '0', result: 'EQUAL' },
    ]);
    expect(txn['success']).toContainEqual({
      request_put: { key: 'L2xvY2tzL3JlcG9ydA==', value: 'bm9kZS1h', lease: lease.leaseId },
    });
    await lease.resign();
  });

  it('is held exactly while now().latest < t₀ + TTL − margin (t₀ = earliest before the grant)', async () => {
    const { sim, clock, election, sync } = setup();
    sync(2);
    const t0 = clock.now().earliest;
    // No keep-alive: see the grant's own validity end.
    const lease = await election({ keepAliveIntervalMs: 1e9 }).campaign();
    expect(lease.expiresAt).toBe(t0 + 3_000);
    const lost = vi.fn();
    lease.onLost(lost);
    const limit = lease.expiresAt - lease.marginMs;
    // Step to 1 ms before latest reaches the limit: still held.
    await sim.advanceAsync(limit - clock.now().latest - 1);
    expect(clock.now().latest).toBeLessThan(limit);
    expect(lease.isHeld()).toBe(true);
    expect(lease.remainingMs()).toBeGreaterThan(0);
    expect(lease.remainingMs()).toBeLessThanOrEqual(1);
    // The deadline timer notices on its own, without a check by the holder.
    await sim.advanceAsync(2);
    expect(lost).toHaveBeenCalledTimes(1);
    const error = lost.mock.calls[0]![0] as EtcdLeaseLostError;
    expect(error).toBeInstanceOf(EtcdLeaseLostError);
    expect(error.reason).toBe('expired');
    expect(error.code).toBe('ETCD_LEASE_LOST');
    expect(lease.isHeld()).toBe(false);
    expect(lease.remainingMs()).toBe(0);
    expect(() => lease.assertHeld()).toThrow(EtcdLeaseLostError);
    // True time is still before etcd's expiry: the holder stopped first.
    expect(sim.trueNow()).toBeLessThan(lease.expiresAt);
  });

  it('each keep-alive extends from the earliest taken before it left, not from its reply', async () => {
    const { sim, clock, fake, election, sync } = setup();
    sync();
    const lease = await election().campaign();
    let earliestAtRequest = NaN;
    let release!: () => void;
    fake.fault('*', '/v3/lease/keepalive', () => {
      earliestAtRequest = clock.now().earliest;
      return new Promise<undefined>((resolve) => (release = () => resolve(undefined)));
    });
    await sim.advanceAsync(1_000); // the keep-alive interval: TTL / 3
    expect(fake.calls('/v3/lease/keepalive')).toHaveLength(1);
    await sim.advanceAsync(400); // the reply takes 400 ms
    const replyEarliest = clock.now().earliest;
    release();
    await vi.waitFor(() => expect(lease.renewals).toBe(1));
    expect(lease.expiresAt).toBe(earliestAtRequest + 3_000);
    expect(lease.expiresAt).toBeLessThan(replyEarliest + 3_000);
    await lease.resign();
  });

  it('keeps the lease while keep-alives succeed', async () => {
    const { sim, election, sync, source } = setup();
    sync();
    const lease = await election().campaign();
    for (let i = 0; i < 10; i++) {
      await sim.advanceAsync(1_000);
      source.push(truthfulSample(sim, 1));
      await vi.waitFor(() => expect(lease.renewals).toBe(i + 1));
      expect(lease.isHeld()).toBe(true);
    }
    await lease.resign();
  });
});

describe('fails closed on the clock', () => {
  it('a campaign on an unsynchronized clock throws ClockUnsynchronizedError before asking etcd', async () => {
    const { fake, election } = setup();
    await expect(election().campaign()).rejects.toBeInstanceOf(ClockUnsynchronizedError);
    expect(fake.calls('/v3/lease/grant')).toHaveLength(0);
  });

  it('a disrupted clock loses the lease for good: ClockUnsynchronizedError, then revoked', async () => {
    const { sim, clock, fake, election, sync } = setup();
    sync();
    const lease = await election().campaign();
    const lost = vi.fn();
    lease.onLost(lost);
    clock.reportDisruption('test', 5, 'simulated VM pause');
    expect(lease.isHeld()).toBe(false);
    expect(() => lease.assertHeld()).toThrow(ClockUnsynchronizedError);
    expect(lost.mock.calls[0]![0]).toBeInstanceOf(ClockUnsynchronizedError);
    expect(lease.lostError).toBeInstanceOf(ClockUnsynchronizedError);
    // A fresh sample (gathered after the disruption) does not bring it back: campaign again.
    sim.advance(10);
    sync();
    expect(clock.now().status).toBe('synchronized');
    expect(lease.isHeld()).toBe(false);
    // It gave the key back so that the next contender need not wait for the TTL.
    await vi.waitFor(() => expect(fake.kv.has('/locks/report')).toBe(false));
    expect(fake.calls('/v3/lease/revoke')).toHaveLength(1);
  });
});

describe('losses and keep-alive failures are typed', () => {
  it('etcd forgot the lease (keep-alive TTL 0): lease-expired', async () => {
    const { sim, fake, election, sync } = setup();
    sync();
    const lease = await election().campaign();
    fake.leases.delete(lease.leaseId); // expired on etcd's side; the key stays for this test
    const lost = new Promise<Error>((resolve) => lease.onLost(resolve));
    await sim.advanceAsync(1_000);
    const error = (await lost) as EtcdLeaseLostError;
    expect(error.reason).toBe('lease-expired');
    expect(error.cause).toBeInstanceOf(EtcdLeaseExpiredError);
    expect(lease.isHeld()).toBe(false);
  });

  it('the key deleted by someone else: key-changed, from the watch', async () => {
    const { fake, election, sync } = setup();
    sync();
    const lease = await election().campaign();
    const lost = new Promise<Error>((resolve) => lease.onLost(resolve));
    fake.deleteKey('/locks/report');
    const error = (await lost) as EtcdLeaseLostError;
    expect(error.reason).toBe('key-changed');
    expect(error.message).toMatch(/deleted at revision/);
    expect(lease.isHeld()).toBe(false);
  });

  it('the watch broke and its history was compacted: the present key says it is still ours', async () => {
    const { fake, election, sync } = setup();
    sync();
    const lease = await election({ keepAliveIntervalMs: 100 }).campaign();
    fake.revision += 10n;
    fake.compact(fake.revision);
    fake.breakWatches();
    // It reconnects from token + 1, is told that is compacted, reads the key, and watches on
    // from the revision of that read.
    const startOf = (r: { body: Record<string, unknown> }) =>
      (r.body['create_request'] as { start_revision: string }).start_revision;
    await vi.waitFor(() => {
      const starts = fake.calls('/v3/watch').map(startOf);
      expect(starts).toEqual([
        String(lease.token + 1n),
        String(lease.token + 1n),
        String(fake.revision + 1n),
      ]);
    });
    expect(fake.calls('/v3/kv/range').at(-1)?.body).toEqual({ key: 'L2xvY2tzL3JlcG9ydA==' });
    expect(lease.isHeld()).toBe(true);
    const lost = new Promise<Error>((resolve) => lease.onLost(resolve));
    fake.deleteKey('/locks/report');
    expect(((await lost) as EtcdLeaseLostError).reason).toBe('key-changed');
  });

  it('a grant confirmed only after its deadline is given back, and the campaign says why', async () => {
    const { sim, fake, election, sync } = setup();
    sync();
    fake.fault('*', '/v3/kv/txn', () => {
      sim.advance(3_000); // the transaction's reply takes longer than the TTL
      return undefined;
    });
    const error = await election()
      .campaign()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EtcdLeaseLostError);
    expect((error as EtcdLeaseLostError).reason).toBe('expired');
    expect(fake.kv.has('/locks/report')).toBe(false);
    expect(fake.leases.size).toBe(0);
  });

  it('quorum lost: each failed keep-alive is reported, and at the deadline the lease is lost', async () => {
    const { sim, clock, fake, election, sync } = setup();
    sync();
    const lease = await election().campaign();
    fake.fault(
      '*',
      '/v3/lease/keepalive',
      () => streamError(14, 503, 'etcdserver: no leader'),
      1_000,
    );
    const failures: EtcdKeepAliveError[] = [];
    lease.onKeepAliveError((e) => failures.push(e));
    const lost = vi.fn();
    lease.onLost(lost);
    const limit = lease.expiresAt - lease.marginMs;
    while (clock.now().latest < limit - 200) {
      await sim.advanceAsync(100);
      if (clock.now().latest < limit - 1) expect(lease.isHeld()).toBe(true);
    }
    expect(failures.length).toBeGreaterThan(3);
    expect(failures[0]).toBeInstanceOf(EtcdKeepAliveError);
    expect(failures[0]!.code).toBe('ETCD_KEEPALIVE');
    expect(failures[0]!.cause).toBeInstanceOf(EtcdQuorumLostError);
    expect(failures[0]!.remainingMs).toBeGreaterThan(0);
    await sim.advanceAsync(300);
    expect(lost).toHaveBeenCalledTimes(1);
    const error = lost.mock.calls[0]![0] as EtcdLeaseLostError;
    expect(error.reason).toBe('keepalive-failed');
    expect(error.cause).toBeInstanceOf(EtcdKeepAliveError);
    expect((error.cause as EtcdKeepAliveError).cause).toBeInstanceOf(EtcdQuorumLostError);
    // Quorum back: nothing revives the lease.
    fake.clearFaults();
    const before = fake.calls('/v3/lease/keepalive').length;
    await sim.advanceAsync(5_000);
    expect(lease.isHeld()).toBe(false);
    expect(fake.calls('/v3/lease/keepalive')).toHaveLength(before);
  });

  it('a pause detector invalidates the lease (it is Invalidatable)', async () => {
    const { sim, clock, election, sync } = setup();
    sync();
    const lease = await election({ keepAliveIntervalMs: 1e9 }).campaign();
    const detector = new PauseDetector({
      intervalMs: 10,
      thresholdMs: 50,
      monotonic: sim.monotonic,
      scheduler: sim,
      clock,
    });
    detector.register(lease);
    sim.pause(200);
    expect(lease.isHeld()).toBe(false);
    expect(lease.lostError).toBeInstanceOf(EtcdLeaseLostError);
    expect((lease.lostError as EtcdLeaseLostError).reason).toBe('invalidated');
    detector.stop();
  });
});

describe('handover', () => {
  it('the next holder gets a larger token, and the fencing guard rejects the old one', async () => {
    const { fake, election, sync } = setup();
    sync();
    const a = election({ value: 'a' });
    const b = election({ value: 'b' });
    const leaseA = await a.campaign();
    let leaseB: EtcdLease | undefined;
    const campaignB = b.campaign().then((l) => (leaseB = l));
    await vi.waitFor(() => expect(fake.calls('/v3/watch').length).toBeGreaterThanOrEqual(2));
    expect(leaseB).toBeUndefined();
    expect(await b.leader()).toMatchObject({ value: 'a', token: leaseA.token });

    const guard = new FencingGuard();
    guard.check('report', leaseA.token);
    await leaseA.resign();
    await campaignB;
    expect(leaseB!.token).toBeGreaterThan(leaseA.token);
    expect(await a.leader()).toMatchObject({ value: 'b', token: leaseB!.token });
    guard.check('report', leaseB!.token);
    expect(() => guard.check('report', leaseA.token)).toThrow(StaleFencingTokenError);
    await b.close();
    expect(leaseB!.isHeld()).toBe(false);
    expect(fake.kv.has('/locks/report')).toBe(false);
  });

  it('a transaction that committed but timed out is recognized as won on the retry', async () => {
    const { fake, election, sync } = setup();
    sync();
    fake.fault(ENDPOINTS[0]!, '/v3/kv/txn', (request) => {
      void fake.serve(request.path, request.body); // etcd commits it ...
      return 'hang'; // ... but the reply never comes
    });
    const lease = await election().campaign();
    expect(fake.calls('/v3/kv/txn').map((r) => r.endpoint)).toEqual(ENDPOINTS.slice(0, 2));
    expect(lease.token).toBe(fake.kv.get('/locks/report')!.create);
    expect(fake.leases.size).toBe(1);
    await lease.resign();
  });

  it('a campaign can be aborted while it waits', async () => {
    const { fake, election, sync } = setup();
    sync();
    const leaseA = await election().campaign();
    const controller = new AbortController();
    const waiting = election().campaign({ signal: controller.signal });
    await vi.waitFor(() => expect(fake.calls('/v3/watch').length).toBeGreaterThanOrEqual(2));
    controller.abort(new Error('shutting down'));
    await expect(waiting).rejects.toBeInstanceOf(AbortError);
    expect(fake.leases.size).toBe(1);
    await leaseA.resign();
  });

  it('reading the holder at a compacted revision throws EtcdCompactedError', async () => {
    const { fake, election, sync } = setup();
    sync();
    const e = election();
    const lease = await e.campaign();
    expect(await e.leader({ revision: lease.token })).toMatchObject({ token: lease.token });
    fake.compact(lease.token);
    await expect(e.leader({ revision: lease.token })).rejects.toMatchObject({
      code: 'ETCD_COMPACTED',
      revision: lease.token,
    });
    await lease.resign();
  });
});

describe('options', () => {
  it('rejects what cannot work', () => {
    const { clock, fake } = setup();
    const base = { endpoints: ENDPOINTS, key: '/k', ttlMs: 3_000, clock, fetch: fake.fetch };
    expect(() => etcdElection({ ...base, ttlMs: 500 })).toThrow(/ttlMs/);
    expect(() => etcdElection({ ...base, key: '' })).toThrow(/key/);
    expect(() => etcdElection({ ...base, marginMs: -1 })).toThrow(/marginMs/);
    expect(() => etcdElection({ ...base, endpoints: [] })).toThrow(/endpoints/);
    expect(() => etcdElection({ ...base, clock: {} as TrueClock })).toThrow(/clock/);
  });
});
