/**
 * DDIA Figs. 8-4 and 8-5 with a real process pause: a child process holding a lease
 * is stopped with SIGSTOP right after checking it; while it is stopped, the lock
 * service (this process) waits until the lease has definitely expired and grants a
 * new lease, with a higher fencing token, to another client, which writes. After
 * SIGCONT the child re-checks before writing and finds its lease invalid; when it
 * writes anyway with its stale token, the storage's FencingGuard rejects it.
 *
 * The child (fixtures/lease-holder.mjs) is plain JavaScript that imports the built
 * package from dist/, which the vitest global setup builds before the tests. If
 * dist/ is missing (CHRONOBOUND_SKIP_BUILD=1 without a build) the test is skipped,
 * except under CI, where it runs and fails.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import {
  FencingGuard,
  FencingTokenIssuer,
  StaleFencingTokenError,
  TrueClock,
  systemClockSource,
} from '../../src/index.js';
import { nextMessage } from './helpers/child-messages.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/lease-holder.mjs', import.meta.url));
const built = ['../../dist/index.js', '../../dist/node/index.js'].every((p) =>
  existsSync(fileURLToPath(new URL(p, import.meta.url))),
);
const runnable = process.platform !== 'win32' && (built || process.env['CI'] !== undefined);

type ChildMessage =
  | { type: 'ready' }
  | { type: 'acquired'; expiresAt: number; valid: boolean }
  | { type: 'write'; token: string; value: string }
  | {
      type: 'report';
      validAfterResume: boolean;
      reasonAfterResume: string | undefined;
      expiredByClock: boolean;
      writeAccepted: boolean;
      writeError: string | undefined;
      pauses: { durationMs: number; trigger: string }[];
      clockStatusAfterPause: string | undefined;
    };

let child: ChildProcess | undefined;
afterEach(() => {
  if (child?.exitCode === null) child.kill('SIGKILL');
});

const next = <T extends ChildMessage['type']>(proc: ChildProcess, type: T) =>
  nextMessage<ChildMessage, T>(proc, type, 10_000);

describe.skipIf(!runnable)('SIGSTOP / SIGCONT of a lease holder', () => {
  it('the resumed holder knows its lease is gone before writing, and its stale token is rejected', async () => {
    await using clock = new TrueClock({
      source: systemClockSource({ assumedErrorMs: 5, trusted: true }),
    });
    await clock.ready({ timeoutMs: 5_000 });
    const issuer = new FencingTokenIssuer();
    const guard = new FencingGuard();
    let stored = 'nothing';

    const forkedAt = performance.now();
    const proc = fork(FIXTURE, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child = proc;
    // The storage: every write goes through the guard.
    proc.on('message', (m: ChildMessage) => {
      if (m.type !== 'write') return;
      try {
        guard.check('resource', BigInt(m.token));
        stored = m.value;
        proc.send({ type: 'write-result', ok: true });
      } catch (e) {
        if (!(e instanceof StaleFencingTokenError)) throw e;
        proc.send({ type: 'write-result', ok: false, code: e.code });
      }
    });
    await next(proc, 'ready');

    // Grant the lease with token 1; the child checks it and reports it valid.
    const first = issuer.next();
    const acquired = next(proc, 'acquired');
    proc.send({ type: 'grant', token: String(first), durationMs: 300 });
    const { expiresAt, valid } = await acquired;
    expect(valid).toBe(true);

    // Stop it right after the check, before its write.
    expect(proc.kill('SIGSTOP')).toBe(true);
    const stoppedAt = performance.now();
    proc.send({ type: 'write-now' }); // waits in the pipe until it resumes

    // Lock service: regrant only once the old lease has definitely expired.
    await clock.waitUntilAfter(expiresAt, { timeoutMs: 5_000 });
    const second = issuer.next();
    expect(second).toBeGreaterThan(first);
    guard.check('resource', second); // client 2 writes with the new token
    stored = 'client 2';

    const report = next(proc, 'report');
    // Read before SIGCONT: the child was stopped at least this long, however slow the machine.
    const stoppedAtLeastMs = performance.now() - stoppedAt;
    expect(proc.kill('SIGCONT')).toBe(true);
    const r = await report;
    const reportedAt = performance.now();

    expect(r.validAfterResume).toBe(false);
    expect(r.expiredByClock).toBe(true);
    expect(r.reasonAfterResume).toMatch(/expired|stopped/);
    expect(r.writeAccepted).toBe(false);
    expect(r.writeError).toBe('STALE_FENCING_TOKEN');
    expect(stored).toBe('client 2');
    expect(guard.highest('resource')).toBe(second);
    // The child's pause detector saw the stop (via SIGCONT or its late timer). It reports a
    // lower bound that may fall short of the stop by its tick interval (20 ms), and a late
    // resume on a busy machine only adds to it; it cannot exceed the child's whole life.
    expect(r.pauses.length).toBeGreaterThanOrEqual(1);
    expect(r.pauses[0]!.durationMs + 20).toBeGreaterThanOrEqual(stoppedAtLeastMs);
    expect(r.pauses[0]!.durationMs).toBeLessThan(reportedAt - forkedAt);
    expect(r.clockStatusAfterPause).toBe('pause-detector');
    await new Promise((resolve) => proc.once('exit', resolve));
    expect(proc.exitCode).toBe(0);
  });
});
