/**
 * fast-check parameters shared by the property tests: a fixed seed (override with
 * FC_SEED; fast-check prints the seed and path of any failure) and run counts that
 * grow tenfold under CHRONOBOUND_LONG.
 */
export const seed = Number(process.env['FC_SEED'] ?? 42);
export const long = process.env['CHRONOBOUND_LONG'] !== undefined;

export function fcParams(numRuns: number): { seed: number; numRuns: number } {
  return { seed, numRuns: long ? numRuns * 10 : numRuns };
}
