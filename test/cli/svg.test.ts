import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  dotPlot,
  escapeXml,
  formatTick,
  horizontalBarChart,
  lineChart,
  niceTicks,
  stackCharts,
} from '../../src/cli/svg.js';
import { fcParams } from '../support/fc.js';

/** Minimal well-formedness: every opened element is closed, in order. */
function balanced(svg: string): boolean {
  const stack: string[] = [];
  for (const m of svg.matchAll(/<(\/?)([a-zA-Z]+)[^>]*?(\/?)>/g)) {
    const [, closing, name, selfClosing] = m;
    if (selfClosing === '/') continue;
    if (closing === '/') {
      if (stack.pop() !== name) return false;
    } else stack.push(name ?? '');
  }
  return stack.length === 0;
}

describe('niceTicks', () => {
  it('covers the range with 1/2/5 × 10^k steps', () => {
    fc.assert(
      fc.property(
        fc.double({ min: -1e9, max: 1e9, noNaN: true }),
        fc.double({ min: 1e-6, max: 1e9, noNaN: true }),
        (lo, span) => {
          const hi = lo + span;
          // Charts never need a span below a billionth of the values' magnitude.
          fc.pre(hi > lo && span >= Math.abs(lo) * 1e-9);
          const ticks = niceTicks(lo, hi);
          expect(ticks[0]).toBeLessThanOrEqual(lo);
          expect(ticks.at(-1)).toBeGreaterThanOrEqual(hi);
          expect(ticks.length).toBeGreaterThanOrEqual(2);
          expect(ticks.length).toBeLessThanOrEqual(50);
          const step = (ticks[1] as number) - (ticks[0] as number);
          const mantissa = step / 10 ** Math.floor(Math.log10(step) + 1e-9);
          expect([1, 2, 5, 10].some((m) => Math.abs(mantissa - m) < 1e-6)).toBe(true);
          for (let i = 1; i < ticks.length; i++)
            expect(ticks[i]).toBeGreaterThan(ticks[i - 1] as number);
        },
      ),
      fcParams(500),
    );
  });

  it('handles a flat range and prints clean labels', () => {
    expect(niceTicks(5, 5).length).toBeGreaterThan(1);
    expect(niceTicks(0, 0.3)).toEqual([0, 0.1, 0.2, 0.3]);
    expect(niceTicks(0.1, 0.7)).toEqual([0, 0.2, 0.4, 0.6, 0.8]);
    expect(formatTick(1500)).toBe('1500');
    expect(formatTick(15000)).toBe('15k');
    expect(formatTick(2_500_000)).toBe('2.5M');
    expect(formatTick(0.000123)).toBe('0.000123');
  });
});

describe('charts', () => {
  it('escape text', () => {
    expect(escapeXml('a<b & "c">')).toBe('a&lt;b &amp; &quot;c&quot;&gt;');
  });

  it('draw a line chart with bands, legend and escaped labels, deterministically', () => {
    const spec = {
      title: 'ε <sawtooth> & truth',
      xLabel: 's',
      yLabel: 'ms',
      bands: [
        {
          name: 'band',
          points: [
            [0, -1, 1],
            [1, -2, 2],
          ] as const,
        },
      ],
      lines: [
        {
          name: 'a',
          points: [
            [0, 0],
            [1, 0.5],
          ] as const,
        },
        {
          name: 'b',
          points: [
            [0, 1],
            [1, 1],
          ] as const,
          dashed: true,
          step: true,
        },
      ],
    };
    const svg = lineChart(spec);
    expect(svg).toBe(lineChart(spec));
    expect(balanced(svg)).toBe(true);
    expect(svg).toContain('ε &lt;sawtooth&gt; &amp; truth');
    expect(svg.match(/<polyline /g)).toHaveLength(2);
    expect(svg.match(/<polygon /g)).toHaveLength(1);
    expect(svg).toContain('stroke-dasharray');
    // The step line has an extra vertex per point after the first.
    const stepLine = [...svg.matchAll(/<polyline points="([^"]+)"/g)][1]?.[1] ?? '';
    expect(stepLine.split(' ')).toHaveLength(3);
  });

  it('wrap a long legend onto more rows and grow the canvas', () => {
    const many = Array.from({ length: 12 }, (_, i) => ({
      name: `a rather long series name ${i}`,
      points: [
        [0, i],
        [1, i],
      ] as const,
    }));
    const svg = lineChart({ title: 't', xLabel: 'x', yLabel: 'y', lines: many });
    const height = Number(/height="(\d+)"/.exec(svg)?.[1]);
    expect(height).toBeGreaterThan(380);
    expect(balanced(svg)).toBe(true);
  });

  it('stack charts one under another in one document', () => {
    const bars = horizontalBarChart({ title: 't', xLabel: 'x', bars: [{ label: 'a', value: 1 }] });
    const line = lineChart({ title: 't', xLabel: 'x', yLabel: 'y', lines: [] });
    const barsHeight = Number(/height="(\d+)"/.exec(bars)?.[1]);
    const both = stackCharts([bars, line]);
    expect(balanced(both)).toBe(true);
    expect(both).toMatch(
      new RegExp(
        `^<svg xmlns="http://www\\.w3\\.org/2000/svg" width="860" height="${barsHeight + 380}"`,
      ),
    );
    expect(both).toContain(`<svg y="${barsHeight}" `);
  });

  it('draw horizontal bars scaled from 0, labels on the left, values after each bar', () => {
    const svg = horizontalBarChart({
      title: 'now()',
      xLabel: 'relative',
      bars: [
        { label: 'performance.now()', value: 1, valueLabel: '1.00×' },
        { label: 'TrueClock.now()', value: 0.5 },
      ],
    });
    expect(balanced(svg)).toBe(true);
    const widths = [...svg.matchAll(/<rect x="[\d.]+" y="[\d.]+" width="([\d.]+)"/g)].map((m) =>
      Number(m[1]),
    );
    expect(widths).toHaveLength(2);
    expect(widths[0]).toBeCloseTo(2 * (widths[1] ?? 0), 0);
    expect(svg).toContain('>1.00×</text>');
    expect(svg).toContain('>0.5</text>');
    expect(svg).toContain('>performance.now()</text>');
  });

  it('draw a dot plot: one dot per point, error bars where given, points beyond the limit at the edge', () => {
    const svg = dotPlot({
      title: 'offset <error>',
      yLabel: 'ms',
      categories: ['a\nlong', 'b'],
      yLimit: 2,
      series: [
        {
          name: 's1',
          color: '#111111',
          points: [
            { category: 0, y: 1, error: 0.5 },
            { category: 1, y: 50 },
          ],
        },
        { name: 's2', color: '#222222', points: [{ category: 0, y: -1 }] },
      ],
    });
    expect(balanced(svg)).toBe(true);
    expect(svg).toContain('offset &lt;error&gt;');
    // Three dots and two legend dots; one error bar.
    expect(svg.match(/<circle /g)).toHaveLength(5);
    expect(svg.match(/stroke-opacity="0.35"/g)).toHaveLength(1);
    // Two-line category labels; y = 50 is clipped to the top of the plot (y = 64).
    expect(svg).toContain('>long</text>');
    expect(svg).toMatch(/<circle cx="[\d.]+" cy="64\.0" r="2.6" fill="#111111"\/>/);
    expect(dotPlot({ title: 't', yLabel: 'y', categories: ['a'], series: [] })).toBe(
      dotPlot({ title: 't', yLabel: 'y', categories: ['a'], series: [] }),
    );
  });
});
