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
  formatHlc,
  hlcFromBigInt,
  hlcFromBytes,
  parseHlc,
  parseLamport,
  validateNodeId,
} from '../../src/index.js';

const MiB = 2 ** 20;
const LENGTH = 50 * MiB;

/** A flat 50 MiB string, as read from a socket or a file, starting with `prefix`. */
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

/**
 * Runs `call`, which must refuse its input: fast, without running a regular
 * expression or searching the string, and with a short message that quotes at most
 * a 64-character prefix and gives the total length.
 */
function refusedUpFront(call: () => unknown, length = LENGTH): HlcParseError {
  const exec = vi.spyOn(RegExp.prototype, 'exec');
  const test = vi.spyOn(RegExp.prototype, 'test');
  const indexOf = vi.spyOn(String.prototype, 'indexOf');
  const started = performance.now();
  let error: unknown;
  try {
    call();
  } catch (e) {
    error = e;
  }
  const elapsed = performance.now() - started;
  const calls = [exec.mock.calls.length, test.mock.calls.length, indexOf.mock.calls.length];
  vi.restoreAllMocks();
  expect(error).toBeInstanceOf(HlcParseError);
  const e = error as HlcParseError;
  expect(calls, 'regex exec, regex test, indexOf calls').toEqual([0, 0, 0]);
  expect(elapsed).toBeLessThan(SLOW_MS);
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
    const started = performance.now();
    let error: unknown;
    try {
      hlcFromBytes(input);
    } catch (e) {
      error = e;
    }
    expect(performance.now() - started).toBeLessThan(SLOW_MS);
    expect(error).toBeInstanceOf(HlcParseError);
    expect((error as Error).message.length).toBeLessThan(300);
    expect((error as HlcParseError).input).toContain(`bytes[${LENGTH}]`);
  });

  it('hlcFromBigInt with a huge bigint', () => {
    const value = 1n << 20_000_000n;
    const started = performance.now();
    let error: unknown;
    try {
      hlcFromBigInt(value, 'a');
    } catch (e) {
      error = e;
    }
    expect(performance.now() - started).toBeLessThan(SLOW_MS);
    expect(error).toBeInstanceOf(HlcParseError);
    expect((error as Error).message.length).toBeLessThan(300);
    expect((error as HlcParseError).input).toBe('0x1000000000000000…n (20000001 bits)');
  });

  it('a huge node id in an encoder or a validator: a short InvalidArgumentError, fast', () => {
    const node = huge('');
    for (const call of [
      () => formatHlc({ wallMs: 0, counter: 0, node }),
      () => validateNodeId(node, 'NODE_ID'),
    ]) {
      const started = performance.now();
      let error: unknown;
      try {
        call();
      } catch (e) {
        error = e;
      }
      expect(performance.now() - started).toBeLessThan(SLOW_MS);
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as Error).message.length).toBeLessThan(500);
    }
  });
});

describe('short input is still quoted whole', () => {
  it.each(['garbage', '018bcfe56800002a@', `${'0'.repeat(16)}@${'x'.repeat(46)} `])(
    'parseHlc(%j)',
    (input) => {
      let error: unknown;
      try {
        parseHlc(input);
      } catch (e) {
        error = e;
      }
      expect((error as HlcParseError).input).toBe(JSON.stringify(input));
    },
  );

  it('a 65-character input is quoted by its first 64 characters and its length', () => {
    const input = `${'0'.repeat(16)}@${'x'.repeat(47)} `;
    let error: unknown;
    try {
      parseHlc(input);
    } catch (e) {
      error = e;
    }
    expect((error as HlcParseError).input).toBe(
      `${JSON.stringify(input.slice(0, 64))}… (65 characters)`,
    );
  });
});
