/**
 * AEAD_AES_SIV_CMAC_256: RFC 4493's AES-CMAC examples, RFC 5297's A.1
 * (deterministic) and A.2 (nonce-based, several AD components) vectors, the
 * AEAD interface order NTS uses (AD, then nonce) checked against vectors
 * chrony's unit tests run through nettle/GnuTLS, and properties: decryption
 * inverts encryption, and any flipped bit in the tag, ciphertext, associated data
 * or nonce is refused.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../../src/errors.js';
import {
  aeadAesSivCmac256Open,
  aeadAesSivCmac256Seal,
  aesCmac,
  aesSivDecrypt,
  aesSivEncrypt,
} from '../../../src/ntp/nts/aes-siv.js';
import { fcParams } from '../../support/fc.js';

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('AES-CMAC (RFC 4493 §4 examples)', () => {
  const key = hex('2b7e1516 28aed2a6 abf71588 09cf4f3c');
  const message = hex(
    '6bc1bee2 2e409f96 e93d7e11 7393172a ae2d8a57 1e03ac9c 9eb76fac 45af8e51' +
      '30c81c46 a35ce411 e5fbc119 1a0a52ef f69f2445 df4f9b17 ad2b417b e66c3710',
  );
  const cases: Array<[string, number, string]> = [
    ['example 1, empty message', 0, 'bb1d6929 e9593728 7fa37d12 9b756746'],
    ['example 2, one block', 16, '070a16b4 6b4d4144 f79bdd9d d04a287c'],
    ['example 3, 40 bytes (partial last block)', 40, 'dfa66747 de9ae630 30ca3261 1497c827'],
    ['example 4, four blocks', 64, '51f0bebf 7e3b9d92 fc497417 79363cfe'],
  ];
  for (const [name, length, tag] of cases) {
    it(name, () => {
      expect(toHex(aesCmac(key, message.subarray(0, length)))).toBe(toHex(hex(tag)));
    });
  }

  it('refuses a key that is not 16 bytes', () => {
    expect(() => aesCmac(new Uint8Array(32), new Uint8Array(0))).toThrow(InvalidArgumentError);
  });
});

describe('AES-SIV (RFC 5297 appendix A)', () => {
  it('A.1 deterministic authenticated encryption', () => {
    const key = hex('fffefdfc fbfaf9f8 f7f6f5f4 f3f2f1f0 f0f1f2f3 f4f5f6f7 f8f9fafb fcfdfeff');
    const ad = hex('10111213 14151617 18191a1b 1c1d1e1f 20212223 24252627');
    const plaintext = hex('11223344 55667788 99aabbcc ddee');
    const expected = '85632d07c6e8f37f950acd320a2ecc93' + '40c02b9690c4dc04daef7f6afe5c';
    const sealed = aesSivEncrypt(key, [ad], plaintext);
    expect(toHex(sealed)).toBe(expected);
    expect(toHex(aesSivDecrypt(key, [ad], sealed)!)).toBe(toHex(plaintext));
  });

  it('A.2 nonce-based authenticated encryption (AD1, AD2, nonce)', () => {
    const key = hex('7f7e7d7c 7b7a7978 77767574 73727170 40414243 44454647 48494a4b 4c4d4e4f');
    const ad1 = hex(
      '00112233 44556677 8899aabb ccddeeff deaddada deaddada ffeeddcc bbaa9988 77665544 33221100',
    );
    const ad2 = hex('10203040 50607080 90a0');
    const nonce = hex('09f91102 9d74e35b d84156c5 635688c0');
    const plaintext = hex(
      '74686973 20697320 736f6d65 20706c61 696e7465 78742074 6f20656e 63727970 74207573 696e6720 5349562d 414553',
    );
    const expected =
      '7bdb6e3b432667eb06f4d14bff2fbd0f' +
      'cb900f2fddbe404326601965c889bf17' +
      'dba77ceb094fa663b7a3f748ba8af829' +
      'ea64ad544a272e9c485b62a3fd5c0d';
    const sealed = aesSivEncrypt(key, [ad1, ad2, nonce], plaintext);
    expect(toHex(sealed)).toBe(expected);
    expect(toHex(aesSivDecrypt(key, [ad1, ad2, nonce], sealed)!)).toBe(toHex(plaintext));
    // The AEAD interface with AD = AD1 and nonce: a different S2V input, a different tag.
    expect(toHex(aeadAesSivCmac256Seal(key, nonce, ad1, plaintext))).not.toBe(expected);
  });
});

describe('AEAD_AES_SIV_CMAC_256 interface (AD, then nonce), as chrony/nettle compute it', () => {
  // From chrony 4.3 test/unit/siv.c: the same algorithm through nettle or GnuTLS.
  const key = hex('0123456789abcdef f0123456789abcde ef0123456789abcd def0123456789abc');
  const cases: Array<{ nonce: string; ad: string; plaintext: string; sealed: string }> = [
    {
      nonce: '101112131415161718191a1b1c1d1e1f',
      ad: '',
      plaintext: '',
      sealed: '223eb594e0e0254b00258e219a1ca421',
    },
    {
      nonce: '101112131415161718191a1b1c1d1e1f',
      ad: '4c9d4fcaed8ae2baad3f3ea6e93c8c8b',
      plaintext: '',
      sealed: 'd7201989c6dbc6d661fc62bc865eeeef',
    },
    {
      nonce: '101112131415161718191a1b1c1d1e1f',
      ad: '',
      plaintext: '4c9d4fcaed8ae2baad3f3ea6e93c8c8b',
      sealed: 'b6c160e9c2fd2ae8dec5368b2a33ede114ffb397345ccbe44aa4deacd9369046',
    },
    {
      nonce: '101112131415161718191a1b1c1d1e',
      ad: '4c9d4fcaed8ae2baad3f3ea6e93c8c',
      plaintext: 'ba997931237e3c53587ed49302abe4',
      sealed: '038c4151ba7a8f776e563199420bc703e76c67c9dab70d5b4406265ad0d23b',
    },
    {
      nonce: '101112131415161718191a1b1c1d1e1f',
      ad: '4c9d4fcaed8ae2baad3f3ea6e93c8c8b',
      plaintext: 'ba997931237e3c53587ed49302abe4a7',
      sealed: '5c052365f4570aa0fb383ece9b7585eb688519360c7c481140cb9b579a0e6532',
    },
    {
      nonce: '101112131415161718191a1b1c1d1e1fd5',
      ad: '4c9d4fcaed8ae2baad3f3ea6e93c8c8ba0',
      plaintext: 'ba997931237e3c53587ed49302abe4a708',
      sealed: 'af584be7821e9619299125e0dd803b49a511cdb608f376a0b6fa1582f395e1ebbd',
    },
  ];
  cases.forEach((c, i) => {
    it(`vector ${i + 1} (nonce ${c.nonce.length / 2} B, AD ${c.ad.length / 2} B, plaintext ${c.plaintext.length / 2} B)`, () => {
      const sealed = aeadAesSivCmac256Seal(key, hex(c.nonce), hex(c.ad), hex(c.plaintext));
      expect(toHex(sealed)).toBe(c.sealed);
      const opened = aeadAesSivCmac256Open(key, hex(c.nonce), hex(c.ad), sealed);
      expect(opened && toHex(opened)).toBe(c.plaintext);
    });
  });

  it('refuses an empty nonce and a key that is not 32 bytes', () => {
    expect(() => aeadAesSivCmac256Seal(key, new Uint8Array(0), hex(''), hex(''))).toThrow(
      InvalidArgumentError,
    );
    expect(() => aeadAesSivCmac256Seal(key.subarray(1), hex('00'), hex(''), hex(''))).toThrow(
      InvalidArgumentError,
    );
  });

  it('returns undefined for input shorter than a tag', () => {
    expect(aeadAesSivCmac256Open(key, hex('00'), hex(''), new Uint8Array(15))).toBeUndefined();
  });
});

describe('AES-SIV properties', () => {
  const bytes = (max: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ maxLength: max });
  const key = fc.uint8Array({ minLength: 32, maxLength: 32 });
  const nonce = fc.uint8Array({ minLength: 1, maxLength: 32 });

  it('decrypt(encrypt(x)) = x', () => {
    fc.assert(
      fc.property(key, nonce, bytes(300), bytes(300), (k, n, ad, p) => {
        const sealed = aeadAesSivCmac256Seal(k, n, ad, p);
        expect(sealed.length).toBe(p.length + 16);
        const opened = aeadAesSivCmac256Open(k, n, ad, sealed);
        expect(opened).toBeDefined();
        expect(toHex(opened!)).toBe(toHex(p));
      }),
      fcParams(300),
    );
  });

  it('any single bit flipped in the tag or ciphertext is refused', () => {
    fc.assert(
      fc.property(key, nonce, bytes(100), bytes(100), fc.nat(), (k, n, ad, p, at) => {
        const sealed = aeadAesSivCmac256Seal(k, n, ad, p);
        const bit = at % (sealed.length * 8);
        const forged = new Uint8Array(sealed);
        forged[bit >> 3] = (forged[bit >> 3] ?? 0) ^ (1 << (bit & 7));
        expect(aeadAesSivCmac256Open(k, n, ad, forged)).toBeUndefined();
      }),
      fcParams(500),
    );
  });

  it('any single bit flipped in the associated data or the nonce is refused', () => {
    fc.assert(
      fc.property(
        key,
        nonce,
        fc.uint8Array({ minLength: 1, maxLength: 100 }),
        bytes(100),
        fc.nat(),
        fc.boolean(),
        (k, n, ad, p, at, inNonce) => {
          const sealed = aeadAesSivCmac256Seal(k, n, ad, p);
          const target = new Uint8Array(inNonce ? n : ad);
          const bit = at % (target.length * 8);
          target[bit >> 3] = (target[bit >> 3] ?? 0) ^ (1 << (bit & 7));
          const opened = inNonce
            ? aeadAesSivCmac256Open(k, target, ad, sealed)
            : aeadAesSivCmac256Open(k, n, target, sealed);
          expect(opened).toBeUndefined();
        },
      ),
      fcParams(500),
    );
  });

  it('a different key, a truncated or an extended ciphertext is refused', () => {
    fc.assert(
      fc.property(key, key, nonce, bytes(64), bytes(64), (k1, k2, n, ad, p) => {
        fc.pre(toHex(k1) !== toHex(k2));
        const sealed = aeadAesSivCmac256Seal(k1, n, ad, p);
        expect(aeadAesSivCmac256Open(k2, n, ad, sealed)).toBeUndefined();
        expect(aeadAesSivCmac256Open(k1, n, ad, sealed.subarray(0, sealed.length - 1))).toBe(
          undefined,
        );
        const longer = new Uint8Array(sealed.length + 1);
        longer.set(sealed);
        expect(aeadAesSivCmac256Open(k1, n, ad, longer)).toBeUndefined();
      }),
      fcParams(200),
    );
  });
});
