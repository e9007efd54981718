import { describe, expect, it } from 'vitest';
import {
  MAX_TIME_MESSAGE_CHARS,
  parseTimeMessageText,
  timeReplyCandidate,
  timeRequest,
  timeRequestNonce,
} from '../../src/protocol/messages.js';
import { NOT_TIME_REQUESTS, TEST_NONCE as NONCE } from '../support/time-servers.js';

describe('time request messages', () => {
  it('a request built by timeRequest is recognised, as an object and as JSON text', () => {
    const request = timeRequest(NONCE);
    expect(request).toEqual({ type: 'chronobound.time-request', v: 1, nonce: NONCE });
    expect(timeRequestNonce(request)).toBe(NONCE);
    expect(timeRequestNonce(JSON.stringify(request))).toBe(NONCE);
  });

  const notRequests: readonly (readonly [string, unknown])[] = [
    ...NOT_TIME_REQUESTS,
    [
      'text just over the size limit',
      JSON.stringify({ ...timeRequest(NONCE), pad: 'x'.repeat(MAX_TIME_MESSAGE_CHARS) }),
    ],
  ];
  it.each(notRequests)('is not fooled by %s', (_what, message) => {
    expect(timeRequestNonce(message)).toBeUndefined();
  });
});

describe('time reply candidates', () => {
  it('picks out messages whose type says time reply, leaving their fields unchecked', () => {
    const reply = { type: 'chronobound.time-reply', nonce: 42 };
    expect(timeReplyCandidate(reply)).toBe(reply);
    expect(timeReplyCandidate(JSON.stringify(reply))).toEqual(reply);
  });

  it.each([
    ['an app message', { type: 'chat' }],
    ['app text mentioning nothing of ours', '{"type":"chat"}'],
    ['a request', timeRequest(NONCE)],
    ['bytes', new Uint8Array(8)],
    ['text that names the type but is not JSON', 'chronobound.time-reply!'],
    ['undefined', undefined],
  ])('ignores %s', (_what, message) => {
    expect(timeReplyCandidate(message)).toBeUndefined();
  });
});

describe('parseTimeMessageText', () => {
  it('parses JSON up to the limit and nothing longer', () => {
    expect(parseTimeMessageText('{"a":1}')).toEqual({ a: 1 });
    expect(parseTimeMessageText(`"${'x'.repeat(MAX_TIME_MESSAGE_CHARS - 2)}"`)).toHaveLength(
      MAX_TIME_MESSAGE_CHARS - 2,
    );
    expect(parseTimeMessageText(`"${'x'.repeat(MAX_TIME_MESSAGE_CHARS - 1)}"`)).toBeUndefined();
    expect(parseTimeMessageText('{')).toBeUndefined();
  });
});
