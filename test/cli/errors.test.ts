import { describe, expect, it } from 'vitest';
import { describeError, ExitCode, exitCodeFor } from '../../src/cli/errors.js';
import {
  ChronoboundError,
  ClockUnsynchronizedError,
  HlcParseError,
  InvalidArgumentError,
  NtpRejectedError,
  NtpTimeoutError,
  SourceUnavailableError,
} from '../../src/index.js';

function systemError(code: string, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(`${code} happened\n    at somewhere`), { code, ...extra });
}

describe('exitCodeFor', () => {
  it('maps failures to the documented exit codes', () => {
    expect(ExitCode).toEqual({ ok: 0, unsynchronized: 1, usage: 2, runtime: 3 });
    expect(exitCodeFor(new InvalidArgumentError('--port', 'x', 'a number'))).toBe(2);
    expect(exitCodeFor(systemError('ERR_PARSE_ARGS_UNKNOWN_OPTION'))).toBe(2);
    expect(exitCodeFor(new ClockUnsynchronizedError('x', 'unsynchronized', Infinity))).toBe(1);
    expect(exitCodeFor(new SourceUnavailableError('ntp', 'down'))).toBe(1);
    expect(exitCodeFor(new NtpTimeoutError('h:1', 10))).toBe(1);
    expect(exitCodeFor(new NtpRejectedError('h:1', 'kiss-of-death', 'DENY'))).toBe(1);
    expect(exitCodeFor(new HlcParseError('x', 'bad'))).toBe(3);
    expect(exitCodeFor(systemError('EADDRINUSE'))).toBe(3);
    expect(exitCodeFor(new Error('plain'))).toBe(3);
    expect(exitCodeFor('a string')).toBe(3);
    expect(exitCodeFor(undefined)).toBe(3);
  });
});

describe('describeError', () => {
  it('explains common system errors in words, naming the address', () => {
    expect(describeError(systemError('EADDRINUSE', { address: '127.0.0.1', port: 123 }))).toBe(
      'address 127.0.0.1:123 is already in use; pick another --port (0 picks a free one)',
    );
    expect(describeError(systemError('EACCES', { address: '0.0.0.0', port: 123 }))).toMatch(
      /permission denied for 0\.0\.0\.0:123/,
    );
    expect(describeError(systemError('ENOTFOUND', { hostname: 'nope.invalid' }))).toBe(
      'cannot resolve host nope.invalid',
    );
  });

  it('folds multi-line messages into one line and never includes a stack', () => {
    const e = new ChronoboundError('INVALID_ARGUMENT', 'first\n  second\nthird');
    expect(describeError(e)).toBe('first second third');
    expect(describeError(new Error(''))).toBe('unknown error');
    expect(describeError(42)).toBe('42');
  });
});
