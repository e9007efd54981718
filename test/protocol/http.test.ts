import { describe, expect, it } from 'vitest';
import {
  TIME_REPLY_BYTES,
  nonceFromTimeQuery,
  timeReplyBody,
  timeRequestUrl,
} from '../../src/protocol/http.js';
import type { TimeReply } from '../../src/protocol/messages.js';
import { BAD_TIME_QUERIES, TEST_NONCE as NONCE } from '../support/time-servers.js';

describe('time over HTTP: the request', () => {
  it('adds ?nonce= to the endpoint, keeping its other parameters and dropping a fragment', () => {
    expect(timeRequestUrl(new URL('https://example.com/time'), NONCE)).toBe(
      `https://example.com/time?nonce=${NONCE}`,
    );
    expect(timeRequestUrl(new URL('https://example.com/time?region=eu#x'), NONCE)).toBe(
      `https://example.com/time?region=eu&nonce=${NONCE}`,
    );
  });

  it('a server takes exactly ?nonce=<32 lowercase hex digits> and nothing else', () => {
    expect(nonceFromTimeQuery(`?nonce=${NONCE}`)).toBe(NONCE);
    const refused: readonly (readonly [string, string])[] = [
      ...BAD_TIME_QUERIES,
      ['no question mark', `nonce=${NONCE}`],
    ];
    for (const [what, search] of refused) expect(nonceFromTimeQuery(search), what).toBeUndefined();
  });
});

describe('time over HTTP: the reply body', () => {
  it('is the JSON padded with spaces to exactly 256 bytes, and parses back to the reply', () => {
    const reply: TimeReply = {
      type: 'chronobound.time-reply',
      v: 1,
      nonce: NONCE,
      // Numbers with all 17 significant digits, the longest a double prints as.
      t2: 1e13 / 3,
      t3: 1e13 / 3,
      errorMs: 1e9 / 3,
      status: 'free-running',
    };
    const body = timeReplyBody(reply);
    expect(TIME_REPLY_BYTES).toBe(256);
    expect(body).toHaveLength(256);
    expect(body.trimEnd()).toBe(JSON.stringify(reply));
    expect(JSON.parse(body)).toEqual(reply);
  });
});
