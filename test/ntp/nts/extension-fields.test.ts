/**
 * The extension-field layer: valid fields round-trip, the parser refuses every
 * malformation with NtsExtensionFieldError and, fuzzed with arbitrary bytes,
 * never throws anything else; the authenticator codec round-trips and refuses
 * nonzero padding.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeNtpPacket } from '../../../src/ntp/packet.js';
import { NtsExtensionFieldError } from '../../../src/ntp/nts/errors.js';
import {
  NtsExtensionFieldType,
  decodeAuthenticator,
  encodeAuthenticator,
  encodeExtensionField,
  parseExtensionFields,
} from '../../../src/ntp/nts/extension-fields.js';
import { fcParams } from '../../support/fc.js';
import { catchError } from '../../support/errors.js';
import { concatBytes } from '../../../src/_internals/bytes.js';

const header = encodeNtpPacket({ version: 4, mode: 3 });

function expectFieldError(f: () => unknown, pattern: RegExp): void {
  const thrown = catchError(f);
  expect(thrown).toBeInstanceOf(NtsExtensionFieldError);
  expect((thrown as NtsExtensionFieldError).code).toBe('NTS_EXTENSION_FIELD');
  expect((thrown as Error).message).toMatch(pattern);
}

describe('encodeExtensionField / parseExtensionFields', () => {
  it('lays out type, length, body and zero padding (RFC 7822)', () => {
    const field = encodeExtensionField(0x0104, Uint8Array.of(1, 2, 3, 4, 5));
    expect(Array.from(field)).toEqual([1, 4, 0, 16, 1, 2, 3, 4, 5, 0, 0, 0, 0, 0, 0, 0]);
    const uid = encodeExtensionField(NtsExtensionFieldType.uniqueIdentifier, new Uint8Array(32));
    expect(uid.length).toBe(36);
    expect(encodeExtensionField(0x0404, new Uint8Array(4), { minLength: 28 }).length).toBe(28);
  });

  it('parses nothing after a bare header', () => {
    expect(parseExtensionFields(header)).toEqual([]);
  });

  it('round-trips any sequence of valid fields', () => {
    const field = fc.record({
      type: fc.integer({ min: 0, max: 0xffff }),
      body: fc.uint8Array({ maxLength: 200 }),
    });
    fc.assert(
      fc.property(fc.array(field, { maxLength: 10 }), (fields) => {
        const encoded = fields.map((f) => encodeExtensionField(f.type, f.body));
        const parsed = parseExtensionFields(concatBytes([header, ...encoded]));
        expect(parsed.length).toBe(fields.length);
        let offset = 48;
        parsed.forEach((p, i) => {
          const f = fields[i]!;
          expect(p.type).toBe(f.type);
          expect(p.offset).toBe(offset);
          expect(p.length % 4).toBe(0);
          expect(p.length).toBeGreaterThanOrEqual(16);
          expect(Array.from(p.body.subarray(0, f.body.length))).toEqual(Array.from(f.body));
          expect(p.body.subarray(f.body.length).every((b) => b === 0)).toBe(true);
          offset += p.length;
        });
      }),
      fcParams(500),
    );
  });

  it('refuses each malformation with NtsExtensionFieldError', () => {
    const good = encodeExtensionField(0x0104, new Uint8Array(32));
    expectFieldError(
      () => parseExtensionFields(concatBytes([header, good, Uint8Array.of(0, 1)])),
      /left over/,
    );
    const short = new Uint8Array(good);
    short[3] = 12; // below 16
    expectFieldError(() => parseExtensionFields(concatBytes([header, short])), /below the minimum/);
    const odd = new Uint8Array(good);
    odd[3] = 34;
    expectFieldError(() => parseExtensionFields(concatBytes([header, odd])), /multiple of 4/);
    const long = new Uint8Array(good);
    long[3] = 40;
    expectFieldError(() => parseExtensionFields(concatBytes([header, long])), /runs past the end/);
    expectFieldError(() => parseExtensionFields(new Uint8Array(20)), /ends before byte 48/);
    expectFieldError(
      () => parseExtensionFields(concatBytes([header, good, good]), { maxFields: 1 }),
      /more than 1 fields/,
    );
  });

  it('fuzz: arbitrary bytes never throw anything but NtsExtensionFieldError', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 600 }),
        fc.integer({ min: 0, max: 64 }),
        fc.constantFrom(4, 16),
        (bytes, start, minLength) => {
          try {
            const fields = parseExtensionFields(bytes, { start, minLength });
            // What it accepts tiles the buffer exactly.
            let offset = start;
            for (const f of fields) {
              expect(f.offset).toBe(offset);
              expect(f.length).toBeGreaterThanOrEqual(minLength);
              offset += f.length;
            }
            expect(offset).toBe(bytes.length);
          } catch (e) {
            expect(e).toBeInstanceOf(NtsExtensionFieldError);
          }
        },
      ),
      fcParams(20_000),
    );
  });

  it('fuzz: mutated valid packets never throw anything but NtsExtensionFieldError', () => {
    const valid = concatBytes([
      header,
      encodeExtensionField(0x0104, new Uint8Array(32).fill(7)),
      encodeExtensionField(0x0204, new Uint8Array(100).fill(9)),
      encodeAuthenticator(new Uint8Array(16).fill(1), new Uint8Array(16).fill(2)),
    ]);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 4,
        }),
        fc.nat(valid.length),
        (edits, cut) => {
          const bytes = new Uint8Array(valid.subarray(0, Math.max(48, cut)));
          for (const [at, value] of edits) if (at < bytes.length) bytes[at] = value;
          try {
            for (const f of parseExtensionFields(bytes)) {
              if (f.type === 0x0404) {
                try {
                  decodeAuthenticator(f.body);
                } catch (e) {
                  expect(e).toBeInstanceOf(NtsExtensionFieldError);
                }
              }
            }
          } catch (e) {
            expect(e).toBeInstanceOf(NtsExtensionFieldError);
          }
        },
      ),
      fcParams(20_000),
    );
  });
});

describe('NTS authenticator field (RFC 8915 §5.6)', () => {
  it('round-trips nonce and ciphertext of any length', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 16, maxLength: 40 }),
        fc.uint8Array({ minLength: 16, maxLength: 300 }),
        fc.integer({ min: 4, max: 200 }),
        (nonce, ciphertext, minLength) => {
          const field = encodeAuthenticator(nonce, ciphertext, minLength);
          const [parsed] = parseExtensionFields(concatBytes([header, field]));
          expect(parsed?.type).toBe(NtsExtensionFieldType.authenticator);
          const decoded = decodeAuthenticator(parsed!.body);
          expect(Array.from(decoded.nonce)).toEqual(Array.from(nonce));
          expect(Array.from(decoded.ciphertext)).toEqual(Array.from(ciphertext));
        },
      ),
      fcParams(500),
    );
  });

  it('refuses a short nonce, a short ciphertext, overlong lengths and nonzero padding', () => {
    const body = (nonceLength: number, ciphertextLength: number, size: number): Uint8Array => {
      const b = new Uint8Array(size);
      new DataView(b.buffer).setUint16(0, nonceLength);
      new DataView(b.buffer).setUint16(2, ciphertextLength);
      return b;
    };
    expectFieldError(() => decodeAuthenticator(new Uint8Array(3)), /shorter than its 4-byte/);
    expectFieldError(() => decodeAuthenticator(body(8, 16, 40)), /nonce length 8/);
    expectFieldError(() => decodeAuthenticator(body(16, 8, 40)), /shorter than a tag/);
    expectFieldError(() => decodeAuthenticator(body(16, 32, 40)), /run past/);
    const padded = body(17, 16, 4 + 20 + 16 + 8);
    padded[4 + 17] = 1; // nonce padding
    expectFieldError(() => decodeAuthenticator(padded), /nonzero padding/);
    const extra = body(16, 16, 4 + 16 + 16 + 8);
    extra[extra.length - 1] = 1; // additional padding
    expectFieldError(() => decodeAuthenticator(extra), /nonzero padding/);
  });
});
