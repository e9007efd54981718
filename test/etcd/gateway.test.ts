/**
 * The gateway client against a fake `fetch`: etcd's replies (as etcd 3.4 sends
 * them) map to typed errors, and failover moves between members only when a
 * member cannot serve (connection refused, timeout, no leader).
 */
import { describe, expect, it } from 'vitest';
import { ChronoboundError, isChronoboundError } from '../../src/index.js';
import {
  EtcdCompactedError,
  EtcdLeaseExpiredError,
  EtcdNotServedError,
  EtcdQuorumLostError,
  EtcdRequestError,
  EtcdUnavailableError,
} from '../../src/etcd/index.js';
import { EtcdGateway } from '../../src/etcd/gateway.js';
import { decodeBase64, encodeBase64 } from '../../src/etcd/gateway-json.js';
import { FakeEtcd, grpcError, streamError } from './fake-etcd.js';
import { catchRejection } from '../support/errors.js';

const A = 'http://127.0.0.1:1001';
const B = 'http://127.0.0.1:1002';
const C = 'http://127.0.0.1:1003';

function gateway(fake: FakeEtcd, requestTimeoutMs = 1_000): EtcdGateway {
  return new EtcdGateway({ endpoints: [A, B, C], fetch: fake.fetch, requestTimeoutMs });
}

describe('base64 of keys and values', () => {
  it('round-trips UTF-8 text as etcd expects it', () => {
    expect(encodeBase64('foo')).toBe('Zm9v'); // etcd's own documentation example
    for (const text of ['', '/locks/€ ünï', '\u{1F512} lock', 'a\u0000b']) {
      expect(decodeBase64(encodeBase64(text))).toBe(text);
      expect(encodeBase64(text)).toBe(Buffer.from(text, 'utf8').toString('base64'));
    }
  });
});

describe('error mapping', () => {
  it('a read at a compacted revision: EtcdCompactedError naming the revision', async () => {
    const fake = new FakeEtcd();
    fake.compact(10n);
    const error = await catchRejection(gateway(fake).range('/k', { revision: 3n }));
    expect(error).toBeInstanceOf(EtcdCompactedError);
    expect(error).toBeInstanceOf(ChronoboundError);
    expect((error as EtcdCompactedError).code).toBe('ETCD_COMPACTED');
    expect((error as EtcdCompactedError).revision).toBe(3n);
    expect((error as EtcdCompactedError).compactRevision).toBeUndefined();
    // Authoritative: no other member is asked.
    expect(fake.calls('/v3/kv/range')).toHaveLength(1);
  });

  it('a watch from a compacted revision: EtcdCompactedError with the compact revision', async () => {
    const fake = new FakeEtcd();
    fake.compact(10n);
    const error = await catchRejection(
      (async () => {
        for await (const _ of gateway(fake).watch('/k', 3n)) void _;
      })(),
    );
    expect(error).toBeInstanceOf(EtcdCompactedError);
    expect((error as EtcdCompactedError).compactRevision).toBe(11n);
    expect((error as EtcdCompactedError).message).toMatch(/revision 3 .*compacted up to 11/);
  });

  it('a lease etcd does not know: EtcdLeaseExpiredError (revoke, keep-alive TTL 0, txn)', async () => {
    const fake = new FakeEtcd();
    const gw = gateway(fake);
    const revoke = await catchRejection(gw.revoke('42'));
    expect(revoke).toBeInstanceOf(EtcdLeaseExpiredError);
    expect((revoke as EtcdLeaseExpiredError).leaseId).toBe('42');
    expect((revoke as EtcdLeaseExpiredError).code).toBe('ETCD_LEASE_EXPIRED');
    // etcd answers a keep-alive of an unknown lease with no TTL field (TTL 0).
    const keepAlive = await catchRejection(gw.keepAlive('42'));
    expect(keepAlive).toBeInstanceOf(EtcdLeaseExpiredError);
    expect(keepAlive.message).toMatch(/TTL 0/);
    const txn = await catchRejection(gw.createIfAbsent('/k', 'v', '42'));
    expect(txn).toBeInstanceOf(EtcdLeaseExpiredError);
  });

  it('every member says "no leader": EtcdQuorumLostError listing each member', async () => {
    const fake = new FakeEtcd();
    // Unary and streamed forms, as etcd 3.4's gateway sends them.
    fake.fault(A, '/v3/lease/keepalive', () => streamError(14, 503, 'etcdserver: no leader'));
    fake.fault(B, '/v3/lease/keepalive', () => grpcError(503, 14, 'etcdserver: request timed out'));
    fake.fault(C, '/v3/lease/keepalive', 'refuse');
    const error = await catchRejection(gateway(fake).keepAlive('7'));
    expect(error).toBeInstanceOf(EtcdQuorumLostError);
    const e = error as EtcdQuorumLostError;
    expect(e.code).toBe('ETCD_QUORUM_LOST');
    expect(e.failures.map((f) => [f.endpoint, f.kind])).toEqual([
      [A, 'no-leader'],
      [B, 'no-leader'],
      [C, 'connection'],
    ]);
    expect(e.message).toMatch(/no leader.*request timed out.*ECONNREFUSED/s);
  });

  it('a member that times out and reports no leader in its status counts as quorum lost', async () => {
    const fake = new FakeEtcd();
    fake.fault('*', '/v3/kv/range', 'hang', 3);
    fake.fault(
      A,
      '/v3/maintenance/status',
      () =>
        new Response(
          JSON.stringify({ header: {}, version: '3.4.23', errors: ['etcdserver: no leader'] }),
          { status: 200 },
        ),
    );
    fake.fault(B, '/v3/maintenance/status', 'refuse');
    fake.fault(C, '/v3/maintenance/status', 'refuse');
    const error = await catchRejection(gateway(fake, 50).range('/k'));
    expect(error).toBeInstanceOf(EtcdQuorumLostError);
    expect((error as EtcdQuorumLostError).failures.map((f) => f.kind)).toEqual([
      'no-leader',
      'timeout',
      'timeout',
    ]);
  });

  it('the gateway\'s own "context deadline exceeded" is a timeout, classified by the status probe', async () => {
    const fake = new FakeEtcd();
    fake.fault('*', '/v3/lease/grant', () => grpcError(500, 2, 'context deadline exceeded'), 3);
    // Members answer status with a leader: slow, not leaderless.
    const error = await catchRejection(gateway(fake).grant(2));
    expect(error).toBeInstanceOf(EtcdUnavailableError);
    expect((error as EtcdUnavailableError).failures.every((f) => f.kind === 'timeout')).toBe(true);
  });

  it('nothing reachable: EtcdUnavailableError', async () => {
    const fake = new FakeEtcd();
    fake.fault('*', '/v3/lease/grant', 'refuse', 3);
    const error = await catchRejection(gateway(fake).grant(2));
    expect(error).toBeInstanceOf(EtcdUnavailableError);
    expect((error as EtcdUnavailableError).code).toBe('ETCD_UNAVAILABLE');
    expect((error as EtcdUnavailableError).failures.map((f) => f.endpoint)).toEqual([A, B, C]);
  });

  it('unreachable and leaderless share EtcdNotServedError; no other etcd error is one', async () => {
    const fake = new FakeEtcd();
    fake.fault('*', '/v3/lease/grant', 'refuse', 3);
    fake.fault('*', '/v3/kv/range', () => grpcError(503, 14, 'etcdserver: no leader'), 3);
    const unreachable = await catchRejection(gateway(fake).grant(2));
    const leaderless = await catchRejection(gateway(fake).range('/k'));
    expect(unreachable).toBeInstanceOf(EtcdUnavailableError);
    expect(leaderless).toBeInstanceOf(EtcdQuorumLostError);
    for (const e of [unreachable, leaderless]) {
      expect(e).toBeInstanceOf(EtcdNotServedError);
      expect(isChronoboundError(e, EtcdNotServedError)).toBe(true);
      expect((e as EtcdNotServedError).failures).toHaveLength(3);
    }
    const expired = new EtcdLeaseExpiredError('7', 'TTL 0');
    expect(expired).not.toBeInstanceOf(EtcdNotServedError);
    expect(isChronoboundError(expired, EtcdNotServedError)).toBe(false);
  });

  it('other error replies are authoritative: EtcdRequestError, no failover', async () => {
    const fake = new FakeEtcd();
    fake.fault(A, '/v3/kv/range', () => grpcError(403, 7, 'etcdserver: permission denied'));
    const error = await catchRejection(gateway(fake).range('/k'));
    expect(error).toBeInstanceOf(EtcdRequestError);
    expect((error as EtcdRequestError).grpcCode).toBe(7);
    expect((error as EtcdRequestError).httpStatus).toBe(403);
    expect((error as EtcdRequestError).code).toBe('ETCD_REQUEST');
    expect(fake.calls('/v3/kv/range')).toHaveLength(1);
  });

  it('a 200 that is not JSON is a protocol error; a non-JSON 502 fails over', async () => {
    const fake = new FakeEtcd();
    fake.fault(A, '/v3/kv/range', { status: 200, body: '<html>' });
    expect(await catchRejection(gateway(fake).range('/k'))).toBeInstanceOf(EtcdRequestError);
    const fake2 = new FakeEtcd();
    fake2.fault(A, '/v3/kv/range', { status: 502, body: 'Bad Gateway' });
    await expect(gateway(fake2).range('/k')).resolves.toMatchObject({ kv: undefined });
    expect(fake2.calls('/v3/kv/range').map((r) => r.endpoint)).toEqual([A, B]);
  });
});

describe('failover', () => {
  it('moves to the next member on a refused connection and stays there', async () => {
    const fake = new FakeEtcd();
    fake.fault(A, '/v3/lease/grant', 'refuse');
    const gw = gateway(fake);
    await gw.grant(2);
    expect(gw.preferredEndpoint).toBe(B);
    await gw.range('/k');
    expect(fake.requests.map((r) => r.endpoint)).toEqual([A, B, B]);
  });

  it('a timed-out member is skipped within the same call', async () => {
    const fake = new FakeEtcd();
    fake.fault(A, '/v3/lease/keepalive', 'hang');
    const gw = gateway(fake, 50);
    const { id } = await gw.grant(2);
    await expect(gw.keepAlive(id, { timeoutMs: 50 })).resolves.toBe(2);
    expect(fake.calls('/v3/lease/keepalive').map((r) => r.endpoint)).toEqual([A, B]);
  });

  it('rejects bad endpoints', () => {
    const fake = new FakeEtcd();
    expect(
      () => new EtcdGateway({ endpoints: [], fetch: fake.fetch, requestTimeoutMs: 1 }),
    ).toThrow(/endpoints/);
    expect(
      () => new EtcdGateway({ endpoints: ['ftp://x'], fetch: fake.fetch, requestTimeoutMs: 1 }),
    ).toThrow(/endpoints\[0\]/);
    expect(
      () => new EtcdGateway({ endpoints: ['not a URL'], fetch: fake.fetch, requestTimeoutMs: 1 }),
    ).toThrow(/endpoints\[0\]/);
    expect(
      () =>
        new EtcdGateway({
          endpoints: ['http://h:2379', 2379 as unknown as string],
          fetch: fake.fetch,
          requestTimeoutMs: 1,
        }),
    ).toThrow(/endpoints\[1\]/);
    expect(
      new EtcdGateway({ endpoints: ['http://h:2379/'], fetch: fake.fetch, requestTimeoutMs: 1 })
        .endpoints,
    ).toEqual(['http://h:2379']);
  });
});
