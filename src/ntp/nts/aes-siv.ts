/**
 * AEAD_AES_SIV_CMAC_256 (RFC 5297): AES-SIV with two 128-bit keys, the AEAD
 * that NTS (RFC 8915) requires. Node's crypto has no SIV mode, so it is built
 * here from AES-CMAC (RFC 4493, over `aes-128-ecb` / `aes-128-cbc`) for S2V and
 * `aes-128-ctr` for the encryption. Tags are compared in constant time
 * (`crypto.timingSafeEqual`); a plaintext is released only after its tag verified.
 *
 * @module
 */
import { createCipheriv, timingSafeEqual } from 'node:crypto';
import { InvalidArgumentError } from '../../errors.js';

const BLOCK = 16;
const ZERO_BLOCK = new Uint8Array(BLOCK);
/** RFC 5297: S2V takes at most 127 strings with AES (126 AD components + the plaintext). */
const MAX_AD_COMPONENTS = 126;

/**
 * Key length of AEAD_AES_SIV_CMAC_256 in bytes: a CMAC key and a CTR key of 16 each.
 *
 * @example
 * ```ts
 * const key = crypto.getRandomValues(new Uint8Array(AES_SIV_KEY_LENGTH));
 * ```
 */
export const AES_SIV_KEY_LENGTH: number = 32;

/**
 * Length of the synthetic IV (the tag) that prefixes every ciphertext, in bytes.
 *
 * @example
 * ```ts
 * const plaintextLength = sealed.length - AES_SIV_TAG_LENGTH;
 * ```
 */
export const AES_SIV_TAG_LENGTH: number = 16;

function requireBytes(name: string, value: unknown): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new InvalidArgumentError(name, value, 'a Uint8Array');
  return value;
}

function requireKey(name: string, key: unknown, length: number): Uint8Array {
  const bytes = requireBytes(name, key);
  if (bytes.length !== length) {
    throw new InvalidArgumentError(name, `${bytes.length} bytes`, `a ${length}-byte key`);
  }
  return bytes;
}

/** AES-128 of one block. */
function encryptBlock(key: Uint8Array, block: Uint8Array): Uint8Array {
  const cipher = createCipheriv('aes-128-ecb', key, null).setAutoPadding(false);
  return new Uint8Array(cipher.update(block));
}

/** Doubling in GF(2¹²⁸) with the polynomial x¹²⁸ + x⁷ + x² + x + 1 (RFC 4493 / 5297 `dbl`). */
function dbl(block: Uint8Array): Uint8Array {
  const out = new Uint8Array(BLOCK);
  let carry = 0;
  for (let i = BLOCK - 1; i >= 0; i--) {
    const b = block[i] ?? 0;
    out[i] = ((b << 1) | carry) & 0xff;
    carry = b >>> 7;
  }
  // Branch-free: the input derives from the key.
  out[BLOCK - 1] = (out[BLOCK - 1] ?? 0) ^ (0x87 & -carry);
  return out;
}

function xorInto(target: Uint8Array, offset: number, source: Uint8Array): void {
  for (let i = 0; i < source.length; i++) {
    target[offset + i] = (target[offset + i] ?? 0) ^ (source[i] ?? 0);
  }
}

/** `x ‖ 10*`: one 1 bit, then zeros up to a full block (`x` shorter than a block). */
function pad(x: Uint8Array): Uint8Array {
  const out = new Uint8Array(BLOCK);
  out.set(x);
  out[x.length] = 0x80;
  return out;
}

/**
 * AES-CMAC (RFC 4493) with one key: the subkeys are derived once.
 */
class Cmac {
  readonly #key: Uint8Array;
  readonly #k1: Uint8Array;
  readonly #k2: Uint8Array;

  constructor(key: Uint8Array) {
    this.#key = key;
    this.#k1 = dbl(encryptBlock(key, ZERO_BLOCK));
    this.#k2 = dbl(this.#k1);
  }

  mac(message: Uint8Array): Uint8Array {
    const blocks = Math.max(1, Math.ceil(message.length / BLOCK));
    const whole = message.length > 0 && message.length % BLOCK === 0;
    const padded = new Uint8Array(blocks * BLOCK);
    padded.set(message);
    const last = (blocks - 1) * BLOCK;
    if (whole) {
      xorInto(padded, last, this.#k1);
    } else {
      padded[message.length] = 0x80;
      xorInto(padded, last, this.#k2);
    }
    // CBC with a zero IV is exactly the CMAC chain; its last block is the tag.
    const cipher = createCipheriv('aes-128-cbc', this.#key, ZERO_BLOCK).setAutoPadding(false);
    const out = cipher.update(padded);
    return new Uint8Array(out.subarray(out.length - BLOCK));
  }
}

/**
 * AES-CMAC (RFC 4493) of a message under a 16-byte key.
 *
 * @param key - The 128-bit key.
 * @param message - Any bytes (empty allowed).
 * @returns The 16-byte tag.
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When the key is not 16 bytes or an argument is not a Uint8Array.
 *
 * @example
 * ```ts
 * aesCmac(key, new Uint8Array(0)); // RFC 4493 example 1 with its key: bb1d6929…
 * ```
 */
export function aesCmac(key: Uint8Array, message: Uint8Array): Uint8Array {
  return new Cmac(requireKey('key', key, BLOCK)).mac(requireBytes('message', message));
}

/** S2V (RFC 5297 §2.4) over `strings`, the last of which is the plaintext. */
function s2v(cmac: Cmac, strings: readonly Uint8Array[]): Uint8Array {
  let d = cmac.mac(ZERO_BLOCK);
  for (let i = 0; i < strings.length - 1; i++) {
    d = dbl(d);
    xorInto(d, 0, cmac.mac(strings[i] as Uint8Array));
  }
  const last = strings[strings.length - 1] as Uint8Array;
  let t: Uint8Array;
  if (last.length >= BLOCK) {
    // xorend: D into the last 16 bytes.
    t = new Uint8Array(last);
    xorInto(t, last.length - BLOCK, d);
  } else {
    t = dbl(d);
    xorInto(t, 0, pad(last));
  }
  return cmac.mac(t);
}

/** The counter block: V with bits 63 and 31 (from the right) cleared. */
function counterFrom(v: Uint8Array): Uint8Array {
  const q = new Uint8Array(v);
  q[8] = (q[8] ?? 0) & 0x7f;
  q[12] = (q[12] ?? 0) & 0x7f;
  return q;
}

function ctr(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
  const cipher = createCipheriv('aes-128-ctr', key, iv);
  return new Uint8Array(Buffer.concat([cipher.update(data), cipher.final()]));
}

function checkComponents(associatedData: readonly Uint8Array[]): readonly Uint8Array[] {
  const list: unknown = associatedData;
  if (!Array.isArray(list)) {
    throw new InvalidArgumentError('associatedData', associatedData, 'an array of Uint8Array');
  }
  if (associatedData.length > MAX_AD_COMPONENTS) {
    throw new InvalidArgumentError(
      'associatedData',
      `${associatedData.length} components`,
      `at most ${MAX_AD_COMPONENTS} (RFC 5297)`,
    );
  }
  associatedData.forEach((ad, i) => requireBytes(`associatedData[${i}]`, ad));
  return associatedData;
}

/**
 * SIV-Encrypt (RFC 5297 §2.6) with a vector of associated-data strings.
 * Deterministic: the same inputs give the same output.
 *
 * @param key - 32 bytes: the CMAC key, then the CTR key.
 * @param associatedData - Up to 126 strings authenticated but not encrypted (each may be empty).
 * @param plaintext - The bytes to encrypt.
 * @returns The 16-byte synthetic IV followed by the ciphertext (`plaintext.length + 16` bytes).
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} On a wrong key length or too many components.
 *
 * @example
 * ```ts
 * const sealed = aesSivEncrypt(key, [header], plaintext);
 * ```
 */
export function aesSivEncrypt(
  key: Uint8Array,
  associatedData: readonly Uint8Array[],
  plaintext: Uint8Array,
): Uint8Array {
  requireKey('key', key, AES_SIV_KEY_LENGTH);
  const components = checkComponents(associatedData);
  requireBytes('plaintext', plaintext);
  const v = s2v(new Cmac(key.subarray(0, BLOCK)), [...components, plaintext]);
  const out = new Uint8Array(BLOCK + plaintext.length);
  out.set(v);
  out.set(ctr(key.subarray(BLOCK), counterFrom(v), plaintext), BLOCK);
  return out;
}

/**
 * SIV-Decrypt (RFC 5297 §2.7): decrypts, recomputes the synthetic IV over the
 * associated data and the plaintext, and compares it with the received one in
 * constant time.
 *
 * @param key - 32 bytes: the CMAC key, then the CTR key.
 * @param associatedData - The same strings given to {@link aesSivEncrypt}.
 * @param sealed - The synthetic IV followed by the ciphertext.
 * @returns The plaintext, or `undefined` when the input is shorter than a tag or
 *   does not verify (any changed bit in the IV, ciphertext or associated data).
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} On a wrong key length or too many components.
 *
 * @example
 * ```ts
 * const plaintext = aesSivDecrypt(key, [header], sealed);
 * if (plaintext === undefined) throw new Error('forged');
 * ```
 */
export function aesSivDecrypt(
  key: Uint8Array,
  associatedData: readonly Uint8Array[],
  sealed: Uint8Array,
): Uint8Array | undefined {
  requireKey('key', key, AES_SIV_KEY_LENGTH);
  const components = checkComponents(associatedData);
  requireBytes('sealed', sealed);
  if (sealed.length < BLOCK) return undefined;
  const v = sealed.subarray(0, BLOCK);
  const plaintext = ctr(key.subarray(BLOCK), counterFrom(v), sealed.subarray(BLOCK));
  const t = s2v(new Cmac(key.subarray(0, BLOCK)), [...components, plaintext]);
  if (!timingSafeEqual(t, v)) {
    plaintext.fill(0);
    return undefined;
  }
  return plaintext;
}

/**
 * AEAD_AES_SIV_CMAC_256 encryption in the RFC 5116 interface, as NTS uses it
 * (RFC 5297 §6): S2V over the associated data, then the nonce, then the plaintext.
 *
 * @param key - 32 bytes.
 * @param nonce - At least one byte (NTS uses 16 random bytes).
 * @param associatedData - One string (NTS: the packet up to the authenticator).
 * @param plaintext - The bytes to encrypt (NTS: extension fields, or nothing).
 * @returns Tag ‖ ciphertext.
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} On a wrong key length or an empty nonce.
 *
 * @example
 * ```ts
 * const sealed = aeadAesSivCmac256Seal(c2sKey, nonce, packetSoFar, new Uint8Array(0));
 * ```
 */
export function aeadAesSivCmac256Seal(
  key: Uint8Array,
  nonce: Uint8Array,
  associatedData: Uint8Array,
  plaintext: Uint8Array,
): Uint8Array {
  if (requireBytes('nonce', nonce).length === 0) {
    throw new InvalidArgumentError('nonce', nonce, 'at least one byte');
  }
  return aesSivEncrypt(key, [requireBytes('associatedData', associatedData), nonce], plaintext);
}

/**
 * AEAD_AES_SIV_CMAC_256 decryption in the RFC 5116 interface: the inverse of
 * {@link aeadAesSivCmac256Seal}.
 *
 * @param key - 32 bytes.
 * @param nonce - The nonce the sender used.
 * @param associatedData - The associated data the sender authenticated.
 * @param sealed - Tag ‖ ciphertext.
 * @returns The plaintext, or `undefined` when anything does not verify.
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} On a wrong key length or an empty nonce.
 *
 * @example
 * ```ts
 * const plaintext = aeadAesSivCmac256Open(s2cKey, nonce, packetSoFar, sealed);
 * ```
 */
export function aeadAesSivCmac256Open(
  key: Uint8Array,
  nonce: Uint8Array,
  associatedData: Uint8Array,
  sealed: Uint8Array,
): Uint8Array | undefined {
  if (requireBytes('nonce', nonce).length === 0) {
    throw new InvalidArgumentError('nonce', nonce, 'at least one byte');
  }
  return aesSivDecrypt(key, [requireBytes('associatedData', associatedData), nonce], sealed);
}
