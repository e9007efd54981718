/**
 * Network Time Security (RFC 8915) for `chronobound/ntp`: the NTS-KE client
 * over TLS 1.3, AEAD_AES_SIV_CMAC_256, the NTS extension fields, the cookie jar,
 * a reusable I/O-free {@link NtsSession} and the standalone {@link queryNts}.
 *
 * @module
 */
export {
  AES_SIV_KEY_LENGTH,
  AES_SIV_TAG_LENGTH,
  aesCmac,
  aesSivEncrypt,
  aesSivDecrypt,
  aeadAesSivCmac256Seal,
  aeadAesSivCmac256Open,
} from './aes-siv.js';
export { CookieJar, NTS_MAX_COOKIES, NTS_MAX_COOKIE_LENGTH, isUsableCookie } from './cookies.js';
export {
  NtsExtensionFieldType,
  MIN_EXTENSION_FIELD_LENGTH,
  parseExtensionFields,
  encodeExtensionField,
  encodeAuthenticator,
  decodeAuthenticator,
} from './extension-fields.js';
export type {
  ExtensionField,
  ParseExtensionFieldsOptions,
  EncodeExtensionFieldOptions,
  NtsAuthenticator,
} from './extension-fields.js';
export {
  NtsKeRecordType,
  NTS_PROTOCOL_NTPV4,
  AEAD_AES_SIV_CMAC_256,
  encodeKeRecord,
  encodeKeRecords,
  parseKeRecords,
  uint16Body,
} from './ke-records.js';
export type { NtsKeRecord, ParsedKeRecords } from './ke-records.js';
export { encodeKeRequest, interpretKeResponse } from './ke-messages.js';
export type { NtsKeResponse } from './ke-messages.js';
export {
  NTS_KE_PORT,
  NTS_KE_ALPN,
  NTS_EXPORTER_LABEL,
  ntsExporterContext,
  ntsKeyExchange,
} from './ke.js';
export type { NtsKeyExchangeOptions, NtsKeyExchangeResult } from './ke.js';
export { NtsSession } from './session.js';
export type { NtsSessionKeys, NtsSessionOptions, NtsRequest, NtsVerifiedReply } from './session.js';
export { validateNtsReply, queryNts } from './exchange.js';
export type {
  NtsReplyContext,
  NtsAuthenticatedExchange,
  QueryNtsOptions,
  NtsExchange,
} from './exchange.js';
export {
  NtsKeyExchangeError,
  NtsKeConnectionError,
  NtsKeTlsError,
  NtsKeAlpnError,
  NtsKeServerError,
  NtsKeCriticalRecordError,
  NtsKeNegotiationError,
  NtsKeNoCookiesError,
  NtsKeProtocolError,
  NtsKeTimeoutError,
  NtsExtensionFieldError,
  NtsNoCookiesError,
  NtsRejectedError,
} from './errors.js';
export type { NtsErrorCode, NtsRejectionReason } from './errors.js';
