/**
 * The JSON side of etcd's gateway: the shapes of the replies leader election
 * reads ({@link KeyValue}, ranges, transactions, watch events), decoding them
 * (int64 as decimal strings, keys and values as base64, newline-delimited
 * streams), and base64 for requests. No I/O.
 *
 * @module
 * @internal
 */

/** A JSON object as the gateway sends it. @internal */
export type Json = Record<string, unknown>;

/** A key as etcd stores it. @internal */
export interface KeyValue {
  readonly key: string;
  readonly value: string;
  readonly createRevision: bigint;
  readonly modRevision: bigint;
  readonly version: bigint;
  /** The attached lease ID (decimal), `'0'` for none. */
  readonly lease: string;
}

/** @internal */
export interface RangeResult {
  /** The store revision the read saw. */
  readonly revision: bigint;
  readonly kv: KeyValue | undefined;
}

/** @internal */
export interface TxnCreateResult {
  readonly succeeded: boolean;
  readonly revision: bigint;
  /** The key after the transaction (ours when it succeeded). */
  readonly kv: KeyValue | undefined;
}

/** @internal */
export interface WatchEvent {
  readonly type: 'PUT' | 'DELETE';
  readonly kv: KeyValue;
}

/** @internal */
export interface WatchResponse {
  readonly revision: bigint;
  readonly created: boolean;
  readonly events: readonly WatchEvent[];
}

/** Reads newline-delimited JSON objects from a streamed body. @internal */
export async function* jsonLines(
  body: ReadableStream<Uint8Array>,
): AsyncGenerator<Json, void, undefined> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (line === '') continue;
        const json = parseJson(line);
        if (json !== undefined) yield json;
      }
    }
    const rest = parseJson(buffer.trim());
    if (rest !== undefined) yield rest;
  } finally {
    reader.releaseLock();
  }
}

/** The first JSON line of a reply. @internal */
export function firstLine(text: string): string {
  // A streamed (server-streaming) reply to a single request holds one JSON object per line.
  const trimmed = text.trim();
  const newline = trimmed.indexOf('\n');
  return newline < 0 ? trimmed : trimmed.slice(0, newline);
}

/** A JSON object, or `undefined` for anything else (empty, malformed, an array, a scalar). @internal */
export function parseJson(text: string): Json | undefined {
  if (text === '') return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Json)
      : undefined;
  } catch {
    return undefined;
  }
}

/** A reply field as text for a message. @internal */
export function text(value: unknown): string {
  if (value === undefined || value === null) return '';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** int64 fields arrive as decimal strings (or are omitted when 0). @internal */
export function intString(value: unknown): string {
  if (typeof value === 'string' && /^-?\d+$/.test(value)) return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  return '0';
}

/** The store revision in a reply's header (0 when absent). @internal */
export function headerRevision(reply: Json): bigint {
  const header = reply['header'] as Json | undefined;
  return BigInt(intString(header?.['revision']));
}

/** A `mvccpb.KeyValue` as the gateway sends it, decoded. @internal */
export function toKeyValue(kv: Json): KeyValue {
  return {
    key: decodeBase64(typeof kv['key'] === 'string' ? kv['key'] : ''),
    value: decodeBase64(typeof kv['value'] === 'string' ? kv['value'] : ''),
    createRevision: BigInt(intString(kv['create_revision'])),
    modRevision: BigInt(intString(kv['mod_revision'])),
    version: BigInt(intString(kv['version'])),
    lease: intString(kv['lease']),
  };
}

/**
 * UTF-8 text to base64 (etcd's JSON carries keys and values as base64 bytes).
 * @internal
 */
export function encodeBase64(text: string): string {
  let binary = '';
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/**
 * base64 to UTF-8 text.
 * @internal
 */
export function decodeBase64(base64: string): string {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return new TextDecoder().decode(bytes);
}
