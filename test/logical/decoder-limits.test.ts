/**
 * Decoders refuse oversized input before parsing it, and their errors quote only
 * a short prefix of it (issue 15): a 50 MiB string must cost neither a scan of
 * the string nor a 50 MiB error message.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  HlcParseError,
  InvalidArgumentError,
  VectorClock,
  decodeHlc,
  formatHlc,
  hlcFromBigInt,
  hlcFromBytes,
  parseHlc,
  parseLamport,
  validateNodeId,
} from '../../src/index.js';
import { catchError } from '../support/errors.js';

const MiB = 2 ** 20;
const LENGTH = 50 * MiB;

/** A flat 50 MiB string, as read from a socket, a file or a database, starting with `prefix`. */
function huge(prefix: string, fill = 'a'): string {
  const buffer = Buffer.alloc(LENGTH, fill);
  buffer.write(prefix, 'latin1');
  return buffer.toString('latin1');
}

afterEach(() => {
  vi.restoreAllMocks();
});

/**
 * Generous on purpose (a loaded 2-core machine stalls for hundreds of ms): what it
 * catches is work that grows with the input — printing a 20-million-bit bigint or
 * scanning 50 MB takes seconds — not a regression of microseconds.
 */
const SLOW_MS = 2000;

/** A flat 50 MiB string to time one pass over, as a yardstick for this machine's load. */
const yardstick = huge('');

/**
 * The time limit for a refusal (ms): SLOW_MS or, on a machine so loaded that one
 * pass over 50 MiB takes longer, half such a pass, timed now (a refusal that scanned
 * its input would take about a whole pass; 1.7 s was seen for a fast one under heavy
 * load). Call it just before the refusal, and before installing any spy.
 */
function loadLimitMs(): number {
  const passStarted = performance.now();
  const copy = Buffer.from(yardstick, 'latin1');
  const passMs = performance.now() - passStarted;
  expect(copy.length).toBe(LENGTH);
  return Math.max(SLOW_MS, passMs / 2);
}

/**
 * Runs `call`, which must throw, and returns what it threw, how long that took (ms)
 * and the limit for it, `limitMs` ({@link loadLimitMs} timed just before, by default).
 */
function timedRefusal(
  call: () => unknown,
  limitMs: number = loadLimitMs(),
): {
  error: unknown;
  elapsedMs: number;
  limitMs: number;
} {
  const started = performance.now();
  const error = catchError(call);
  return { error, elapsedMs: performance.now() - started, limitMs };
}

/**
 * Runs `call`, which must refuse its input within the limit with an error of type
 * `type` whose message is shorter than `maxMessage`, and returns the error.
 */
function refusedShortly<E extends Error>(
  call: () => unknown,
  type: abstract new (...args: never[]) => E,
  maxMessage = 300,
): E {
  const { error, elapsedMs, limitMs } = timedRefusal(call);
  expect(elapsedMs).toBeLessThan(limitMs);
  expect(error).toBeInstanceOf(type);
  expect((error as E).message.length).toBeLessThan(maxMessage);
  return error as E;
}

/**
 * Runs `call`, which must refuse its input: fast, without running a regular
 * expression or searching the string, and with a short message that quotes at most
 * a 64-character prefix and gives the total length.
 */
function refusedUpFront(call: () => unknown, length = LENGTH): HlcParseError {
  // The limit's yardstick pass (and its `expect`) runs before the spies count calls.
  const limit = loadLimitMs();
  const exec = vi.spyOn(RegExp.prototype, 'exec');
  const test = vi.spyOn(RegExp.prototype, 'test');
  const indexOf = vi.spyOn(String.prototype, 'indexOf');
  const { error, elapsedMs, limitMs } = timedRefusal(call, limit);
  const calls = [exec.mock.calls.length, test.mock.calls.length, indexOf.mock.calls.length];
  vi.restoreAllMocks();
  expect(error).toBeInstanceOf(HlcParseError);
  const e = error as HlcParseError;
  expect(calls, 'regex exec, regex test, indexOf calls').toEqual([0, 0, 0]);
  expect(elapsedMs).toBeLessThan(limitMs);
  expect(e.code).toBe('HLC_PARSE');
  expect(e.message.length).toBeLessThan(300);
  expect(e.input.length).toBeLessThan(120);
  if (length > 64) expect(e.input).toContain(`(${length} characters)`);
  expect(e.message).toContain(e.input);
  return e;
}

describe('oversized input is refused before parsing, with a short message', () => {
  it('parseHlc', () => {
    const input = huge('018bcfe56800002a@');
    const e = refusedUpFront(() => parseHlc(input));
    expect(e.input).toBe(`"018bcfe56800002a@${'a'.repeat(64 - 17)}"… (${LENGTH} characters)`);
  });

  it('parseLamport', () => {
    const input = huge('0000000000002a@');
    refusedUpFront(() => parseLamport(input));
  });

  it('VectorClock.decode', () => {
    // Entries that all look valid: a decoder that parses first reads every one of them.
    const input = huge('a=1,', 'b');
    refusedUpFront(() => VectorClock.decode(input));
  });

  it('VectorClock.decode: over the default limit of 1 MiB, or over options.maxLength', () => {
    const entries = Array.from({ length: 70_000 }, (_, i) => `n${String(i).padStart(6, '0')}=1`);
    const text = entries.join(','); // 770 000 characters, canonical
    expect(VectorClock.decode(text).size).toBe(70_000);
    const bigger = `${text},${text.replaceAll('n', 'o')}`; // 1 540 001 characters, canonical
    refusedUpFront(() => VectorClock.decode(bigger), bigger.length);
    expect(VectorClock.decode(bigger, { maxLength: 2 * MiB }).size).toBe(140_000);
    refusedUpFront(() => VectorClock.decode('a=1,b=2', { maxLength: 6 }), 7);
    expect(VectorClock.decode('a=1,b=2', { maxLength: 7 }).get('b')).toBe(2);
    expect(() => VectorClock.decode('', { maxLength: -1 })).toThrow(InvalidArgumentError);
  });

  it('hlcFromBytes', () => {
    const input = new Uint8Array(LENGTH);
    const error = refusedShortly(() => hlcFromBytes(input), HlcParseError);
    expect(error.input).toContain(`bytes[${LENGTH}]`);
  });

  it('hlcFromBigInt with a huge bigint', () => {
    const value = 1n << 20_000_000n;
    const error = refusedShortly(() => hlcFromBigInt(value, 'a'), HlcParseError);
    expect(error.input).toBe('0x1000000000000000…n (20000001 bits)');
  });

  it('a huge node id in an encoder or a validator: a short InvalidArgumentError, fast', () => {
    const node = huge('');
    refusedShortly(() => formatHlc({ wallMs: 0, counter: 0, node }), InvalidArgumentError, 500);
    refusedShortly(() => validateNodeId(node, 'NODE_ID'), InvalidArgumentError, 500);
  });

  it.each([
    ['a formatHlc-like string', '018bcfe56800002a@', 'a'],
    ['a decimal string', '', '7'],
  ])('decodeHlc: %s', (_name, prefix, fill) => {
    const input = huge(prefix, fill);
    const e = refusedUpFront(() => decodeHlc(input, 'a'));
    expect(e.input).toBe(`${JSON.stringify(input.slice(0, 64))}… (${input.length} characters)`);
  });

  it('decodeHlc: an object with a 50 MiB field', () => {
    const node = huge('');
    for (const value of [
      { wallMs: 1, counter: 0, node },
      { wallMs: -1, counter: 0, node: 'a', extra: node },
    ])
      refusedShortly(() => decodeHlc(value), HlcParseError);
  });

  it('decodeHlc: a huge node argument', () => {
    const node = huge('');
    refusedShortly(() => decodeHlc(5n, node), HlcParseError);
    const error = refusedShortly(() => decodeHlc('5', node), HlcParseError);
    expect(error.message).toMatch(/characters\)/);
  });
});

describe('short input is still quoted whole', () => {
  it.each(['garbage', '018bcfe56800002a@', `${'0'.repeat(16)}@${'x'.repeat(46)} `])(
    'parseHlc(%j)',
    (input) => {
      expect((catchError(() => parseHlc(input)) as HlcParseError).input).toBe(
        JSON.stringify(input),
      );
    },
  );

  it('a 65-character input is quoted by its first 64 characters and its length', () => {
    const input = `${'0'.repeat(16)}@${'x'.repeat(47)} `;
    expect((catchError(() => parseHlc(input)) as HlcParseError).input).toBe(
      `${JSON.stringify(input.slice(0, 64))}… (65 characters)`,
    );
  });
});
