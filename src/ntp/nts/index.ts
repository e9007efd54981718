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
  type ExtensionField,
  type ParseExtensionFieldsOptions,
  type EncodeExtensionFieldOptions,
  type NtsAuthenticator,
} from './extension-fields.js';
export {
  NtsKeRecordType,
  NTS_PROTOCOL_NTPV4,
  AEAD_AES_SIV_CMAC_256,
  encodeKeRecord,
  encodeKeRecords,
  parseKeRecords,
  uint16Body,
  type NtsKeRecord,
  type ParsedKeRecords,
} from './ke-records.js';
export { encodeKeRequest, interpretKeResponse, type NtsKeResponse } from './ke-messages.js';
export {
  NTS_KE_PORT,
  NTS_KE_ALPN,
  NTS_EXPORTER_LABEL,
  ntsExporterContext,
  ntsKeyExchange,
  type NtsKeyExchangeOptions,
  type NtsKeyExchangeResult,
} from './ke.js';
export {
  NtsSession,
  type NtsSessionKeys,
  type NtsSessionOptions,
  type NtsRequest,
  type NtsVerifiedReply,
} from './session.js';
export {
  validateNtsReply,
  queryNts,
  type NtsReplyContext,
  type NtsAuthenticatedExchange,
  type QueryNtsOptions,
  type NtsExchange,
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
  type NtsErrorCode,
  type NtsRejectionReason,
} from './errors.js';
