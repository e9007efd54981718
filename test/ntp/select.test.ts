import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/index.js';
import { selectOffset, type SelectionCandidate } from '../../src/ntp/index.js';
import { fcParams } from '../support/fc.js';

const c = (id: string, offsetMs: number, errorMs: number, monotonicAt = 0): SelectionCandidate => ({
  id,
  monotonicAt,
  offsetMs,
  errorMs,
});

describe('selectOffset (Marzullo, honest)', () => {
  it('a single server: its own interval', () => {
    const r = selectOffset([c('a', 10, 2)]);
    expect(r).toMatchObject({ ok: true, offsetMs: 10, errorMs: 2, low: 8, high: 12, required: 1 });
  });

  it('two servers must overlap; the answer is their intersection', () => {
    const r = selectOffset([c('a', 10, 2), c('b', 13, 2)]);
    expect(r).toMatchObject({ ok: true, low: 11, high: 12, offsetMs: 11.5, errorMs: 0.5 });
    expect(selectOffset([c('a', 10, 1), c('b', 13, 1)])).toMatchObject({
      ok: false,
      reason: 'no-majority',
    });
  });

  it('casts out a falseticker among three and reports it', () => {
    const r = selectOffset([c('a', 0, 1), c('b', 0.5, 1), c('x', 500, 1)]);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.falsetickers).toEqual(['x']);
    expect(r.truechimers).toEqual(['a', 'b']);
    expect([r.low, r.high]).toEqual([-0.5, 1]);
  });

  it('stays honest where the RFC 5905 loop would not: an overlapping falseticker', () => {
    // Truth is 0. a and b contain it; x misses it but overlaps both.
    const candidates = [c('a', 0, 1), c('b', 0, 1), c('x', 1.5, 1)];
    // The RFC loop's f = 0 answer is the common part [0.5, 1]: it excludes 0.
    const rfc = selectOffset(candidates, { maxFalsetickers: 0 });
    expect(rfc).toMatchObject({ ok: true, low: 0.5, high: 1 });
    // Tolerating one falseticker (the default for 3) keeps the truth inside.
    const honest = selectOffset(candidates);
    expect(honest.ok).toBe(true);
    if (!honest.ok) return;
    expect(honest.low).toBeLessThanOrEqual(0);
    expect(honest.high).toBeGreaterThanOrEqual(0);
  });

  it('ages every interval to the newest sample with the drift bound', () => {
    // a is 10 s older: at 200 ppm it widens by 2 ms.
    const r = selectOffset([c('a', 0, 1, 0), c('b', 0, 1, 10_000)], { maxDriftPpm: 200 });
    expect(r.monotonicAt).toBe(10_000);
    expect(r.intervals).toEqual([
      { id: 'a', low: -3, high: 3 },
      { id: 'b', low: -1, high: 1 },
    ]);
    const at = selectOffset([c('a', 0, 1, 0)], { atMonotonic: 5000, maxDriftPpm: 100 });
    expect(at).toMatchObject({ ok: true, errorMs: 1.5, monotonicAt: 5000 });
  });

  it('f comes from the configured servers; a − f of the a answers must overlap (the table in the module notes)', () => {
    // 3 configured (f = 1), 1 answered: it may be the one liar.
    expect(selectOffset([c('a', 0, 1)], { configured: 3 })).toMatchObject({
      ok: false,
      reason: 'no-majority',
      maxFalsetickers: 1,
    });
    // 2 configured (f = 0), one dead: the live one alone.
    expect(selectOffset([c('a', 5, 1)], { configured: 2 })).toMatchObject({
      ok: true,
      low: 4,
      high: 6,
      required: 1,
    });
    // 3 configured, one silent, one liar overlapping the honest interval: the
    // hull of both, never their intersection (which would miss the truth at 0).
    const honestAndLiar = selectOffset([c('honest', 0, 1), c('liar', 1.5, 1)], { configured: 3 });
    expect(honestAndLiar).toMatchObject({ ok: true, low: -1, high: 2.5, required: 1 });
    // 3 configured, all answer: two must overlap.
    expect(
      selectOffset([c('a', 0, 1), c('b', 0.2, 1), c('x', 9, 1)], { configured: 3 }),
    ).toMatchObject({
      ok: true,
      falsetickers: ['x'],
      required: 2,
    });
    // 5 configured (f = 2), 4 answer: two must overlap.
    expect(
      selectOffset([c('a', 0, 1), c('b', 0, 1), c('c', 0, 1), c('d', 0, 1)], { configured: 5 }),
    ).toMatchObject({
      required: 2,
      maxFalsetickers: 2,
    });
    expect(selectOffset([])).toMatchObject({ ok: false, reason: 'no-candidates' });
  });

  it('property: any silent servers and up to f liars among the configured ones: the truth is inside whenever more than f answer, and only then is there an answer', () => {
    const scenario = fc
      .record({
        truth: fc.double({ min: -1e6, max: 1e6, noNaN: true }),
        configured: fc.integer({ min: 1, max: 9 }),
      })
      .chain(({ truth, configured }) =>
        fc.record({
          truth: fc.constant(truth),
          configured: fc.constant(configured),
          answering: fc.integer({ min: 0, max: configured }),
          liars: fc.integer({ min: 0, max: Math.floor((configured - 1) / 2) }),
          errors: fc.array(fc.double({ min: 0.01, max: 50, noNaN: true }), {
            minLength: configured,
            maxLength: configured,
          }),
          // A liar misses the truth by (1 + miss)·its bound: small misses overlap the honest.
          misses: fc.array(fc.double({ min: 1e-6, max: 5, noNaN: true }), {
            minLength: configured,
            maxLength: configured,
          }),
          fractions: fc.array(fc.double({ min: -1, max: 1, noNaN: true }), {
            minLength: configured,
            maxLength: configured,
          }),
        }),
      );
    fc.assert(
      fc.property(scenario, (s) => {
        const candidates: SelectionCandidate[] = [];
        for (let i = 0; i < s.answering; i++) {
          const e = s.errors[i]!;
          const offset =
            i < s.liars
              ? s.truth + (i % 2 === 0 ? 1 : -1) * ((1 + s.misses[i]!) * e + 1e-6)
              : s.truth + s.fractions[i]! * e;
          candidates.push(c(`s${i}`, offset, e));
        }
        const r = selectOffset(candidates, { configured: s.configured, maxDriftPpm: 0 });
        const f = Math.floor((s.configured - 1) / 2);
        if (s.answering <= f) {
          expect(r.ok).toBe(false);
          return;
        }
        expect(r.ok).toBe(true);
        if (!r.ok) return;
        const slack = 16 * Number.EPSILON * (Math.abs(s.truth) + 1e3);
        expect(r.low).toBeLessThanOrEqual(s.truth + slack);
        expect(r.high).toBeGreaterThanOrEqual(s.truth - slack);
      }),
      fcParams(3000),
    );
  });

  it('rejects malformed candidates and impossible m/f, naming them', () => {
    expect(() => selectOffset([c('a', NaN, 1)])).toThrow(
      expect.objectContaining({ argument: 'candidates' }),
    );
    expect(() => selectOffset([c('a', 0, -1)])).toThrow(InvalidArgumentError);
    expect(() => selectOffset([c('a', 0, 1), c('b', 0, 1)], { configured: 1 })).toThrow(
      expect.objectContaining({ argument: 'configured' }),
    );
    expect(() => selectOffset([c('a', 0, 1), c('b', 0, 1)], { maxFalsetickers: 2 })).toThrow(
      expect.objectContaining({ argument: 'maxFalsetickers' }),
    );
  });

  it('property: with fewer than m/2 falsetickers (even adversarial ones) the truth is inside, and no truechimer is cast out', () => {
    const scenario = fc
      .record({
        truth: fc.double({ min: -1e12, max: 1e12, noNaN: true }),
        m: fc.integer({ min: 1, max: 9 }),
        seedErrors: fc.array(fc.double({ min: 0.01, max: 50, noNaN: true }), {
          minLength: 9,
          maxLength: 9,
        }),
        seedFractions: fc.array(fc.double({ min: -1, max: 1, noNaN: true }), {
          minLength: 9,
          maxLength: 9,
        }),
        // A falseticker misses the truth by (1 + miss)·its bound, on either side:
        // small misses make it overlap the truechimers.
        seedMisses: fc.array(fc.double({ min: 1e-9, max: 5, noNaN: true }), {
          minLength: 9,
          maxLength: 9,
        }),
        sides: fc.array(fc.boolean(), { minLength: 9, maxLength: 9 }),
        ages: fc.array(fc.integer({ min: 0, max: 100_000 }), {
          minLength: 9,
          maxLength: 9,
        }),
        // The local clock's real drift against true time (one rate: one truth).
        ratePpm: fc.double({ min: -200, max: 200, noNaN: true }),
      })
      .chain((s) =>
        fc.record({
          s: fc.constant(s),
          falsetickers: fc.integer({ min: 0, max: Math.ceil(s.m / 2) - 1 }),
        }),
      );
    fc.assert(
      fc.property(scenario, ({ s, falsetickers }) => {
        const now = 1_000_000;
        const candidates: SelectionCandidate[] = [];
        const liars = new Set<string>();
        for (let i = 0; i < s.m; i++) {
          const id = `s${i}`;
          const errorMs = s.seedErrors[i]!;
          const age = s.ages[i]!;
          // True offset at that earlier moment, given the real drift rate.
          const truthThen = s.truth - s.ratePpm * 1e-6 * age;
          let offsetMs: number;
          if (i < falsetickers) {
            liars.add(id);
            const miss = (1 + s.seedMisses[i]!) * errorMs + 1e-6;
            offsetMs = truthThen + (s.sides[i] ? miss : -miss);
          } else {
            offsetMs = truthThen + s.seedFractions[i]! * errorMs;
          }
          candidates.push({ id, monotonicAt: now - age, offsetMs, errorMs });
        }
        // Reference: the newest sample, as ntpSource does.
        const r = selectOffset(candidates, { maxDriftPpm: 200 });
        expect(r.ok).toBe(true);
        if (!r.ok) return;
        const ref = r.monotonicAt;
        // `truth` is the offset at `now`; at the reference it differed by at most
        // 200 ppm of the gap (plus double rounding at this magnitude).
        const slack =
          200e-6 * Math.abs(now - ref) + 16 * Number.EPSILON * (Math.abs(s.truth) + 1e3);
        expect(r.low).toBeLessThanOrEqual(s.truth + slack);
        expect(r.high).toBeGreaterThanOrEqual(s.truth - slack);
        for (const id of r.falsetickers) expect(liars.has(id)).toBe(true);
      }),
      fcParams(3000),
    );
  });

  it('property: the hull is the lowest and highest point covered by m − f intervals (brute force)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            offset: fc.integer({ min: -20, max: 20 }),
            error: fc.integer({ min: 0, max: 10 }),
          }),
          { minLength: 1, maxLength: 7 },
        ),
        (entries) => {
          const candidates = entries.map((e, i) => c(`s${i}`, e.offset, e.error));
          const r = selectOffset(candidates, { maxDriftPpm: 0 });
          const m = entries.length;
          const need = m - (Math.ceil(m / 2) - 1);
          const covered = (x: number): boolean =>
            candidates.filter((k) => k.offsetMs - k.errorMs <= x && x <= k.offsetMs + k.errorMs)
              .length >= need;
          // Endpoints are integers: scanning the integer grid finds the extremes.
          const points: number[] = [];
          for (let x = -40; x <= 40; x++) if (covered(x)) points.push(x);
          if (points.length === 0) {
            expect(r.ok).toBe(false);
          } else {
            expect(r).toMatchObject({ ok: true, low: points[0], high: points[points.length - 1] });
          }
        },
      ),
      fcParams(2000),
    );
  });
});
