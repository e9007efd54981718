/**
 * The NTS-KE record format (RFC 8915 §4): `C (1 bit) ‖ type (15 bits) ‖ body
 * length (16 bits) ‖ body`, a message being records up to End of Message. Pure
 * framing: what the records mean is the client's business (see `ke.ts`).
 *
 * @module
 */
import { InvalidArgumentError } from '../../errors.js';
import { concatBytes } from '../../_internals/bytes.js';

/**
 * NTS-KE record types (RFC 8915 §4.1, §7.6).
 *
 * @example
 * ```ts
 * if (record.type === NtsKeRecordType.newCookie) jar.add(record.body);
 * ```
 */
export const NtsKeRecordType: {
  readonly endOfMessage: 0;
  readonly nextProtocol: 1;
  readonly error: 2;
  readonly warning: 3;
  readonly aeadAlgorithm: 4;
  readonly newCookie: 5;
  readonly ntpServer: 6;
  readonly ntpPort: 7;
} = {
  endOfMessage: 0,
  nextProtocol: 1,
  error: 2,
  warning: 3,
  aeadAlgorithm: 4,
  newCookie: 5,
  ntpServer: 6,
  ntpPort: 7,
};

/**
 * NTS Next Protocol ID of NTPv4 (the only one defined).
 *
 * @example
 * ```ts
 * encodeKeRecord({ critical: true, type: NtsKeRecordType.nextProtocol, body: u16(NTS_PROTOCOL_NTPV4) });
 * ```
 */
export const NTS_PROTOCOL_NTPV4: number = 0;

/**
 * IANA AEAD algorithm ID of AEAD_AES_SIV_CMAC_256 (RFC 5297), the one NTS requires.
 *
 * @example
 * ```ts
 * if (algorithm !== AEAD_AES_SIV_CMAC_256) refuse();
 * ```
 */
export const AEAD_AES_SIV_CMAC_256: number = 15;

/**
 * One NTS-KE record.
 *
 * @example
 * ```ts
 * encodeKeRecord({ critical: true, type: NtsKeRecordType.endOfMessage, body: new Uint8Array(0) });
 * //=> Uint8Array [0x80, 0x00, 0x00, 0x00] (critical bit and type 0, empty body)
 * ```
 */
export interface NtsKeRecord {
  /** The critical bit: a receiver that does not know the type must fail. */
  readonly critical: boolean;
  /** Record type, 0–32767. */
  readonly type: number;
  /** The body (a view into the parsed buffer). */
  readonly body: Uint8Array;
}

/**
 * Encodes one record.
 *
 * @param record - Critical bit, type and body.
 * @returns Its bytes (4 + body length).
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When the type is not in [0, 32767] or the body exceeds 65535 bytes.
 *
 * @example
 * ```ts
 * encodeKeRecord({ critical: true, type: NtsKeRecordType.endOfMessage, body: new Uint8Array(0) });
 * ```
 */
export function encodeKeRecord(record: NtsKeRecord): Uint8Array {
  const { type, body } = record;
  if (!Number.isInteger(type) || type < 0 || type > 0x7fff) {
    throw new InvalidArgumentError('type', type, 'an integer in [0, 32767]');
  }
  if (!(body instanceof Uint8Array) || body.length > 0xffff) {
    throw new InvalidArgumentError('body', body, 'a Uint8Array of at most 65535 bytes');
  }
  const out = new Uint8Array(4 + body.length);
  const view = new DataView(out.buffer);
  view.setUint16(0, (record.critical ? 0x8000 : 0) | type);
  view.setUint16(2, body.length);
  out.set(body, 4);
  return out;
}

/**
 * Encodes records back to back.
 *
 * @param records - The records, normally ending with End of Message.
 * @returns The message bytes.
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} As {@link encodeKeRecord}.
 *
 * @example
 * ```ts
 * socket.write(encodeKeRecords([nextProtocol, aead, endOfMessage]));
 * ```
 */
export function encodeKeRecords(records: readonly NtsKeRecord[]): Uint8Array {
  return concatBytes(records.map(encodeKeRecord));
}

/**
 * A 16-bit big-endian body (protocol IDs, algorithm IDs, codes, ports).
 *
 * @param values - 16-bit unsigned integers.
 * @returns Their bytes.
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When a value is not in [0, 65535].
 *
 * @example
 * ```ts
 * uint16Body(AEAD_AES_SIV_CMAC_256); // 00 0f
 * ```
 */
export function uint16Body(...values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 2);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => {
    if (!Number.isInteger(v) || v < 0 || v > 0xffff) {
      throw new InvalidArgumentError('value', v, 'an integer in [0, 65535]');
    }
    view.setUint16(i * 2, v);
  });
  return out;
}

/**
 * Result of {@link parseKeRecords}.
 *
 * @example
 * ```ts
 * const { records, complete, consumed } = parseKeRecords(buffered);
 * ```
 */
export interface ParsedKeRecords {
  /** The whole records found, End of Message included when `complete`. */
  readonly records: readonly NtsKeRecord[];
  /** Whether an End of Message record was reached. */
  readonly complete: boolean;
  /** Bytes taken by `records` (anything after is an incomplete record, or follows End of Message). */
  readonly consumed: number;
}

/**
 * Splits bytes into records, stopping after End of Message. Never throws for a
 * Uint8Array: an incomplete last record is simply not returned (more bytes may follow).
 *
 * @param bytes - What has arrived so far.
 * @returns The records, whether the message is complete, and the bytes consumed.
 *
 * @example
 * ```ts
 * const parsed = parseKeRecords(buffer);
 * if (parsed.complete && parsed.consumed < buffer.length) throw new Error('data after End of Message');
 * ```
 */
export function parseKeRecords(bytes: Uint8Array): ParsedKeRecords {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const records: NtsKeRecord[] = [];
  let offset = 0;
  while (bytes.length - offset >= 4) {
    const head = view.getUint16(offset);
    const length = view.getUint16(offset + 2);
    if (bytes.length - offset - 4 < length) break;
    const record: NtsKeRecord = {
      critical: (head & 0x8000) !== 0,
      type: head & 0x7fff,
      body: bytes.subarray(offset + 4, offset + 4 + length),
    };
    records.push(record);
    offset += 4 + length;
    if (record.type === NtsKeRecordType.endOfMessage) {
      return { records, complete: true, consumed: offset };
    }
  }
  return { records, complete: false, consumed: offset };
}
