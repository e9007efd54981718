import { describe, expect, it } from 'vitest';
import { isTimeNonce, newTimeNonce } from '../../src/protocol/nonce.js';

describe('time nonces', () => {
  it('are 32 lowercase hex digits, fresh each time', () => {
    const nonces = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const nonce = newTimeNonce();
      expect(nonce).toMatch(/^[0-9a-f]{32}$/);
      expect(isTimeNonce(nonce)).toBe(true);
      nonces.add(nonce);
    }
    expect(nonces.size).toBe(100);
  });

  it.each([
    ['an uppercase nonce', '0123456789ABCDEF0123456789ABCDEF'],
    ['31 digits', '0123456789abcdef0123456789abcde'],
    ['33 digits', '0123456789abcdef0123456789abcdef0'],
    ['a non-hex digit', '0123456789abcdef0123456789abcdeg'],
    ['a trailing newline', '0123456789abcdef0123456789abcdef\n'],
    ['a number', 1234],
    ['undefined', undefined],
  ])('rejects %s', (_what, value) => {
    expect(isTimeNonce(value)).toBe(false);
  });
});
