/**
 * The errors of the NTS client (RFC 8915): one class per way the key exchange
 * can fail, the refusal of a reply, a malformed extension field and an empty
 * cookie jar. Each has a stable `code` and a message naming what was refused.
 *
 * Reply refusals are {@link NtsRejectedError}, a subclass of `NtpRejectedError`
 * (code `NTP_REJECTED`, like every refused NTP reply), so code that already
 * handles refused replies handles these too; their `reason` says what NTS check
 * failed.
 *
 * @module
 */
import {
  ChronoboundError,
  NtpRejectedError,
  type ChronoboundErrorCode,
  type NtsRejectionReason,
} from '../../errors.js';
import { failureMessage, formatMs } from '../../errors/describe.js';

/**
 * The stable codes of the NTS errors (besides `NTP_REJECTED` for refused replies).
 *
 * @example
 * ```ts
 * try {
 *   await ntsKeyExchange({ host: 'time.example' });
 * } catch (e) {
 *   // `code` is typed ChronoboundErrorCode until that union lists the NTS codes: hence the cast.
 *   if (e instanceof NtsKeyExchangeError && (e.code as NtsErrorCode) === 'NTS_KE_TLS') console.error('check the CA:', e.message);
 * }
 * ```
 */
export type NtsErrorCode =
  | 'NTS_KE_CONNECTION'
  | 'NTS_KE_TLS'
  | 'NTS_KE_ALPN'
  | 'NTS_KE_SERVER_ERROR'
  | 'NTS_KE_CRITICAL_RECORD'
  | 'NTS_KE_NEGOTIATION'
  | 'NTS_KE_NO_COOKIES'
  | 'NTS_KE_PROTOCOL'
  | 'NTS_KE_TIMEOUT'
  | 'NTS_EXTENSION_FIELD'
  | 'NTS_NO_COOKIES';

/**
 * `ChronoboundErrorCode` (src/errors.ts) does not list the NTS codes yet; this is
 * the one place that widens it. Remove once the union includes {@link NtsErrorCode}.
 */
function ntsCode(code: NtsErrorCode): ChronoboundErrorCode {
  return code as unknown as ChronoboundErrorCode;
}

/** `NTS-KE with <server> refused: <what>.`, the message of a key exchange the client refuses. */
function keRefused(server: string, what: string): string {
  return `NTS-KE with ${server} refused: ${what}.`;
}

/**
 * Base class of every NTS key-exchange (NTS-KE) failure. `server` is the
 * key-exchange server as `host:port`. Nothing is learned from a failed exchange:
 * no keys, no cookies.
 *
 * @example
 * ```ts
 * try {
 *   await ntsKeyExchange({ host: 'time.example' });
 * } catch (e) {
 *   if (e instanceof NtsKeyExchangeError) console.error(e.code, e.server);
 * }
 * ```
 */
export class NtsKeyExchangeError extends ChronoboundError {
  /** The NTS-KE server, `host:port`. */
  readonly server: string;

  constructor(code: NtsErrorCode, server: string, message: string, options?: { cause?: unknown }) {
    super(ntsCode(code), message, options);
    this.server = server;
  }
}

/**
 * The TCP connection to the NTS-KE server failed (refused, unreachable, name
 * not resolved, reset before the TLS handshake finished).
 *
 * @example
 * ```ts
 * if (e instanceof NtsKeConnectionError) console.error(`no NTS-KE server at ${e.server}`);
 * ```
 */
export class NtsKeConnectionError extends NtsKeyExchangeError {
  constructor(server: string, why: string, options?: { cause?: unknown }) {
    const message = failureMessage(`NTS-KE with ${server} failed`, 'cannot connect', why);
    super('NTS_KE_CONNECTION', server, message, options);
  }
}

/**
 * The TLS handshake failed. `certificate` is true when the server's certificate
 * was refused (untrusted issuer, self-signed, expired, or not issued for the
 * host name): check the `ca` option. No key exchange ever runs without a
 * verified certificate.
 *
 * @example
 * ```ts
 * if (e instanceof NtsKeTlsError && e.certificate) console.error(`untrusted certificate: ${e.tlsCode}`);
 * ```
 */
export class NtsKeTlsError extends NtsKeyExchangeError {
  /** Node's or OpenSSL's code, e.g. `'DEPTH_ZERO_SELF_SIGNED_CERT'`, `'ERR_TLS_CERT_ALTNAME_INVALID'`. */
  readonly tlsCode: string;
  /** Whether the server's certificate was what was refused. */
  readonly certificate: boolean;

  constructor(
    server: string,
    tlsCode: string,
    certificate: boolean,
    why: string,
    options?: { cause?: unknown },
  ) {
    super(
      'NTS_KE_TLS',
      server,
      certificate
        ? keRefused(
            server,
            `the server's certificate is not trusted (${tlsCode}: ${why}); ` +
              'pass the issuing CA as the `ca` option or fix the certificate',
          )
        : `NTS-KE with ${server} failed: TLS 1.3 handshake failed (${tlsCode}: ${why}).`,
      options,
    );
    this.tlsCode = tlsCode;
    this.certificate = certificate;
  }
}

/**
 * The server did not agree to the `ntske/1` application protocol (ALPN): it is
 * not an NTS-KE server, or not one speaking this version.
 *
 * @example
 * ```ts
 * if (e instanceof NtsKeAlpnError) console.error(`not an NTS-KE server: ${e.server}`);
 * ```
 */
export class NtsKeAlpnError extends NtsKeyExchangeError {
  /** What the server negotiated instead (`false` for nothing). */
  readonly negotiated: string | false;

  constructor(server: string, negotiated: string | false, options?: { cause?: unknown }) {
    super(
      'NTS_KE_ALPN',
      server,
      keRefused(
        server,
        'the server did not negotiate ALPN "ntske/1" ' +
          `(got ${negotiated === false ? 'none' : JSON.stringify(negotiated)}); it is not an NTS-KE server`,
      ),
      options,
    );
    this.negotiated = negotiated;
  }
}

const SERVER_ERRORS: Readonly<Record<number, string>> = {
  0: 'Unrecognized Critical Record',
  1: 'Bad Request',
  2: 'Internal Server Error',
};

/**
 * The server answered with an NTS-KE Error record (RFC 8915 §4.1.3):
 * 0 Unrecognized Critical Record, 1 Bad Request, 2 Internal Server Error.
 *
 * @example
 * ```ts
 * if (e instanceof NtsKeServerError && e.errorCode === 2) retryLater();
 * ```
 */
export class NtsKeServerError extends NtsKeyExchangeError {
  /** The 16-bit error code the server sent. */
  readonly errorCode: number;

  constructor(server: string, errorCode: number) {
    const meaning = SERVER_ERRORS[errorCode] ?? 'unassigned code';
    const subject = `NTS-KE with ${server} refused by the server`;
    super(
      'NTS_KE_SERVER_ERROR',
      server,
      failureMessage(subject, `Error record ${errorCode}`, meaning),
    );
    this.errorCode = errorCode;
  }
}

/**
 * The response held a record with the critical bit set whose type this client
 * does not know; RFC 8915 §4 requires the exchange to be abandoned.
 *
 * @example
 * ```ts
 * if (e instanceof NtsKeCriticalRecordError) console.error(`record type ${e.recordType}`);
 * ```
 */
export class NtsKeCriticalRecordError extends NtsKeyExchangeError {
  /** The unrecognized record type (15 bits). */
  readonly recordType: number;

  constructor(server: string, recordType: number) {
    const what = 'the response has an unrecognized critical record';
    const message = failureMessage(`NTS-KE with ${server} refused`, what, `type ${recordType}`);
    super('NTS_KE_CRITICAL_RECORD', server, message);
    this.recordType = recordType;
  }
}

/**
 * Client and server agreed on no next protocol (`what: 'protocol'`: NTPv4 is
 * the only one offered) or no AEAD algorithm (`what: 'aead'`:
 * AEAD_AES_SIV_CMAC_256, 15, is the only one offered), or the server picked one
 * that was not offered.
 *
 * @example
 * ```ts
 * if (e instanceof NtsKeNegotiationError && e.what === 'aead') console.error('no common AEAD');
 * ```
 */
export class NtsKeNegotiationError extends NtsKeyExchangeError {
  /** What was not agreed. */
  readonly what: 'protocol' | 'aead';

  constructor(server: string, what: 'protocol' | 'aead', why: string) {
    const offered =
      what === 'aead'
        ? 'AEAD algorithm (offered AEAD_AES_SIV_CMAC_256, 15)'
        : 'next protocol (offered NTPv4, 0)';
    super('NTS_KE_NEGOTIATION', server, keRefused(server, `no agreed ${offered}: ${why}`));
    this.what = what;
  }
}

/**
 * The response carried no usable cookie, so no NTS-protected request could be sent.
 *
 * @example
 * ```ts
 * if (e instanceof NtsKeNoCookiesError) console.error(e.message);
 * ```
 */
export class NtsKeNoCookiesError extends NtsKeyExchangeError {
  /** Cookie records that were present but unusable (empty, too long, length not a multiple of 4). */
  readonly unusable: number;

  constructor(server: string, unusable: number) {
    const count = unusable > 0 ? ` (${unusable} unusable)` : '';
    const message = keRefused(server, `the response carries no usable cookie${count}`);
    super('NTS_KE_NO_COOKIES', server, message);
    this.unusable = unusable;
  }
}

/**
 * The response broke the NTS-KE record format: a malformed or oversized record
 * or message, a record the server must not send, data after End of Message, or
 * the connection closed before End of Message.
 *
 * @example
 * ```ts
 * if (e instanceof NtsKeProtocolError) console.error(e.message);
 * ```
 */
export class NtsKeProtocolError extends NtsKeyExchangeError {
  constructor(server: string, why: string, options?: { cause?: unknown }) {
    super('NTS_KE_PROTOCOL', server, keRefused(server, why), options);
  }
}

/**
 * The key exchange did not finish (connect, TLS handshake, response) in time.
 *
 * @example
 * ```ts
 * if (e instanceof NtsKeTimeoutError) console.error(`NTS-KE timed out after ${e.timeoutMs} ms`);
 * ```
 */
export class NtsKeTimeoutError extends NtsKeyExchangeError {
  /** The timeout that elapsed (ms). */
  readonly timeoutMs: number;

  constructor(server: string, timeoutMs: number, stage: string) {
    super(
      'NTS_KE_TIMEOUT',
      server,
      `NTS-KE with ${server} timed out after ${formatMs(timeoutMs)} (${stage}); check the address and port (default 4460).`,
    );
    this.timeoutMs = timeoutMs;
  }
}

/**
 * Extension fields after an NTP header (RFC 7822) could not be parsed: a length
 * that is too short, not a multiple of 4, or runs past the end, or bytes left over.
 *
 * @example
 * ```ts
 * try { parseExtensionFields(datagram) } catch (e) { if (e instanceof NtsExtensionFieldError) console.log(e.offset) }
 * ```
 */
export class NtsExtensionFieldError extends ChronoboundError {
  /** Byte offset (in the parsed buffer) of the field that is malformed. */
  readonly offset: number;

  constructor(offset: number, why: string) {
    super(
      ntsCode('NTS_EXTENSION_FIELD'),
      `Malformed NTP extension field at byte ${offset}: ${why}.`,
    );
    this.offset = offset;
  }
}

/**
 * A session was asked to build a request but holds no cookie (they ran out, or
 * a NAK discarded them): run NTS-KE again and {@link NtsSession.rekey | rekey} it.
 *
 * @example
 * ```ts
 * if (session.needsKeyExchange) session.rekey(await ntsKeyExchange({ host }));
 * ```
 */
export class NtsNoCookiesError extends ChronoboundError {
  constructor(server: string, why: string) {
    super(
      ntsCode('NTS_NO_COOKIES'),
      `No NTS cookie left for ${server} (${why}); run the NTS key exchange again.`,
    );
  }
}

export type { NtsRejectionReason };

/**
 * An NTS-protected reply was refused. Like every refused reply its `code` is
 * `NTP_REJECTED` and it is an `NtpRejectedError`; `reason` names the NTS check.
 *
 * @example
 * ```ts
 * queryNts({ host, onRejected: (e) => { if (e instanceof NtsRejectedError) console.warn(e.reason) } });
 * ```
 */
export class NtsRejectedError extends NtpRejectedError {
  declare readonly reason: NtsRejectionReason;

  constructor(server: string, reason: NtsRejectionReason, detail: string) {
    super(server, reason, detail);
  }
}
