import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TimeExchangeError, type TimeReading } from '../../src/index.js';
import { composeTimeReply, parseTimeReply } from '../../src/protocol/reply.js';
import { fcParams } from '../support/fc.js';
import { centredReading } from '../support/readings.js';
import { TEST_NONCE as NONCE } from '../support/time-servers.js';

const WHERE = 'https://time.example/time';
const EPOCH = Date.UTC(2026, 0, 1);

describe('composeTimeReply', () => {
  it('rounds t2/t3 to the µs and ε up to the µs, plus 1 µs for that rounding', () => {
    const reply = composeTimeReply(
      NONCE,
      centredReading(EPOCH + 10.1234, 2.0001),
      centredReading(EPOCH + 10.2346, 1.5),
    );
    expect(reply).toEqual({
      type: 'chronobound.time-reply',
      v: 1,
      nonce: NONCE,
      t2: EPOCH + 10.123,
      t3: EPOCH + 10.235,
      errorMs: 2.002,
      status: 'synchronized',
    });
  });

  it('never sends t3 before t2, and the status at T3', () => {
    const reply = composeTimeReply(
      NONCE,
      centredReading(EPOCH + 10.25, 1),
      centredReading(EPOCH + 10, 1, 'free-running'),
    );
    expect(reply).toMatchObject({ t2: EPOCH + 10.25, t3: EPOCH + 10.25, status: 'free-running' });
  });

  it.each([
    [
      'the strict check refused',
      centredReading(EPOCH, 1),
      centredReading(EPOCH, 1),
      false,
      'unsynchronized',
    ],
    [
      'unsynchronized at T2',
      centredReading(EPOCH, 1, 'unsynchronized'),
      centredReading(EPOCH, 1),
      true,
      'unsynchronized',
    ],
    [
      'disrupted at T3',
      centredReading(EPOCH, 1),
      centredReading(EPOCH, 1, 'disrupted'),
      true,
      'disrupted',
    ],
    [
      'disrupted though the check refused',
      centredReading(EPOCH, 1, 'disrupted'),
      centredReading(EPOCH, 1),
      false,
      'disrupted',
    ],
    [
      'an infinite bound',
      centredReading(EPOCH, Infinity),
      centredReading(EPOCH, 1),
      true,
      'unsynchronized',
    ],
    [
      'a non-finite estimate',
      centredReading(EPOCH, 1),
      centredReading(NaN, 1),
      true,
      'unsynchronized',
    ],
  ] as const)(
    'refuses, with no times, when %s',
    (_what, atReceive, atTransmit, trusted, status) => {
      expect(composeTimeReply(NONCE, atReceive, atTransmit, trusted)).toEqual({
        type: 'chronobound.time-reply',
        v: 1,
        nonce: NONCE,
        status,
      });
    },
  );
});

describe('parseTimeReply', () => {
  const good = {
    type: 'chronobound.time-reply',
    v: 1,
    nonce: NONCE,
    t2: EPOCH,
    t3: EPOCH + 0.5,
    errorMs: 1,
    status: 'synchronized',
  };

  it('accepts a good reply as an object or JSON text (padded), keeping only its fields', () => {
    expect(parseTimeReply({ ...good, extra: 'x' }, NONCE, WHERE)).toEqual(good);
    expect(parseTimeReply(JSON.stringify(good).padEnd(256, ' '), NONCE, WHERE)).toEqual(good);
  });

  it.each([
    ['nonce-mismatch', 'another nonce', { ...good, nonce: 'f'.repeat(32) }],
    ['status', 'a refusal', { type: good.type, v: 1, nonce: NONCE, status: 'disrupted' }],
    ['body', 'text that is not JSON', 'hello'],
    ['body', 'text over 1024 characters', JSON.stringify({ ...good, pad: 'x'.repeat(1100) })],
    ['body', 'not an object', 42],
    ['body', 'null', null],
    ['body', 'version 2', { ...good, v: 2 }],
    ['body', 'a request', { ...good, type: 'chronobound.time-request' }],
    ['body', 'no nonce', { ...good, nonce: undefined }],
    ['body', 'an unknown status', { ...good, status: 'great' }],
    ['body', 'a string t2', { ...good, t2: String(EPOCH) }],
    ['body', 'an infinite t3', { ...good, t3: Infinity }],
    ['body', 'a negative errorMs', { ...good, errorMs: -1 }],
    ['body', 't3 before t2', { ...good, t3: EPOCH - 1 }],
  ])('throws %s for %s', (reason, _what, raw) => {
    let error: unknown;
    try {
      parseTimeReply(raw, NONCE, WHERE);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TimeExchangeError);
    expect(error).toMatchObject({ reason, endpoint: WHERE, code: 'HTTP_TIME' });
  });

  it('reads back what composeTimeReply wrote, with a bound no tighter than the clock’s (property)', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 4e12, noNaN: true }),
        fc.double({ min: 0, max: 1000, noNaN: true }),
        fc.double({ min: 0, max: 1e4, noNaN: true }),
        fc.double({ min: 0, max: 1e4, noNaN: true }),
        fc.constantFrom('synchronized', 'free-running') as fc.Arbitrary<TimeReading['status']>,
        (estimate, holdMs, epsilon2, epsilon3, status) => {
          const atReceive = centredReading(estimate, epsilon2);
          const atTransmit = centredReading(estimate + holdMs, epsilon3, status);
          const reply = composeTimeReply(NONCE, atReceive, atTransmit);
          const back = parseTimeReply(JSON.stringify(reply), NONCE, WHERE);
          expect(back).toEqual(reply);
          // Rounding moves each time by at most ½ µs; the reply's ε covers that.
          const epsilon = Math.max(epsilon2, epsilon3);
          expect(back.errorMs).toBeGreaterThanOrEqual(epsilon + 0.0005);
          expect(Math.abs(back.t2 - atReceive.estimate)).toBeLessThanOrEqual(
            back.errorMs - epsilon2,
          );
          expect(Math.abs(back.t3 - atTransmit.estimate)).toBeLessThanOrEqual(
            back.errorMs - epsilon3,
          );
        },
      ),
      fcParams(1000),
    );
  });
});
