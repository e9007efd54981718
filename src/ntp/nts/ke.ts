/**
 * The NTS Key Establishment client (RFC 8915 §4): TLS 1.3 to port 4460 with
 * ALPN `ntske/1` and a verified server certificate, one request (NTPv4,
 * AEAD_AES_SIV_CMAC_256), one response read to End of Message within a size
 * and time bound, and the C2S/S2C keys exported from the TLS session. Every way
 * it can fail has its own error class (see `errors.ts`); nothing is returned
 * unless the whole response was valid. The request and the response checks
 * (the records) are in `ke-messages.ts`; this file holds the TLS session.
 *
 * @module
 */
import { isIP } from 'node:net';
import { connect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { AbortError, InvalidArgumentError } from '../../errors.js';
import { AES_SIV_KEY_LENGTH } from './aes-siv.js';
import {
  NtsKeAlpnError,
  NtsKeConnectionError,
  NtsKeProtocolError,
  NtsKeTimeoutError,
  NtsKeTlsError,
  type NtsKeyExchangeError,
} from './errors.js';
import { encodeKeRequest, interpretKeResponse } from './ke-messages.js';
import { AEAD_AES_SIV_CMAC_256, parseKeRecords } from './ke-records.js';

/**
 * The NTS-KE TCP port (RFC 8915 §4).
 *
 * @example
 * ```ts
 * await ntsKeyExchange({ host: 'time.example', port: NTS_KE_PORT });
 * ```
 */
export const NTS_KE_PORT: number = 4460;

/**
 * The ALPN protocol ID of NTS-KE.
 *
 * @example
 * ```ts
 * tls.connect({ ALPNProtocols: [NTS_KE_ALPN] });
 * ```
 */
export const NTS_KE_ALPN: string = 'ntske/1';

/**
 * The TLS exporter label the keys are derived with (RFC 8915 §5.1).
 *
 * @example
 * ```ts
 * socket.exportKeyingMaterial(32, NTS_EXPORTER_LABEL, context);
 * ```
 */
export const NTS_EXPORTER_LABEL: string = 'EXPORTER-network-time-security';

/** The largest response accepted, in bytes (chrony's limit too). */
const DEFAULT_MAX_RESPONSE_BYTES = 16_384;

/**
 * The TLS exporter context for one direction (RFC 8915 §5.1): the next protocol
 * (NTPv4, 0x0000), the AEAD algorithm (0x000F), then 0x00 for client-to-server
 * or 0x01 for server-to-client.
 *
 * @param direction - `'c2s'` or `'s2c'`.
 * @returns The five context bytes.
 *
 * @example
 * ```ts
 * ntsExporterContext('c2s'); // 00 00 00 0f 00
 * ```
 */
export function ntsExporterContext(direction: 'c2s' | 's2c'): Uint8Array {
  return Uint8Array.of(0x00, 0x00, 0x00, AEAD_AES_SIV_CMAC_256, direction === 'c2s' ? 0x00 : 0x01);
}

/**
 * Options of {@link ntsKeyExchange}.
 *
 * @example
 * ```ts
 * await ntsKeyExchange({ host: '127.0.0.1', port: 4460, ca: pem, timeoutMs: 3000 });
 * //=> { server: '127.0.0.1:4460', aeadAlgorithm: 15, c2sKey: …, s2cKey: …, cookies: [ … ],
 * //     ntpHost: '127.0.0.1', ntpPort: 123, warnings: [] } (ntpHost/ntpPort: unless the server negotiates others)
 * ```
 */
export interface NtsKeyExchangeOptions {
  /** NTS-KE server host name or IP address. */
  readonly host: string;
  /**
   * TCP port.
   *
   * @defaultValue `4460` (`NTS_KE_PORT`)
   */
  readonly port?: number;
  /**
   * Trust only this CA (PEM, as a string or its bytes) instead of the system
   * store: for servers with a private or self-signed certificate.
   */
  readonly ca?: string | Uint8Array;
  /**
   * The name the certificate must be issued for, and the TLS SNI; with the default, an IP address
   * is checked against the certificate's IP SANs and sends no SNI.
   *
   * @defaultValue `host`
   */
  readonly servername?: string;
  /**
   * Give up after this many ms (connect, handshake and response).
   *
   * @defaultValue `5000`
   */
  readonly timeoutMs?: number;
  /** Cancels the exchange with `AbortError`. */
  readonly signal?: AbortSignal;
  /**
   * Refuse a response longer than this many bytes.
   *
   * @defaultValue `16_384`
   */
  readonly maxResponseBytes?: number;
}

/**
 * What a successful NTS key exchange yields: the two AEAD keys, the cookies
 * and where to send NTS-protected NTP requests.
 *
 * @example
 * ```ts
 * const ke = await ntsKeyExchange({ host: 'time.example' });
 * const session = new NtsSession(ke);
 * ```
 */
export interface NtsKeyExchangeResult {
  /** The NTS-KE server, `host:port`. */
  readonly server: string;
  /** The AEAD algorithm (always 15, AEAD_AES_SIV_CMAC_256). */
  readonly aeadAlgorithm: number;
  /** Client-to-server key (32 bytes). */
  readonly c2sKey: Uint8Array;
  /** Server-to-client key (32 bytes). */
  readonly s2cKey: Uint8Array;
  /** The cookies (1–8). */
  readonly cookies: readonly Uint8Array[];
  /** NTP server to query: the negotiated one, or the key-exchange host. */
  readonly ntpHost: string;
  /** NTP port to query: the negotiated one, or 123. */
  readonly ntpPort: number;
  /** Warning codes the server sent. */
  readonly warnings: readonly number[];
}

/** Certificate verification failures as Node and OpenSSL name them. */
const CERTIFICATE_CODES = new Set([
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'HOSTNAME_MISMATCH',
  'INVALID_CA',
  'INVALID_PURPOSE',
  'PATH_LENGTH_EXCEEDED',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
]);

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EPIPE',
  'EADDRNOTAVAIL',
]);

function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : 'UNKNOWN';
}

function classifySocketError(
  error: unknown,
  server: string,
  handshaken: boolean,
): NtsKeyExchangeError {
  const code = errorCode(error);
  const message = error instanceof Error ? error.message : String(error);
  // OpenSSL's verification codes (…_CERT…) and Node's name check; not ERR_SSL_* alerts.
  if (CERTIFICATE_CODES.has(code) || (!code.startsWith('ERR_SSL') && /CERT/.test(code))) {
    return new NtsKeTlsError(server, code, true, message, { cause: error });
  }
  if (code === 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL') {
    return new NtsKeAlpnError(server, false, { cause: error });
  }
  if (CONNECTION_CODES.has(code)) {
    return handshaken
      ? new NtsKeProtocolError(server, `connection failed while reading the response (${code})`, {
          cause: error,
        })
      : new NtsKeConnectionError(server, `${code}: ${message}`, { cause: error });
  }
  return new NtsKeTlsError(server, code, false, message, { cause: error });
}

function formatServer(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

function validateOptions(options: NtsKeyExchangeOptions): {
  host: string;
  port: number;
  timeoutMs: number;
  maxResponseBytes: number;
} {
  if (typeof options?.host !== 'string' || options.host.length === 0) {
    throw new InvalidArgumentError('host', options?.host, 'a host name or IP address');
  }
  const port = options.port ?? NTS_KE_PORT;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new InvalidArgumentError('port', options.port, 'an integer in [1, 65535]');
  }
  const timeoutMs = options.timeoutMs ?? 5000;
  if (!(timeoutMs > 0) || !Number.isFinite(timeoutMs)) {
    throw new InvalidArgumentError('timeoutMs', options.timeoutMs, 'a finite number > 0');
  }
  const maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  if (!Number.isInteger(maxResponseBytes) || maxResponseBytes < 4) {
    throw new InvalidArgumentError('maxResponseBytes', options.maxResponseBytes, 'an integer ≥ 4');
  }
  if (
    options.ca !== undefined &&
    typeof options.ca !== 'string' &&
    !(options.ca instanceof Uint8Array)
  ) {
    throw new InvalidArgumentError('ca', options.ca, 'a PEM string or its bytes');
  }
  if (
    options.servername !== undefined &&
    (typeof options.servername !== 'string' || options.servername === '')
  ) {
    throw new InvalidArgumentError('servername', options.servername, 'a non-empty host name');
  }
  return { host: options.host, port, timeoutMs, maxResponseBytes };
}

/**
 * Runs one NTS key exchange (RFC 8915 §4): TLS 1.3 with ALPN `ntske/1` and the
 * server's certificate verified (against the system store, or only `ca`), the
 * request, the response read to End of Message, and the C2S/S2C keys exported
 * with label `EXPORTER-network-time-security` and the §5.1 contexts.
 *
 * @param options - Server, port (4460), CA, name to verify, timeout, signal.
 * @returns Keys, cookies and the NTP server to query.
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When an option is out of range.
 * @throws {@link NtsKeConnectionError} When the TCP connection fails.
 * @throws {@link NtsKeTlsError} When the TLS handshake fails or the certificate is not trusted (`certificate: true`).
 * @throws {@link NtsKeAlpnError} When the server does not speak `ntske/1`.
 * @throws {@link NtsKeServerError} When the server answers with an Error record.
 * @throws {@link NtsKeCriticalRecordError} When the response has an unknown critical record.
 * @throws {@link NtsKeNegotiationError} When no protocol or AEAD algorithm is agreed.
 * @throws {@link NtsKeNoCookiesError} When the response carries no usable cookie.
 * @throws {@link NtsKeProtocolError} When the response is malformed, too long, or cut short.
 * @throws {@link NtsKeTimeoutError} When it does not finish within `timeoutMs`.
 * @throws {@link chronobound!AbortError | AbortError} When `signal` aborts.
 *
 * @example
 * ```ts
 * const ke = await ntsKeyExchange({ host: 'time.cloudflare.com' });
 * console.log(ke.cookies.length, ke.ntpHost, ke.ntpPort);
 * ```
 */
export async function ntsKeyExchange(
  options: NtsKeyExchangeOptions,
): Promise<NtsKeyExchangeResult> {
  const { host, port, timeoutMs, maxResponseBytes } = validateOptions(options);
  const server = formatServer(host, port);
  const signal = options.signal;
  if (signal?.aborted) throw new AbortError(`NTS-KE with ${server}`, signal.reason);

  const tlsOptions: ConnectionOptions = {
    host,
    port,
    ALPNProtocols: [NTS_KE_ALPN],
    minVersion: 'TLSv1.3',
    rejectUnauthorized: true,
    ...(options.ca === undefined
      ? {}
      : { ca: typeof options.ca === 'string' ? options.ca : Buffer.from(options.ca) }),
    // SNI carries names only (RFC 6066); an IP is checked against the IP SANs.
    ...(options.servername !== undefined
      ? { servername: options.servername }
      : isIP(host) === 0
        ? { servername: host }
        : {}),
  };

  return new Promise<NtsKeyExchangeResult>((resolve, reject) => {
    let stage = 'connecting';
    let handshaken = false;
    let settled = false;
    let keys: { c2sKey: Uint8Array; s2cKey: Uint8Array } | undefined;
    let received = Buffer.alloc(0);
    let socket: TLSSocket;

    const finish = (error: Error | undefined, result?: NtsKeyExchangeResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (error !== undefined) {
        keys?.c2sKey.fill(0);
        keys?.s2cKey.fill(0);
        socket.destroy();
        reject(error);
        return;
      }
      // Close our side politely; the server closes after its response anyway.
      socket.end();
      const closer = setTimeout(() => socket.destroy(), 1000);
      closer.unref?.();
      socket.once('close', () => clearTimeout(closer));
      resolve(result as NtsKeyExchangeResult);
    };
    const onAbort = (): void => finish(new AbortError(`NTS-KE with ${server}`, signal?.reason));
    const timer = setTimeout(
      () => finish(new NtsKeTimeoutError(server, timeoutMs, stage)),
      timeoutMs,
    );
    signal?.addEventListener('abort', onAbort, { once: true });

    try {
      socket = connect(tlsOptions);
    } catch (error) {
      // Synchronous failures: bad CA PEM and the like.
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      settled = true;
      reject(new NtsKeTlsError(server, errorCode(error), false, String(error), { cause: error }));
      return;
    }
    socket.once('connect', () => {
      if (stage === 'connecting') stage = 'TLS handshake';
    });
    socket.on('error', (error) => finish(classifySocketError(error, server, handshaken)));
    socket.once('secureConnect', () => {
      handshaken = true;
      stage = 'waiting for the response';
      if (!socket.authorized) {
        finish(
          new NtsKeTlsError(
            server,
            String(socket.authorizationError ?? 'UNAUTHORIZED'),
            true,
            'the certificate was not verified',
          ),
        );
        return;
      }
      if (socket.alpnProtocol !== NTS_KE_ALPN) {
        finish(new NtsKeAlpnError(server, socket.alpnProtocol ?? false));
        return;
      }
      try {
        keys = {
          c2sKey: new Uint8Array(
            socket.exportKeyingMaterial(
              AES_SIV_KEY_LENGTH,
              NTS_EXPORTER_LABEL,
              Buffer.from(ntsExporterContext('c2s')),
            ),
          ),
          s2cKey: new Uint8Array(
            socket.exportKeyingMaterial(
              AES_SIV_KEY_LENGTH,
              NTS_EXPORTER_LABEL,
              Buffer.from(ntsExporterContext('s2c')),
            ),
          ),
        };
      } catch (error) {
        finish(
          new NtsKeTlsError(server, errorCode(error), false, `key export failed: ${String(error)}`),
        );
        return;
      }
      socket.write(encodeKeRequest());
    });
    socket.on('data', (chunk: Buffer) => {
      if (settled) return;
      if (!handshaken || keys === undefined) {
        finish(new NtsKeProtocolError(server, 'data before the handshake finished'));
        return;
      }
      received = Buffer.concat([received, chunk]);
      if (received.length > maxResponseBytes) {
        finish(
          new NtsKeProtocolError(
            server,
            `the response exceeds ${maxResponseBytes} bytes without End of Message`,
          ),
        );
        return;
      }
      const parsed = parseKeRecords(received);
      if (!parsed.complete) return;
      if (parsed.consumed !== received.length) {
        finish(new NtsKeProtocolError(server, 'data after End of Message'));
        return;
      }
      try {
        const response = interpretKeResponse(parsed.records, server);
        finish(undefined, {
          server,
          aeadAlgorithm: AEAD_AES_SIV_CMAC_256,
          c2sKey: keys.c2sKey,
          s2cKey: keys.s2cKey,
          cookies: response.cookies,
          ntpHost: response.ntpServer ?? host,
          ntpPort: response.ntpPort ?? 123,
          warnings: response.warnings,
        });
      } catch (error) {
        finish(error as Error);
      }
    });
    socket.once('end', () =>
      finish(
        new NtsKeProtocolError(
          server,
          handshaken
            ? `the server closed the connection before End of Message (${received.length} bytes received)`
            : 'the server closed the connection during the handshake',
        ),
      ),
    );
    socket.once('close', () =>
      finish(new NtsKeProtocolError(server, `the connection closed during the ${stage}`)),
    );
  });
}
