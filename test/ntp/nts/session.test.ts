/**
 * NtsSession and validateNtsReply against a server written here from RFC 8915
 * §5.7 (it checks the request's authenticator under C2S and answers under S2C):
 * the request layout, cookie use and replenishment, and every refusal — every
 * single bit flipped in a reply, stripped fields, replays, a foreign Unique
 * Identifier, NTS NAK — plus the header checks that follow authentication, and
 * a fuzz that only ever sees NtsRejectedError.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  InvalidArgumentError,
  NtpKissOfDeathError,
  NtpRejectedError,
} from '../../../src/errors.js';
import { epochMsToNtp, type NtpTimestamp } from '../../../src/ntp/era.js';
import {
  decodeNtpPacket,
  encodeNtpPacket,
  referenceIdFromString,
} from '../../../src/ntp/packet.js';
import { aeadAesSivCmac256Open, aeadAesSivCmac256Seal } from '../../../src/ntp/nts/aes-siv.js';
import { NtsNoCookiesError, NtsRejectedError } from '../../../src/ntp/nts/errors.js';
import { validateNtsReply } from '../../../src/ntp/nts/exchange.js';
import {
  NtsExtensionFieldType as T,
  decodeAuthenticator,
  encodeAuthenticator,
  encodeExtensionField,
  parseExtensionFields,
} from '../../../src/ntp/nts/extension-fields.js';
import { NtsSession, type NtsRequest } from '../../../src/ntp/nts/session.js';
import { fcParams } from '../../support/fc.js';
import { catchError } from '../../support/errors.js';
import { concatBytes } from '../../../src/_internals/bytes.js';

const COOKIE_LENGTH = 100;

const freshCookie = (): Uint8Array => new Uint8Array(randomBytes(COOKIE_LENGTH));

interface Keys {
  c2sKey: Uint8Array;
  s2cKey: Uint8Array;
}

function keyExchange(cookies = 8): Keys & {
  cookies: Uint8Array[];
  ntpHost: string;
  ntpPort: number;
} {
  return {
    c2sKey: new Uint8Array(randomBytes(32)),
    s2cKey: new Uint8Array(randomBytes(32)),
    cookies: Array.from({ length: cookies }, freshCookie),
    ntpHost: '127.0.0.1',
    ntpPort: 123,
  };
}

interface ParsedRequest {
  uid: Uint8Array;
  cookie: Uint8Array;
  placeholders: number;
  transmit: NtpTimestamp;
}

/** The server side of RFC 8915 §5.7, independent of the session's code paths. */
function parseRequest(bytes: Uint8Array, keys: Keys): ParsedRequest {
  const fields = parseExtensionFields(bytes);
  const auth = fields[fields.length - 1]!;
  expect(auth.type).toBe(T.authenticator);
  expect(auth.length).toBeGreaterThanOrEqual(28);
  const { nonce, ciphertext } = decodeAuthenticator(auth.body);
  expect(nonce.length).toBe(16);
  const plaintext = aeadAesSivCmac256Open(
    keys.c2sKey,
    nonce,
    bytes.subarray(0, auth.offset),
    ciphertext,
  );
  expect(plaintext, 'the request authenticates under C2S').toBeDefined();
  expect(plaintext!.length).toBe(0);
  const uids = fields.filter((f) => f.type === T.uniqueIdentifier);
  const cookies = fields.filter((f) => f.type === T.cookie);
  const placeholders = fields.filter((f) => f.type === T.cookiePlaceholder);
  expect(uids.length).toBe(1);
  expect(cookies.length).toBe(1);
  for (const p of placeholders) expect(p.body.length).toBe(cookies[0]!.body.length);
  return {
    uid: uids[0]!.body,
    cookie: cookies[0]!.body,
    placeholders: placeholders.length,
    transmit: decodeNtpPacket(bytes).transmitTimestamp,
  };
}

interface ServeOptions {
  stratum?: number;
  referenceId?: number;
  nak?: boolean;
  cookies?: number;
  serverMs?: number;
  origin?: NtpTimestamp;
}

function serve(request: Uint8Array, keys: Keys, options: ServeOptions = {}): Uint8Array {
  const parsed = parseRequest(request, keys);
  const now = epochMsToNtp(options.serverMs ?? Date.now());
  const header = encodeNtpPacket({
    version: 4,
    mode: 4,
    stratum: options.nak ? 0 : (options.stratum ?? 1),
    precision: -20,
    referenceId: options.nak ? referenceIdFromString('NTSN') : (options.referenceId ?? 0x47505300),
    referenceTimestamp: now,
    originTimestamp: options.origin ?? parsed.transmit,
    receiveTimestamp: now,
    transmitTimestamp: now,
  });
  const uid = encodeExtensionField(T.uniqueIdentifier, parsed.uid);
  if (options.nak) return concatBytes([header, uid]);
  const count = options.cookies ?? 1 + parsed.placeholders;
  const plaintext = concatBytes(
    Array.from({ length: count }, () => encodeExtensionField(T.cookie, freshCookie())),
  );
  const nonce = new Uint8Array(randomBytes(16));
  const sealed = aeadAesSivCmac256Seal(keys.s2cKey, nonce, concatBytes([header, uid]), plaintext);
  return concatBytes([
    header,
    uid,
    encodeAuthenticator(nonce, sealed, request.length - 48 - uid.length),
  ]);
}

const header = (): Uint8Array =>
  encodeNtpPacket({
    version: 4,
    mode: 3,
    transmitTimestamp: epochMsToNtp(Date.now() + Math.random()),
  });

function refusal(f: () => unknown): NtsRejectedError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(NtsRejectedError);
    const error = e as NtsRejectedError;
    expect(error.code).toBe('NTP_REJECTED');
    expect(error).toBeInstanceOf(NtpRejectedError);
    return error;
  }
  throw new Error('expected a refusal, but the reply was accepted');
}

describe('NtsSession.buildRequest', () => {
  it('sends a 32-byte Unique Identifier, one cookie, and an authenticator over everything before it', () => {
    const ke = keyExchange();
    const first = ke.cookies[0]!;
    const session = new NtsSession(ke);
    const request = session.buildRequest(header());
    const parsed = parseRequest(request.bytes, ke);
    expect(parsed.uid.length).toBe(32);
    expect(Array.from(parsed.uid)).toEqual(Array.from(request.uniqueId));
    expect(Array.from(parsed.cookie)).toEqual(Array.from(first));
    // A full jar asks only for the cookie it spends.
    expect(parsed.placeholders).toBe(0);
    expect(request.cookiesRequested).toBe(1);
    expect(session.cookies).toBe(7);
    expect(request.bytes.length % 4).toBe(0);
  });

  it('asks for enough cookies to refill the jar, and uses every cookie once', () => {
    const ke = keyExchange(3);
    const session = new NtsSession(ke);
    const sent = new Set<string>();
    let request = session.buildRequest(header());
    let parsed = parseRequest(request.bytes, ke);
    expect(parsed.placeholders).toBe(5); // 2 left, 8 wanted: the cookie + 5 placeholders
    for (let i = 0; i < 30; i++) {
      const cookie = Buffer.from(parsed.cookie).toString('hex');
      expect(sent.has(cookie), 'a cookie was sent twice').toBe(false);
      sent.add(cookie);
      const verified = session.verifyReply(serve(request.bytes, ke), request);
      expect(verified.cookiesHeld).toBe(8);
      request = session.buildRequest(header());
      parsed = parseRequest(request.bytes, ke);
    }
  });

  it('runs out of cookies without replies, and then needs a key exchange', () => {
    const session = new NtsSession(keyExchange(8));
    for (let i = 0; i < 8; i++) session.buildRequest(header());
    expect(session.needsKeyExchange).toBe(true);
    expect(() => session.buildRequest(header())).toThrow(NtsNoCookiesError);
    session.rekey(keyExchange(8));
    expect(session.needsKeyExchange).toBe(false);
    expect(session.keyGeneration).toBe(2);
  });

  it('refuses a header that is not 48 bytes of NTPv4, and keys that are not 32 bytes', () => {
    const session = new NtsSession(keyExchange());
    expect(() => session.buildRequest(new Uint8Array(47))).toThrow(InvalidArgumentError);
    expect(() => session.buildRequest(encodeNtpPacket({ version: 3, mode: 3 }))).toThrow(
      InvalidArgumentError,
    );
    expect(() => new NtsSession({ ...keyExchange(), c2sKey: new Uint8Array(16) })).toThrow(
      InvalidArgumentError,
    );
  });
});

describe('NtsSession.verifyReply', () => {
  it('accepts an authentic reply and takes its cookies', () => {
    const ke = keyExchange(4);
    const session = new NtsSession(ke);
    const request = session.buildRequest(header());
    const result = session.verifyReply(serve(request.bytes, ke), request);
    expect(result).toEqual({ cookiesReceived: 5, cookiesHeld: 8 });
  });

  it('refuses every single bit flipped anywhere in the reply', () => {
    const ke = keyExchange();
    const session = new NtsSession(ke);
    const request = session.buildRequest(header());
    const reply = serve(request.bytes, ke);
    const reasons = new Map<string, number>();
    for (let bit = 0; bit < reply.length * 8; bit++) {
      const forged = new Uint8Array(reply);
      forged[bit >> 3] = forged[bit >> 3]! ^ (1 << (bit & 7));
      const error = refusal(() => session.verifyReply(forged, request));
      reasons.set(error.reason, (reasons.get(error.reason) ?? 0) + 1);
      if (bit < 48 * 8) expect(error.reason, `header bit ${bit}`).toBe('nts-bad-tag');
    }
    expect(session.cookies, 'no refused reply changed the jar').toBe(7);
    expect([...reasons.keys()].sort()).toEqual(
      expect.arrayContaining(['nts-bad-tag', 'nts-malformed', 'nts-uid-mismatch']),
    );
    // The genuine reply still verifies afterwards.
    expect(session.verifyReply(reply, request).cookiesHeld).toBe(8);
  });

  it('refuses a reply whose NTS fields were stripped: never a downgrade to plain NTP', () => {
    const ke = keyExchange();
    const session = new NtsSession(ke);
    const request = session.buildRequest(header());
    const reply = serve(request.bytes, ke);
    expect(refusal(() => session.verifyReply(reply.subarray(0, 48), request)).reason).toBe(
      'nts-unauthenticated',
    );
    expect(refusal(() => session.verifyReply(reply.subarray(0, 48 + 36), request)).reason).toBe(
      'nts-unauthenticated',
    );
    expect(refusal(() => session.verifyReply(reply.subarray(0, 40), request)).reason).toBe(
      'nts-malformed',
    );
  });

  it('refuses a field added after the authenticator, or one injected before it', () => {
    const ke = keyExchange();
    const session = new NtsSession(ke);
    const request = session.buildRequest(header());
    const reply = serve(request.bytes, ke);
    const extra = encodeExtensionField(0x0204, new Uint8Array(12));
    expect(refusal(() => session.verifyReply(concatBytes([reply, extra]), request)).reason).toBe(
      'nts-malformed',
    );
    const injected = concatBytes([reply.subarray(0, 84), extra, reply.subarray(84)]);
    expect(refusal(() => session.verifyReply(injected, request)).reason).toBe('nts-bad-tag');
  });

  it('refuses a replayed earlier reply, a second copy, and a late reply to an abandoned request', () => {
    const ke = keyExchange();
    const session = new NtsSession(ke);
    const first = session.buildRequest(header());
    const firstReply = serve(first.bytes, ke);
    session.verifyReply(firstReply, first);
    const second = session.buildRequest(header());
    expect(refusal(() => session.verifyReply(firstReply, second)).reason).toBe('nts-replay');
    const secondReply = serve(second.bytes, ke);
    session.verifyReply(secondReply, second);
    expect(refusal(() => session.verifyReply(secondReply, second)).reason).toBe('nts-replay');
    const third = session.buildRequest(header());
    session.abandon(third);
    expect(refusal(() => session.verifyReply(serve(third.bytes, ke), third)).reason).toBe(
      'nts-replay',
    );
  });

  it("refuses another request's reply, and one under other keys", () => {
    const ke = keyExchange();
    const session = new NtsSession(ke);
    const other = new NtsSession(ke);
    const request = session.buildRequest(header());
    const foreign = other.buildRequest(header());
    expect(refusal(() => session.verifyReply(serve(foreign.bytes, ke), request)).reason).toBe(
      'nts-uid-mismatch',
    );
    const swapped = { ...ke, s2cKey: ke.c2sKey };
    // The server seals under the wrong key: the tag does not verify.
    const forged = serve(request.bytes, { c2sKey: ke.c2sKey, s2cKey: swapped.s2cKey });
    expect(refusal(() => session.verifyReply(forged, request)).reason).toBe('nts-bad-tag');
  });

  it('on an NTS NAK drops the cookies and asks for a key exchange; older replies are then replays', () => {
    const ke = keyExchange();
    const session = new NtsSession(ke);
    const before = session.buildRequest(header());
    const request = session.buildRequest(header());
    const error = refusal(() =>
      session.verifyReply(serve(request.bytes, ke, { nak: true }), request),
    );
    expect(error.reason).toBe('nts-nak');
    expect(error.message).toMatch(/NTSN/);
    expect(session.needsKeyExchange).toBe(true);
    expect(session.cookies).toBe(0);
    expect(() => session.buildRequest(header())).toThrow(NtsNoCookiesError);
    const fresh = keyExchange();
    session.rekey(fresh);
    expect(refusal(() => session.verifyReply(serve(before.bytes, ke), before)).reason).toBe(
      'nts-replay',
    );
    const next = session.buildRequest(header());
    expect(session.verifyReply(serve(next.bytes, fresh), next).cookiesHeld).toBe(8);
  });

  it('ignores a NAK that does not echo our Unique Identifier (keeps the cookies)', () => {
    const ke = keyExchange();
    const session = new NtsSession(ke);
    const request = session.buildRequest(header());
    const other = new NtsSession(ke).buildRequest(header());
    const nak = serve(other.bytes, ke, { nak: true });
    expect(refusal(() => session.verifyReply(nak, request)).reason).toBe('nts-uid-mismatch');
    expect(session.needsKeyExchange).toBe(false);
    expect(session.cookies).toBe(7);
  });

  it('fuzz: random and mutated datagrams only ever raise NtsRejectedError', () => {
    const ke = keyExchange();
    const session = new NtsSession(ke);
    const request = session.buildRequest(header());
    const reply = serve(request.bytes, ke);
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 1200 }),
          fc
            .tuple(
              fc.array(fc.tuple(fc.nat(reply.length - 1), fc.integer({ min: 0, max: 255 })), {
                minLength: 1,
                maxLength: 6,
              }),
              fc.nat(reply.length),
            )
            .map(([edits, cut]) => {
              const b = new Uint8Array(reply.subarray(0, cut));
              for (const [at, v] of edits) if (at < b.length) b[at] = v;
              return b;
            }),
        ),
        (bytes) => {
          try {
            session.verifyReply(bytes, request);
            // Only the untouched reply may pass (an edit can rewrite a byte to its own value).
            expect(Buffer.from(bytes).equals(Buffer.from(reply))).toBe(true);
            throw new Error('stop: accepted');
          } catch (e) {
            if ((e as Error).message === 'stop: accepted') return;
            expect(e).toBeInstanceOf(NtsRejectedError);
          }
        },
      ),
      fcParams(5000),
    );
  });
});

describe('validateNtsReply: NTS first, then exactly the plain header checks', () => {
  function exchange(options: ServeOptions = {}): {
    session: NtsSession;
    request: NtsRequest;
    reply: Uint8Array;
    nonce: NtpTimestamp;
  } {
    const ke = keyExchange();
    const session = new NtsSession(ke);
    const h = header();
    const request = session.buildRequest(h);
    return {
      session,
      request,
      reply: serve(request.bytes, ke, options),
      nonce: decodeNtpPacket(h).transmitTimestamp,
    };
  }

  it('accepts an authentic reply and computes the sample', () => {
    const serverMs = Date.now() + 5000;
    const { session, request, reply, nonce } = exchange({ serverMs });
    const x = validateNtsReply(reply, {
      server: '127.0.0.1:123',
      nonce,
      t1: 100,
      t4: 102,
      session,
      request,
    });
    expect(x.authenticated).toBe(true);
    expect(x.cookiesLeft).toBe(8);
    expect(x.delayMs).toBeCloseTo(2, 3);
    expect(x.t4 + x.offsetMs).toBeCloseTo(serverMs + 1, 0);
  });

  it('refuses an authenticated kiss code and an authenticated origin mismatch with the plain reasons', () => {
    const rate = exchange({ stratum: 0, referenceId: referenceIdFromString('RATE') });
    expect(() =>
      validateNtsReply(rate.reply, {
        server: 's',
        nonce: rate.nonce,
        t1: 0,
        t4: 1,
        session: rate.session,
        request: rate.request,
      }),
    ).toThrow(NtpKissOfDeathError);
    const spoof = exchange({ origin: { seconds: 1, fraction: 2 } });
    const error = catchError(() =>
      validateNtsReply(spoof.reply, {
        server: 's',
        nonce: spoof.nonce,
        t1: 0,
        t4: 1,
        session: spoof.session,
        request: spoof.request,
      }),
    );
    expect(error).toBeInstanceOf(NtpRejectedError);
    expect((error as NtpRejectedError).reason).toBe('origin-mismatch');
  });
});
