/**
 * isChronoboundError: recognizes chronobound's errors from this build and from
 * the other one (the CommonJS dist/ that the test setup builds, loaded next to
 * these ESM sources), where `instanceof` fails.
 */
import { createRequire } from 'node:module';
import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  ChronoboundError,
  ClockUnsynchronizedError,
  InvalidArgumentError,
  NtpKissOfDeathError,
  NtpRejectedError,
  isChronoboundError,
} from '../src/index.js';
import { EtcdError, EtcdLeaseExpiredError } from '../src/etcd/index.js';
import type { NtpRejectionReason as CoreNtpRejectionReason } from '../src/errors.js';
import type { NtpRejectionReason, NtsRejectionReason } from '../src/ntp/index.js';
import type { SourceProblemReason } from '../src/index.js';

const cjs = createRequire(import.meta.url)('../dist/index.cjs') as typeof import('../src/index.js');

describe('isChronoboundError', () => {
  it('is true for every chronobound error and false for anything else', () => {
    expect(isChronoboundError(new InvalidArgumentError('x', 1, 'a string'))).toBe(true);
    expect(isChronoboundError(new NtpKissOfDeathError('127.0.0.1:123', 'RATE'))).toBe(true);
    expect(isChronoboundError(new EtcdLeaseExpiredError('7', 'gone'))).toBe(true);
    for (const other of [
      new Error('x'),
      new TypeError('x'),
      Object.assign(new Error('x'), { code: 'INVALID_ARGUMENT', name: 'InvalidArgumentError' }),
      { code: 'INVALID_ARGUMENT' },
      'INVALID_ARGUMENT',
      null,
      undefined,
      42,
    ]) {
      expect(isChronoboundError(other)).toBe(false);
    }
  });

  it('filters by code', () => {
    const e: unknown = new InvalidArgumentError('x', 1, 'a string');
    expect(isChronoboundError(e, 'INVALID_ARGUMENT')).toBe(true);
    expect(isChronoboundError(e, 'CLOCK_UNSYNCHRONIZED')).toBe(false);
    expect(isChronoboundError({ code: 'INVALID_ARGUMENT' }, 'INVALID_ARGUMENT')).toBe(false);
  });

  it('filters by class, subclasses matching their base, and narrows', () => {
    const e: unknown = new ClockUnsynchronizedError('after()', 'unsynchronized', Infinity);
    if (!isChronoboundError(e, ClockUnsynchronizedError)) throw new Error('not recognized');
    // Narrowed: `status` exists only on ClockUnsynchronizedError.
    expect(e.status).toBe('unsynchronized');
    expect(isChronoboundError(e, ChronoboundError)).toBe(true);
    expect(isChronoboundError(e, InvalidArgumentError)).toBe(false);
    const kod: unknown = new NtpKissOfDeathError('127.0.0.1:123', 'RATE');
    expect(isChronoboundError(kod, NtpRejectedError)).toBe(true);
    expect(isChronoboundError(kod, NtpKissOfDeathError)).toBe(true);
    expect(isChronoboundError(new EtcdLeaseExpiredError('7', 'gone'), EtcdError)).toBe(true);
    expect(isChronoboundError(new Error('x'), Error)).toBe(false);
  });

  it('recognizes errors of the CommonJS build, where instanceof does not', () => {
    const fromCjs: unknown = new cjs.ClockUnsynchronizedError('after()', 'disrupted', 12);
    const kodFromCjs: unknown = new cjs.NtpKissOfDeathError('127.0.0.1:123', 'DENY');
    // The premise: two builds, two classes.
    expect(fromCjs instanceof ChronoboundError).toBe(false);
    expect(fromCjs instanceof cjs.ChronoboundError).toBe(true);
    expect(isChronoboundError(fromCjs)).toBe(true);
    expect(isChronoboundError(fromCjs, 'CLOCK_UNSYNCHRONIZED')).toBe(true);
    expect(isChronoboundError(fromCjs, ClockUnsynchronizedError)).toBe(true);
    expect(isChronoboundError(fromCjs, InvalidArgumentError)).toBe(false);
    expect(isChronoboundError(kodFromCjs, NtpRejectedError)).toBe(true);
    // And the other way round.
    const fromEsm = new InvalidArgumentError('x', 1, 'a string');
    expect(cjs.isChronoboundError(fromEsm, cjs.InvalidArgumentError)).toBe(true);
    expect(cjs.isChronoboundError(fromEsm, cjs.ClockUnsynchronizedError)).toBe(false);
  });
});

describe('ClockUnsynchronizedError', () => {
  it('tells a caller of ready() to check the source, not to wait for ready()', () => {
    const e = new ClockUnsynchronizedError(
      'ready()',
      'unsynchronized',
      Infinity,
      'no sample within 5000 ms; last problem: 3 of 3 servers timed out.',
    );
    expect(e.message).not.toMatch(/Wait for clock\.ready\(\)/);
    expect(e.message).toMatch(/Check the time source\.$/);
    expect(e.message).not.toMatch(/\.\./);
  });

  it('tells a caller of a strict operation to wait for ready()', () => {
    const e = new ClockUnsynchronizedError('after()', 'disrupted', 12.5);
    expect(e.message).toBe(
      'after() refused: the clock is disrupted (uncertainty 12.5 ms). Wait for clock.ready() or check the time source.',
    );
    expect(e.code).toBe('CLOCK_UNSYNCHRONIZED');
  });
});

describe('reason vocabularies', () => {
  it('NtpRejectedError.reason is the union chronobound/ntp exports, NTS checks included', () => {
    // tsc checks these: the core copy (which SourceProblemReason names) and the
    // NTP client's must not drift apart.
    expectTypeOf<CoreNtpRejectionReason>().toEqualTypeOf<NtpRejectionReason>();
    expectTypeOf<NtpRejectedError['reason']>().toEqualTypeOf<
      NtpRejectionReason | NtsRejectionReason
    >();
    expectTypeOf<NtpRejectedError['reason']>().toExtend<SourceProblemReason>();
    const e = new NtpRejectedError('127.0.0.1:123', 'origin-mismatch', 'not our request');
    expect(e.reason).toBe('origin-mismatch');
    expect(e.message).toBe('Rejected reply from 127.0.0.1:123: origin-mismatch (not our request).');
  });
});
