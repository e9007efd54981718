/**
 * The cookie jar: first in, first out, each cookie handed out once, at most
 * `capacity` kept, unusable cookies (empty, too long, length not a multiple of
 * 4) never kept.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../../src/errors.js';
import { CookieJar, NTS_MAX_COOKIES, isUsableCookie } from '../../../src/ntp/nts/cookies.js';
import { fcParams } from '../../support/fc.js';

const cookie = (n: number, length = 8): Uint8Array => new Uint8Array(length).fill(n);

describe('CookieJar', () => {
  it('holds at most 8 by default, hands them out oldest first, each once', () => {
    const jar = new CookieJar();
    expect(jar.capacity).toBe(NTS_MAX_COOKIES);
    expect(jar.add(...Array.from({ length: 10 }, (_, i) => cookie(i)))).toBe(8);
    expect(jar.size).toBe(8);
    const taken = Array.from({ length: 8 }, () => jar.take()![0]);
    expect(taken).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(jar.take()).toBeUndefined();
    expect(jar.size).toBe(0);
  });

  it('keeps copies, and clear() drops everything', () => {
    const jar = new CookieJar(2);
    const c = cookie(5);
    jar.add(c);
    c.fill(0);
    expect(jar.take()![0]).toBe(5);
    jar.add(cookie(1), cookie(2));
    jar.clear();
    expect(jar.size).toBe(0);
    expect(jar.take()).toBeUndefined();
  });

  it('never keeps an unusable cookie', () => {
    expect(isUsableCookie(new Uint8Array(0))).toBe(false);
    expect(isUsableCookie(new Uint8Array(6))).toBe(false);
    expect(isUsableCookie(new Uint8Array(2048))).toBe(false);
    expect(isUsableCookie(new Uint8Array(100))).toBe(true);
    const jar = new CookieJar();
    expect(jar.add(new Uint8Array(0), new Uint8Array(6), cookie(1))).toBe(1);
  });

  it('refuses a capacity below 1', () => {
    expect(() => new CookieJar(0)).toThrow(InvalidArgumentError);
  });

  it('property: a sequence of adds and takes behaves like a bounded queue', () => {
    const op = fc.oneof(
      fc.record({ add: fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 5 }) }),
      fc.constant({ take: true as const }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.array(op, { maxLength: 40 }), (cap, ops) => {
        const jar = new CookieJar(cap);
        const model: number[] = [];
        for (const o of ops) {
          if ('add' in o) {
            for (const v of o.add) if (model.length < cap) model.push(v);
            jar.add(...o.add.map((v) => cookie(v)));
          } else {
            expect(jar.take()?.[0]).toBe(model.shift());
          }
          expect(jar.size).toBe(model.length);
        }
      }),
      fcParams(300),
    );
  });
});
