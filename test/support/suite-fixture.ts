/**
 * A server or process a whole suite shares: started once before the suite's
 * tests and stopped (or closed) after them.
 */
import { afterAll, beforeAll } from 'vitest';

/** Something that ends with `stop()` (a supervised process) or `close()` (a server). */
export type SuiteResource = { stop(): Promise<void> } | { close(): Promise<void> };

/**
 * Starts `start()` before the enclosing suite's tests and stops or closes it after
 * them; call the returned function inside a test to get it.
 *
 * @example
 * ```ts
 * describe('against a loopback NTP server', () => {
 *   const server = suiteFixture(createNtpServer);
 *   it('answers', async () => {
 *     await queryNtp({ host: '127.0.0.1', port: server().port });
 *   });
 * });
 * ```
 * @throws Error from the returned function when `start()` has not resolved (it failed).
 */
export function suiteFixture<T extends SuiteResource>(
  start: () => Promise<T>,
  startTimeoutMs: number = 120_000,
): () => T {
  let fixture: T | undefined;
  beforeAll(async () => {
    fixture = await start();
  }, startTimeoutMs);
  afterAll(async () => {
    if (fixture === undefined) return;
    await ('stop' in fixture ? fixture.stop() : fixture.close());
  });
  return () => {
    if (fixture === undefined) throw new Error('the suite fixture did not start');
    return fixture;
  };
}
