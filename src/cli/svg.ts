/**
 * The one SVG chart writer of the project, dependency-free: line charts with
 * shaded bands (the TrueTime sawtooth: the demo, docs/img, the long-run bench),
 * horizontal bar charts (benchmark results, scripts/docs.mjs) and a categorical
 * dot plot with error bars (the NTP accuracy bench). The output is
 * deterministic for the same input, so regenerated plots diff cleanly.
 *
 * @module
 */

/**
 * A polyline: `points` are `[x, y]` pairs in data units.
 * @internal
 */
export interface LineSeries {
  readonly name: string;
  readonly points: readonly (readonly [number, number])[];
  readonly color?: string;
  /** Draw as a step function (value holds until the next point). */
  readonly step?: boolean;
  /** Dashed stroke. */
  readonly dashed?: boolean;
}

/**
 * A filled band between `low` and `high` at each `x`: `[x, low, high]` triples.
 * @internal
 */
export interface BandSeries {
  readonly name: string;
  readonly points: readonly (readonly [number, number, number])[];
  readonly color?: string;
}

/**
 * A line chart with optional bands drawn underneath the lines.
 * @internal
 */
export interface LineChartSpec {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly lines?: readonly LineSeries[];
  readonly bands?: readonly BandSeries[];
  readonly width?: number;
  readonly height?: number;
  /** Forces the y range to include these values (e.g. 0). */
  readonly yInclude?: readonly number[];
  /** A one-line note under the title (settings, date of the run). */
  readonly subtitle?: string;
}

/** Colour-blind-safe palette (Okabe–Ito). */
const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000'];

const MARGIN = { top: 58, right: 24, bottom: 64, left: 78 };

/** @internal */
export function paletteColor(index: number): string {
  return PALETTE[index % PALETTE.length] ?? '#000000';
}

/**
 * Escapes text for SVG content and attribute values.
 * @internal
 */
export function escapeXml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

/** Fixed short decimals keep files small and stable. */
function n(value: number): string {
  const r = Math.round(value * 100) / 100;
  return Object.is(r, -0) ? '0' : String(r);
}

/**
 * "Nice" axis ticks (steps of 1, 2 or 5 × 10^k) covering [min, max].
 * @internal
 */
export function niceTicks(min: number, max: number, count: number = 6): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [0];
  if (min === max) {
    const pad = Math.abs(min) > 0 ? Math.abs(min) * 0.1 : 1;
    return niceTicks(min - pad, max + pad, count);
  }
  const raw = (max - min) / Math.max(1, count - 1);
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const residual = raw / magnitude;
  const step = (residual > 5 ? 10 : residual > 2 ? 5 : residual > 1 ? 2 : 1) * magnitude;
  // Ticks are integer multiples of the step, printed to the step's decimals, so
  // labels read 0.3 rather than 0.30000000000000004.
  const decimals = Math.min(20, Math.max(0, Math.ceil(-Math.log10(step)) + 1));
  const at = (k: number): number => Number((k * step).toFixed(decimals));
  const ticks: number[] = [];
  let first = Math.floor(min / step);
  if (at(first) > min) first--; // min / step can underflow to 0 for tiny negative min
  for (let k = first; ticks.length < 50; k++) {
    const t = at(k);
    ticks.push(t);
    if (t >= max) break;
  }
  return ticks;
}

/**
 * Short tick labels: 1500 → 1.5k, 0.00012 → 0.00012.
 * @internal
 */
export function formatTick(value: number): string {
  const abs = Math.abs(value);
  if (abs >= 1e9) return `${Number((value / 1e9).toPrecision(4))}G`;
  if (abs >= 1e6) return `${Number((value / 1e6).toPrecision(4))}M`;
  if (abs >= 1e4) return `${Number((value / 1e3).toPrecision(4))}k`;
  return String(Number(value.toPrecision(4)));
}

interface Frame {
  readonly width: number;
  readonly height: number;
  readonly plotW: number;
  readonly plotH: number;
  /** Where the legend's first row sits. */
  readonly legendY: number;
}

interface LegendItem {
  readonly name: string;
  readonly color: string;
  readonly kind: 'line' | 'box';
}

const LEGEND_ROW = 18;

/** Rough text width at 12 px (no font metrics available). */
function textWidth(text: string): number {
  return text.length * 6.6;
}

/** Places legend entries left to right, wrapping at the chart's width. */
function layoutLegend(items: readonly LegendItem[], width: number): { x: number; row: number }[] {
  const out: { x: number; row: number }[] = [];
  let x = MARGIN.left;
  let row = 0;
  for (const item of items) {
    const w = 30 + textWidth(item.name);
    if (x > MARGIN.left && x + w > width - MARGIN.right) {
      row++;
      x = MARGIN.left;
    }
    out.push({ x, row });
    x += w + 12;
  }
  return out;
}

function frame(width: number | undefined, height: number | undefined, legendRows: number): Frame {
  const w = width ?? 760;
  const h = height ?? 380;
  const extra = Math.max(0, legendRows - 1) * LEGEND_ROW;
  return {
    width: w,
    height: h + extra,
    plotW: w - MARGIN.left - MARGIN.right,
    plotH: h - MARGIN.top - MARGIN.bottom,
    legendY: h - 14,
  };
}

function header(f: Frame, title: string, subtitle: string | undefined): string[] {
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${f.width}" height="${f.height}" viewBox="0 0 ${f.width} ${f.height}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif" font-size="12">`,
    `<title>${escapeXml(title)}</title>`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="${MARGIN.left}" y="22" font-size="15" font-weight="600" fill="#111">${escapeXml(title)}</text>`,
  ];
  if (subtitle !== undefined) {
    out.push(
      `<text x="${MARGIN.left}" y="39" font-size="11" fill="#555">${escapeXml(subtitle)}</text>`,
    );
  }
  return out;
}

function legend(f: Frame, items: readonly LegendItem[]): string[] {
  const out: string[] = [];
  const places = layoutLegend(items, f.width);
  items.forEach((item, i) => {
    const { x, row } = places[i] ?? { x: MARGIN.left, row: 0 };
    const y = f.legendY + row * LEGEND_ROW;
    if (item.kind === 'line') {
      out.push(
        `<line x1="${n(x)}" y1="${y - 4}" x2="${n(x + 18)}" y2="${y - 4}" stroke="${item.color}" stroke-width="2"/>`,
      );
    } else {
      out.push(
        `<rect x="${n(x)}" y="${y - 10}" width="18" height="10" fill="${item.color}" fill-opacity="0.35" stroke="${item.color}"/>`,
      );
    }
    out.push(`<text x="${n(x + 24)}" y="${y}" fill="#222">${escapeXml(item.name)}</text>`);
  });
  return out;
}

function legendRows(items: readonly LegendItem[], width: number | undefined): number {
  const places = layoutLegend(items, width ?? 760);
  return places.length === 0 ? 1 : Math.max(...places.map((p) => p.row)) + 1;
}

function yAxis(
  f: Frame,
  ticks: readonly number[],
  toY: (v: number) => number,
  label: string,
): string[] {
  const out: string[] = [];
  for (const t of ticks) {
    const y = toY(t);
    out.push(
      `<line x1="${MARGIN.left}" y1="${n(y)}" x2="${MARGIN.left + f.plotW}" y2="${n(y)}" stroke="#e5e5e5"/>`,
      `<text x="${MARGIN.left - 6}" y="${n(y + 4)}" text-anchor="end" fill="#444">${escapeXml(formatTick(t))}</text>`,
    );
  }
  const cy = MARGIN.top + f.plotH / 2;
  out.push(
    `<text x="16" y="${n(cy)}" transform="rotate(-90 16 ${n(cy)})" text-anchor="middle" fill="#222">${escapeXml(label)}</text>`,
  );
  return out;
}

function extent(values: Iterable<number>): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (!Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return lo <= hi ? [lo, hi] : [0, 1];
}

/**
 * Renders a line chart (with optional shaded bands) as an SVG document.
 * @internal
 */
export function lineChart(spec: LineChartSpec): string {
  const lines = spec.lines ?? [];
  const bands = spec.bands ?? [];
  const items: LegendItem[] = [
    ...bands.map((b, i) => ({
      name: b.name,
      color: b.color ?? paletteColor(i + 5),
      kind: 'box' as const,
    })),
    ...lines.map((l, i) => ({
      name: l.name,
      color: l.color ?? paletteColor(i),
      kind: 'line' as const,
    })),
  ];
  const f = frame(spec.width, spec.height, legendRows(items, spec.width));
  const xs: number[] = [];
  const ys: number[] = [...(spec.yInclude ?? [])];
  for (const l of lines) {
    for (const [x, y] of l.points) {
      xs.push(x);
      ys.push(y);
    }
  }
  for (const b of bands) {
    for (const [x, lo, hi] of b.points) {
      xs.push(x);
      ys.push(lo, hi);
    }
  }
  const [dataX0, dataX1] = extent(xs);
  const yTicks = niceTicks(...extent(ys));
  const xTicks = niceTicks(dataX0, dataX1, 8);
  const x0 = Math.min(dataX0, xTicks[0] ?? dataX0);
  const x1 = Math.max(dataX1, xTicks[xTicks.length - 1] ?? dataX1);
  const y0 = yTicks[0] ?? 0;
  const y1 = yTicks[yTicks.length - 1] ?? 1;
  const toX = (x: number): number => MARGIN.left + ((x - x0) / (x1 - x0 || 1)) * f.plotW;
  const toY = (y: number): number => MARGIN.top + f.plotH - ((y - y0) / (y1 - y0 || 1)) * f.plotH;

  const out = header(f, spec.title, spec.subtitle);
  out.push(...yAxis(f, yTicks, toY, spec.yLabel));
  for (const t of xTicks) {
    out.push(
      `<text x="${n(toX(t))}" y="${MARGIN.top + f.plotH + 16}" text-anchor="middle" fill="#444">${escapeXml(formatTick(t))}</text>`,
    );
  }
  out.push(
    `<text x="${n(MARGIN.left + f.plotW / 2)}" y="${MARGIN.top + f.plotH + 34}" text-anchor="middle" fill="#222">${escapeXml(spec.xLabel)}</text>`,
    `<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${f.plotW}" height="${f.plotH}" fill="none" stroke="#999"/>`,
  );
  bands.forEach((band, i) => {
    const color = band.color ?? paletteColor(i + 5);
    const top = band.points.map(([x, , hi]) => `${n(toX(x))},${n(toY(hi))}`);
    const bottom = [...band.points].reverse().map(([x, lo]) => `${n(toX(x))},${n(toY(lo))}`);
    out.push(
      `<polygon points="${[...top, ...bottom].join(' ')}" fill="${color}" fill-opacity="0.25" stroke="${color}" stroke-opacity="0.6" stroke-width="0.8"/>`,
    );
  });
  lines.forEach((line, i) => {
    const color = line.color ?? paletteColor(i);
    const pts: string[] = [];
    let previous: readonly [number, number] | undefined;
    for (const p of line.points) {
      if (line.step === true && previous !== undefined) {
        pts.push(`${n(toX(p[0]))},${n(toY(previous[1]))}`);
      }
      pts.push(`${n(toX(p[0]))},${n(toY(p[1]))}`);
      previous = p;
    }
    out.push(
      `<polyline points="${pts.join(' ')}" fill="none" stroke="${color}" stroke-width="1.6"${line.dashed === true ? ' stroke-dasharray="5 3"' : ''} stroke-linejoin="round"/>`,
    );
  });
  out.push(...legend(f, items), '</svg>', '');
  return out.join('\n');
}

/**
 * Stacks several charts from {@link lineChart} / {@link horizontalBarChart} vertically
 * in one SVG document.
 * @internal
 */
export function stackCharts(charts: readonly string[]): string {
  let y = 0;
  let width = 0;
  const parts: string[] = [];
  for (const chart of charts) {
    const size = /<svg [^>]*width="(\d+)" height="(\d+)"/.exec(chart);
    const w = Number(size?.[1] ?? 0);
    const h = Number(size?.[2] ?? 0);
    parts.push(chart.trimEnd().replace(/^<svg /, `<svg y="${y}" `));
    y += h;
    width = Math.max(width, w);
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" viewBox="0 0 ${width} ${y}">`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}

/**
 * One bar of a {@link horizontalBarChart}.
 * @internal
 */
export interface HorizontalBar {
  readonly label: string;
  readonly value: number;
  /**
   * Text after the bar.
   *
   * @defaultValue the value, formatted as the axis ticks are
   */
  readonly valueLabel?: string;
  readonly color?: string;
}

/**
 * A horizontal bar chart: one labelled bar per row, for long labels such as
 * benchmark task names.
 * @internal
 */
export interface HorizontalBarChartSpec {
  readonly title: string;
  readonly subtitle?: string;
  readonly xLabel: string;
  readonly bars: readonly HorizontalBar[];
  readonly width?: number;
}

/**
 * Renders a horizontal bar chart (bars from 0) as an SVG document.
 * @internal
 */
export function horizontalBarChart(spec: HorizontalBarChartSpec): string {
  const width = spec.width ?? 860;
  const rowH = 26;
  const labelW = Math.min(
    width * 0.55,
    16 + Math.max(0, ...spec.bars.map((b) => textWidth(b.label))),
  );
  const left = labelW + 12;
  const right = 70;
  const top = spec.subtitle === undefined ? 40 : 56;
  const plotH = rowH * spec.bars.length;
  const height = top + plotH + 52;
  const plotW = width - left - right;
  const ticks = niceTicks(0, Math.max(0, ...spec.bars.map((b) => b.value)), 6);
  const max = ticks[ticks.length - 1] ?? 1;
  const toX = (v: number): number => left + (Math.max(0, v) / (max || 1)) * plotW;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif" font-size="12">`,
    `<title>${escapeXml(spec.title)}</title>`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="16" y="22" font-size="15" font-weight="600" fill="#111">${escapeXml(spec.title)}</text>`,
  ];
  if (spec.subtitle !== undefined) {
    out.push(`<text x="16" y="40" font-size="11" fill="#555">${escapeXml(spec.subtitle)}</text>`);
  }
  for (const t of ticks) {
    out.push(
      `<line x1="${n(toX(t))}" y1="${top}" x2="${n(toX(t))}" y2="${top + plotH}" stroke="#e5e5e5"/>`,
      `<text x="${n(toX(t))}" y="${top + plotH + 16}" text-anchor="middle" fill="#444">${escapeXml(formatTick(t))}</text>`,
    );
  }
  spec.bars.forEach((bar, i) => {
    const y = top + i * rowH;
    const color = bar.color ?? paletteColor(i);
    out.push(
      `<text x="${n(left - 8)}" y="${n(y + rowH / 2 + 4)}" text-anchor="end" fill="#222">${escapeXml(bar.label)}</text>`,
      `<rect x="${left}" y="${n(y + 4)}" width="${n(toX(bar.value) - left)}" height="${rowH - 8}" fill="${color}"><title>${escapeXml(`${bar.label}: ${bar.value}`)}</title></rect>`,
      `<text x="${n(toX(bar.value) + 6)}" y="${n(y + rowH / 2 + 4)}" fill="#222">${escapeXml(bar.valueLabel ?? formatTick(bar.value))}</text>`,
    );
  });
  out.push(
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${top + plotH}" stroke="#666"/>`,
    `<text x="${n(left + plotW / 2)}" y="${top + plotH + 36}" text-anchor="middle" fill="#222">${escapeXml(spec.xLabel)}</text>`,
    '</svg>',
    '',
  );
  return out.join('\n');
}

/**
 * One dot of a {@link dotPlot}.
 * @internal
 */
export interface DotPoint {
  /** Index into `categories`. */
  readonly category: number;
  /** Value on the y axis. */
  readonly y: number;
  /** Half-length of the error bar, if any. */
  readonly error?: number;
}

/**
 * A series of dots, drawn in its own lane within each category.
 * @internal
 */
export interface DotSeries {
  readonly name: string;
  readonly color: string;
  readonly points: readonly DotPoint[];
}

/**
 * A categorical dot plot, symmetric about a zero line.
 * @internal
 */
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

/** One decimal, as the dot plot has always been written. */
const f = (x: number): string => (Math.round(x * 10) / 10).toFixed(1);

/** A "nice" tick step for a range (1, 2 or 5 × 10ⁿ). */
function tickStep(range: number, target: number): number {
  const raw = range / target;
  const power = 10 ** Math.floor(Math.log10(raw));
  const n = raw / power;
  return (n < 1.5 ? 1 : n < 3.5 ? 2 : n < 7.5 ? 5 : 10) * power;
}

/**
 * Renders a dot plot with optional error bars, a zero line and a legend as an
 * SVG document: each category a band, each series a lane within it.
 * @internal
 */
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
