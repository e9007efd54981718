/**
 * A small dependency-free SVG writer for benchmark plots: a categorical dot plot
 * with optional error bars, a zero line and a legend. Deterministic output (no
 * randomness, fixed number formatting) so regenerated plots diff cleanly. The
 * CLI's chart writer (src/cli/svg.ts) draws the other plots; this adds the dot plot.
 */
import { escapeXml } from '../src/cli/svg.js';

export interface DotPoint {
  /** Index into `categories`. */
  readonly category: number;
  /** Value on the y axis. */
  readonly y: number;
  /** Half-length of the error bar, if any. */
  readonly error?: number;
}

export interface DotSeries {
  readonly name: string;
  readonly color: string;
  readonly points: readonly DotPoint[];
}

export interface DotPlotOptions {
  readonly title: string;
  readonly subtitle?: string;
  readonly yLabel: string;
  readonly categories: readonly string[];
  readonly series: readonly DotSeries[];
  readonly width?: number;
  readonly height?: number;
  /** Clip the y axis to ±this (points beyond are drawn at the edge with an arrow). */
  readonly yLimit?: number;
}

const f = (x: number): string => (Math.round(x * 10) / 10).toFixed(1);

/** A "nice" tick step for a range (1, 2 or 5 × 10ⁿ). */
function tickStep(range: number, target: number): number {
  const raw = range / target;
  const power = 10 ** Math.floor(Math.log10(raw));
  const n = raw / power;
  return (n < 1.5 ? 1 : n < 3.5 ? 2 : n < 7.5 ? 5 : 10) * power;
}

/** Renders the dot plot as an SVG document. */
export function dotPlot(options: DotPlotOptions): string {
  const width = options.width ?? 860;
  const height = options.height ?? 480;
  const margin = { top: 64, right: 24, bottom: 86, left: 72 };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;

  let extent = 0;
  for (const s of options.series) {
    for (const p of s.points) extent = Math.max(extent, Math.abs(p.y) + (p.error ?? 0));
  }
  const limit = options.yLimit !== undefined ? Math.min(options.yLimit, extent) : extent;
  const step = tickStep(2 * (limit || 1), 8);
  const yMax = Math.ceil((limit || 1) / step) * step;
  const y = (v: number): number =>
    margin.top + plotH / 2 - (Math.max(-yMax, Math.min(yMax, v)) / yMax) * (plotH / 2);
  const bandW = plotW / options.categories.length;
  const seriesCount = options.series.length;

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${margin.left}" y="24" font-size="16" font-weight="600">${escapeXml(options.title)}</text>`,
  );
  if (options.subtitle) {
    out.push(`<text x="${margin.left}" y="44" fill="#555">${escapeXml(options.subtitle)}</text>`);
  }
  // Grid and y ticks.
  for (let v = -yMax; v <= yMax + step / 2; v += step) {
    const yy = y(v);
    out.push(
      `<line x1="${margin.left}" x2="${margin.left + plotW}" y1="${f(yy)}" y2="${f(yy)}" stroke="${Math.abs(v) < step / 2 ? '#222' : '#e4e4e4'}" stroke-width="${Math.abs(v) < step / 2 ? 1.2 : 1}"/>`,
      `<text x="${margin.left - 8}" y="${f(yy + 4)}" text-anchor="end" fill="#444">${Number(v.toPrecision(6))}</text>`,
    );
  }
  out.push(
    `<text transform="translate(18 ${f(margin.top + plotH / 2)}) rotate(-90)" text-anchor="middle" fill="#222">${escapeXml(options.yLabel)}</text>`,
  );
  // Category bands and labels.
  options.categories.forEach((label, i) => {
    const x0 = margin.left + i * bandW;
    if (i > 0) {
      out.push(
        `<line x1="${f(x0)}" x2="${f(x0)}" y1="${margin.top}" y2="${margin.top + plotH}" stroke="#cfcfcf" stroke-dasharray="3 3"/>`,
      );
    }
    const lines = label.split('\n');
    lines.forEach((line, j) => {
      out.push(
        `<text x="${f(x0 + bandW / 2)}" y="${margin.top + plotH + 20 + j * 15}" text-anchor="middle" fill="#222">${escapeXml(line)}</text>`,
      );
    });
  });
  // Points: each series gets its own lane inside the band; points spread evenly across it.
  options.series.forEach((s, si) => {
    const laneW = (bandW * 0.8) / seriesCount;
    const byCategory = new Map<number, DotPoint[]>();
    for (const p of s.points) {
      const list = byCategory.get(p.category) ?? [];
      list.push(p);
      byCategory.set(p.category, list);
    }
    for (const [category, points] of byCategory) {
      const laneX = margin.left + category * bandW + bandW * 0.1 + si * laneW;
      points.forEach((p, k) => {
        const x = laneX + ((k + 0.5) / points.length) * laneW;
        if (p.error !== undefined) {
          out.push(
            `<line x1="${f(x)}" x2="${f(x)}" y1="${f(y(p.y - p.error))}" y2="${f(y(p.y + p.error))}" stroke="${s.color}" stroke-opacity="0.35" stroke-width="1.5"/>`,
          );
        }
        out.push(`<circle cx="${f(x)}" cy="${f(y(p.y))}" r="2.6" fill="${s.color}"/>`);
      });
    }
  });
  // Frame and legend.
  out.push(
    `<rect x="${margin.left}" y="${margin.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#888"/>`,
  );
  let lx = margin.left;
  const ly = height - 18;
  for (const s of options.series) {
    out.push(
      `<circle cx="${f(lx + 6)}" cy="${ly - 4}" r="4" fill="${s.color}"/>`,
      `<text x="${f(lx + 16)}" y="${ly}" fill="#222">${escapeXml(s.name)}</text>`,
    );
    lx += 24 + s.name.length * 6.8;
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
