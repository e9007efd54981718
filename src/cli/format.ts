/**
 * Plain-text output shared by the commands: aligned tables and signed
 * millisecond figures.
 *
 * @module
 */

/**
 * Aligns rows of cells into columns separated by `gap`; the first row sets the
 * column count. Trailing spaces are trimmed, so the last column is not padded.
 *
 * @example
 * ```ts
 * table([['server', 'delay'], ['10.0.0.1:123', '0.4 ms']]);
 * // 'server        delay\n10.0.0.1:123  0.4 ms'
 * ```
 * @internal
 */
export function table(rows: readonly (readonly string[])[], gap: string = '  '): string {
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length))) ?? [];
  return rows
    .map((r) =>
      r
        .map((v, c) => (c === r.length - 1 ? v : v.padEnd(widths[c] ?? 0)))
        .join(gap)
        .trimEnd(),
    )
    .join('\n');
}

/**
 * A duration in ms: `1.250 ms`.
 *
 * @example
 * ```ts
 * ms(1.25); // '1.250 ms'
 * ms(1701.4, 0); // '1701 ms'
 * ```
 * @internal
 */
export function ms(value: number, digits: number = 3): string {
  return `${value.toFixed(digits)} ms`;
}

/**
 * A signed duration in ms with a true minus sign: `+1.250 ms`, `−0.500 ms`.
 *
 * @example
 * ```ts
 * signedMs(-0.5); // '−0.500 ms'
 * signedMs(12.345, 1); // '+12.3 ms'
 * ```
 * @internal
 */
export function signedMs(value: number, digits: number = 3): string {
  return `${value >= 0 ? '+' : '−'}${Math.abs(value).toFixed(digits)} ms`;
}
