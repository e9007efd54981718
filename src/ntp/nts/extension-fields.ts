/**
 * NTPv4 extension fields (RFC 7822) and the four that NTS defines (RFC 8915
 * §5.3–5.6), on top of the 48-byte header that `encodeNtpPacket` produces.
 *
 * A field is `type (16) ‖ length (16) ‖ body ‖ zero padding`, its length counting
 * the 4-byte header and a multiple of 4. The parser is strict: a field shorter
 * than the minimum, a length that is not a multiple of 4 or runs past the end,
 * and bytes left over after the last field are all {@link NtsExtensionFieldError};
 * nothing else is ever thrown for any input.
 *
 * @module
 */
import { InvalidArgumentError } from '../../errors.js';
import { NtsExtensionFieldError } from './errors.js';

/**
 * The NTS extension field types (RFC 8915 §7.5).
 *
 * @example
 * ```ts
 * if (field.type === NtsExtensionFieldType.uniqueIdentifier) check(field.body);
 * ```
 */
export const NtsExtensionFieldType: {
  readonly uniqueIdentifier: 0x0104;
  readonly cookie: 0x0204;
  readonly cookiePlaceholder: 0x0304;
  readonly authenticator: 0x0404;
} = {
  uniqueIdentifier: 0x0104,
  cookie: 0x0204,
  cookiePlaceholder: 0x0304,
  authenticator: 0x0404,
};

/**
 * The smallest extension field RFC 7822 allows in an NTPv4 packet, in bytes.
 *
 * @example
 * ```ts
 * encodeExtensionField(type, body, { minLength: MIN_EXTENSION_FIELD_LENGTH });
 * ```
 */
export const MIN_EXTENSION_FIELD_LENGTH: number = 16;

/** The largest field the 16-bit length can describe, rounded down to a multiple of 4. */
const MAX_FIELD_LENGTH = 0xfffc;

/**
 * One parsed extension field. `body` is a view into the parsed buffer (padding
 * included: the length on the wire does not say where the value ends).
 *
 * @example
 * ```ts
 * for (const f of parseExtensionFields(datagram)) console.log(f.type.toString(16), f.body.length);
 * ```
 */
export interface ExtensionField {
  /** Field type (16 bits). */
  readonly type: number;
  /** Offset of the field's first byte in the parsed buffer. */
  readonly offset: number;
  /** Whole field length in bytes, header included (a multiple of 4). */
  readonly length: number;
  /** The bytes after the 4-byte header. */
  readonly body: Uint8Array;
}

/**
 * Options of {@link parseExtensionFields}.
 *
 * @example
 * ```ts
 * parseExtensionFields(plaintext, { start: 0, minLength: 4 }); // fields inside an authenticator
 * ```
 */
export interface ParseExtensionFieldsOptions {
  /**
   * Where the first field starts; the default is just after the NTP header.
   *
   * @defaultValue `48`
   */
  readonly start?: number;
  /**
   * Smallest acceptable field length. Encrypted fields use 4; the default is RFC 7822's.
   *
   * @defaultValue `16`
   */
  readonly minLength?: number;
  /**
   * At most this many fields.
   *
   * @defaultValue `64`
   */
  readonly maxFields?: number;
}

/**
 * Parses the extension fields of a packet from `start` to the end.
 *
 * @param bytes - The datagram (or an authenticator's plaintext).
 * @param options - Where to start, the minimum field length, a field-count cap.
 * @returns The fields in order (empty when `bytes` ends at `start`).
 * @throws {@link NtsExtensionFieldError} For every malformation, naming the offset; for
 *   any input that is a Uint8Array, nothing else.
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When `bytes` is not a Uint8Array or an option is out of range.
 *
 * @example
 * ```ts
 * const fields = parseExtensionFields(reply); // fields after the 48-byte header
 * ```
 */
export function parseExtensionFields(
  bytes: Uint8Array,
  options: ParseExtensionFieldsOptions = {},
): ExtensionField[] {
  if (!(bytes instanceof Uint8Array))
    throw new InvalidArgumentError('bytes', bytes, 'a Uint8Array');
  const start = options.start ?? 48;
  const minLength = options.minLength ?? MIN_EXTENSION_FIELD_LENGTH;
  const maxFields = options.maxFields ?? 64;
  if (!Number.isInteger(start) || start < 0) {
    throw new InvalidArgumentError('start', start, 'an integer ≥ 0');
  }
  if (!Number.isInteger(minLength) || minLength < 4 || minLength % 4 !== 0) {
    throw new InvalidArgumentError('minLength', minLength, 'a multiple of 4, at least 4');
  }
  if (!Number.isInteger(maxFields) || maxFields < 0) {
    throw new InvalidArgumentError('maxFields', maxFields, 'an integer ≥ 0');
  }
  if (bytes.length < start) {
    throw new NtsExtensionFieldError(bytes.length, `the packet ends before byte ${start}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fields: ExtensionField[] = [];
  let offset = start;
  while (offset < bytes.length) {
    const remaining = bytes.length - offset;
    if (remaining < 4) {
      throw new NtsExtensionFieldError(offset, `${remaining} bytes left over, too few for a field`);
    }
    const type = view.getUint16(offset);
    const length = view.getUint16(offset + 2);
    if (length < minLength) {
      throw new NtsExtensionFieldError(
        offset,
        `length ${length} is below the minimum ${minLength} (type 0x${type.toString(16).padStart(4, '0')})`,
      );
    }
    if (length % 4 !== 0) {
      throw new NtsExtensionFieldError(offset, `length ${length} is not a multiple of 4`);
    }
    if (length > remaining) {
      throw new NtsExtensionFieldError(
        offset,
        `length ${length} runs past the end (${remaining} bytes left)`,
      );
    }
    if (fields.length >= maxFields) {
      throw new NtsExtensionFieldError(offset, `more than ${maxFields} fields`);
    }
    fields.push({ type, offset, length, body: bytes.subarray(offset + 4, offset + length) });
    offset += length;
  }
  return fields;
}

/**
 * `n` rounded up to a multiple of 4.
 * @internal
 */
export function padTo4(n: number): number {
  return (n + 3) & ~3;
}

/**
 * Options of {@link encodeExtensionField}.
 *
 * @example
 * ```ts
 * encodeExtensionField(NtsExtensionFieldType.authenticator, body, { minLength: 28 });
 * ```
 */
export interface EncodeExtensionFieldOptions {
  /**
   * Pad the field with zeros to at least this many bytes; the default is RFC 7822's.
   *
   * @defaultValue `16`
   */
  readonly minLength?: number;
}

/**
 * Encodes one extension field: header, body, zero padding to a multiple of 4
 * and to `minLength`.
 *
 * @param type - Field type, 0–65535.
 * @param body - The value.
 * @param options - The minimum length.
 * @returns The field's bytes.
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When the type is out of range or the field would exceed 65532 bytes.
 *
 * @example
 * ```ts
 * const uid = encodeExtensionField(NtsExtensionFieldType.uniqueIdentifier, randomBytes(32));
 * ```
 */
export function encodeExtensionField(
  type: number,
  body: Uint8Array,
  options: EncodeExtensionFieldOptions = {},
): Uint8Array {
  if (!Number.isInteger(type) || type < 0 || type > 0xffff) {
    throw new InvalidArgumentError('type', type, 'an integer in [0, 65535]');
  }
  if (!(body instanceof Uint8Array)) throw new InvalidArgumentError('body', body, 'a Uint8Array');
  const minLength = options.minLength ?? MIN_EXTENSION_FIELD_LENGTH;
  if (!Number.isInteger(minLength) || minLength < 4) {
    throw new InvalidArgumentError('minLength', minLength, 'an integer ≥ 4');
  }
  const length = Math.max(padTo4(4 + body.length), padTo4(minLength));
  if (length > MAX_FIELD_LENGTH) {
    throw new InvalidArgumentError(
      'body',
      `${body.length} bytes`,
      `at most ${MAX_FIELD_LENGTH - 4}`,
    );
  }
  const out = new Uint8Array(length);
  const view = new DataView(out.buffer);
  view.setUint16(0, type);
  view.setUint16(2, length);
  out.set(body, 4);
  return out;
}

/**
 * The decoded body of an NTS Authenticator and Encrypted Extension Fields field
 * (RFC 8915 §5.6).
 *
 * @example
 * ```ts
 * const { nonce, ciphertext } = decodeAuthenticator(field.body);
 * ```
 */
export interface NtsAuthenticator {
  /** The AEAD nonce. */
  readonly nonce: Uint8Array;
  /** Tag ‖ encrypted extension fields. */
  readonly ciphertext: Uint8Array;
}

/**
 * Encodes an authenticator field: nonce length, ciphertext length, nonce and
 * ciphertext each zero-padded to a multiple of 4, then zeros up to `minLength`.
 *
 * @param nonce - The AEAD nonce (NTS: 16 random bytes).
 * @param ciphertext - Tag ‖ ciphertext.
 * @param minLength - Smallest whole field length (RFC 7822: 28 for a last field without MAC).
 * @returns The whole extension field.
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When a length does not fit in 16 bits.
 *
 * @example
 * ```ts
 * const auth = encodeAuthenticator(nonce, sealed, 28);
 * ```
 */
export function encodeAuthenticator(
  nonce: Uint8Array,
  ciphertext: Uint8Array,
  minLength: number = 28,
): Uint8Array {
  if (nonce.length > 0xffff || ciphertext.length > 0xffff) {
    throw new InvalidArgumentError('ciphertext', `${ciphertext.length} bytes`, 'at most 65535');
  }
  const body = new Uint8Array(4 + padTo4(nonce.length) + padTo4(ciphertext.length));
  const view = new DataView(body.buffer);
  view.setUint16(0, nonce.length);
  view.setUint16(2, ciphertext.length);
  body.set(nonce, 4);
  body.set(ciphertext, 4 + padTo4(nonce.length));
  return encodeExtensionField(NtsExtensionFieldType.authenticator, body, { minLength });
}

function allZero(bytes: Uint8Array): boolean {
  let acc = 0;
  for (const b of bytes) acc |= b;
  return acc === 0;
}

/**
 * Decodes an authenticator field's body. Strict: the nonce must be at least
 * `minNonceLength` bytes (RFC 8915 asks for 16 with AEAD_AES_SIV_CMAC_256), the
 * ciphertext at least a tag, and every padding byte zero (padding is not
 * authenticated, so it may not carry anything).
 *
 * @param body - The field's body (after its 4-byte header).
 * @param minNonceLength - Smallest nonce accepted; default 16.
 * @returns The nonce and ciphertext (views into `body`).
 * @throws {@link NtsExtensionFieldError} Saying what is wrong (offsets relative to the body).
 *
 * @example
 * ```ts
 * const { nonce, ciphertext } = decodeAuthenticator(field.body);
 * ```
 */
export function decodeAuthenticator(
  body: Uint8Array,
  minNonceLength: number = 16,
): NtsAuthenticator {
  if (body.length < 4) {
    throw new NtsExtensionFieldError(0, 'authenticator body shorter than its 4-byte lengths');
  }
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const nonceLength = view.getUint16(0);
  const ciphertextLength = view.getUint16(2);
  if (nonceLength < minNonceLength) {
    throw new NtsExtensionFieldError(0, `nonce length ${nonceLength} is below ${minNonceLength}`);
  }
  if (ciphertextLength < 16) {
    throw new NtsExtensionFieldError(
      2,
      `ciphertext length ${ciphertextLength} is shorter than a tag`,
    );
  }
  const ciphertextAt = 4 + padTo4(nonceLength);
  const end = ciphertextAt + padTo4(ciphertextLength);
  if (end > body.length) {
    throw new NtsExtensionFieldError(
      0,
      `nonce (${nonceLength}) and ciphertext (${ciphertextLength}) run past the field (${body.length} bytes)`,
    );
  }
  if (
    !allZero(body.subarray(4 + nonceLength, ciphertextAt)) ||
    !allZero(body.subarray(ciphertextAt + ciphertextLength))
  ) {
    throw new NtsExtensionFieldError(4 + nonceLength, 'nonzero padding in the authenticator');
  }
  return {
    nonce: body.subarray(4, 4 + nonceLength),
    ciphertext: body.subarray(ciphertextAt, ciphertextAt + ciphertextLength),
  };
}
