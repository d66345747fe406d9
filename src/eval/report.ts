/**
 * Dependency-free SVG pictures for reports: line charts (loss curves, ROC with a log FAR axis)
 * and 2-D scatter plots of embeddings with class directions (the toy margin experiment).
 * Output is a standalone `<svg>` string; write it to a `.svg` file or inline it in HTML.
 * @module
 */

/** One line of a {@linkcode lineChartSvg}. */
export interface LineSeries {
  /** Legend entry. */
  name: string;
  /** X coordinates. */
  x: ArrayLike<number>;
  /** Y coordinates, as many as `x`. */
  y: ArrayLike<number>;
}

/** Options of {@linkcode lineChartSvg}. */
export interface LineChartOptions {
  /** The lines to draw, colored in order. */
  series: LineSeries[];
  /** Title above the plot. */
  title?: string;
  /** X axis label. */
  xLabel?: string;
  /** Y axis label. */
  yLabel?: string;
  /** Logarithmic x axis (points with x <= 0 are left out). */
  logX?: boolean;
  /** Logarithmic y axis (points with y <= 0 are left out). */
  logY?: boolean;
  /** Fixed x range instead of one fitted to the data (lines are clipped to it). */
  xRange?: [number, number];
  /** Fixed y range instead of one fitted to the data (lines are clipped to it). */
  yRange?: [number, number];
  /** Picture width in pixels; default 640. */
  width?: number;
  /** Picture height in pixels; default 400. */
  height?: number;
}

/** Options of {@linkcode scatterSvg}. */
export interface ScatterOptions {
  /** Row-major `[n, 2]` point coordinates. */
  points: ArrayLike<number>;
  /** Class of each point, integers >= 0 (colors the point). */
  labels: ArrayLike<number>;
  /** Row-major `[C, 2]` class directions (e.g. class weights), drawn as rays from the origin. */
  rays?: ArrayLike<number>;
  /** Draw the unit circle. */
  unitCircle?: boolean;
  /** Legend names by class; default "class 0", "class 1", ... */
  classNames?: string[];
  /** Title above the plot. */
  title?: string;
  /** Picture width in pixels (the plot is square); default 560. */
  width?: number;
}

const PALETTE = [
  "#4e79a7",
  "#f28e2b",
  "#e15759",
  "#76b7b2",
  "#59a14f",
  "#edc948",
  "#b07aa1",
  "#ff9da7",
  "#9c755f",
  "#bab0ac",
];

const FONT = "system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif";

/**
 * Draws lines on linear or logarithmic axes with ticks, grid, labels and a legend.
 * Points with a non-finite coordinate (or a non-positive one on a log axis) are left out,
 * which leaves a visible gap in their line.
 *
 * @example
 * ```ts
 * import { lineChartSvg } from "./report.ts";
 * const svg = lineChartSvg({
 *   series: [{ name: "train loss", x: [0, 1, 2, 3], y: [4.2, 2.1, 1.3, 0.9] }],
 *   xLabel: "epoch",
 *   yLabel: "loss",
 * });
 * if (!svg.startsWith("<svg") || !svg.includes("train loss")) throw new Error("bad svg");
 * ```
 */
export function lineChartSvg(options: LineChartOptions): string {
  const width = options.width ?? 640;
  const height = options.height ?? 400;
  checkSize(width, height);
  const logX = options.logX ?? false;
  const logY = options.logY ?? false;
  const ok = (x: number, y: number) =>
    Number.isFinite(x) && Number.isFinite(y) && (!logX || x > 0) && (!logY || y > 0);
  const xs: number[] = [];
  const ys: number[] = [];
  for (const s of options.series) {
    if (s.x.length !== s.y.length) {
      throw new RangeError(
        `Invalid series "${s.name}": ${s.x.length} x values but ${s.y.length} y values`,
      );
    }
    for (let i = 0; i < s.x.length; i++) {
      if (ok(s.x[i], s.y[i])) {
        xs.push(s.x[i]);
        ys.push(s.y[i]);
      }
    }
  }
  const xAxis = axis(options.xRange ?? extent(xs), logX, "x");
  const yAxis = axis(options.yRange ?? extent(ys), logY, "y");

  const names = options.series.map((s) => clipText(s.name, 28));
  const legendWidth = names.length ? 36 + 7.4 * Math.max(...names.map((n) => n.length)) : 0;
  const left = options.yLabel ? 76 : 60;
  const top = options.title ? 40 : 16;
  const right = 16 + legendWidth;
  const bottom = options.xLabel ? 54 : 36;
  const pw = width - left - right;
  const ph = height - top - bottom;
  if (pw < 40 || ph < 40) {
    throw new RangeError(`Invalid size ${width}x${height}: too small for the axes and legend`);
  }
  const px = (v: number) => xAxis.frac(v) * pw;
  const py = (v: number) => (1 - yAxis.frac(v)) * ph;

  const out: string[] = [];
  out.push(open(width, height));
  if (options.title) {
    out.push(text(left + pw / 2, 24, options.title, 'font-size="15" font-weight="600"'));
  }
  out.push(`<g transform="translate(${left},${top})">`);
  out.push(gridAndTicks(xAxis, yAxis, pw, ph, px, py));
  // A nested <svg> clips the lines to the plot area without needing an element id.
  out.push(`<svg x="0" y="0" width="${pw}" height="${ph}" overflow="hidden">`);
  options.series.forEach((s, i) => {
    const color = classColor(i);
    const segments: string[] = [];
    const dots: string[] = [];
    let seg: [number, number][] = [];
    const flush = () => {
      if (seg.length === 1) dots.push(circle(seg[0][0], seg[0][1], 2.5, `fill="${color}"`));
      else if (seg.length > 1) {
        segments.push("M" + seg.map(([a, b]) => `${r2(a)} ${r2(b)}`).join("L"));
      }
      seg = [];
    };
    for (let k = 0; k < s.x.length; k++) {
      if (!ok(s.x[k], s.y[k])) {
        flush();
        continue;
      }
      const p: [number, number] = [px(s.x[k]), py(s.y[k])];
      const last = seg[seg.length - 1];
      const nextOk = k + 1 < s.x.length && ok(s.x[k + 1], s.y[k + 1]);
      // Drop points within half a pixel of the previous one (ROC curves have millions).
      if (last && nextOk && Math.abs(p[0] - last[0]) < 0.5 && Math.abs(p[1] - last[1]) < 0.5) {
        continue;
      }
      seg.push(p);
    }
    flush();
    if (segments.length) {
      out.push(
        `<path d="${segments.join("")}" fill="none" stroke="${color}" stroke-width="2" ` +
          `stroke-linejoin="round" stroke-linecap="round"/>`,
      );
    }
    out.push(...dots);
  });
  out.push("</svg>");
  out.push(frame(pw, ph));
  if (options.xLabel) out.push(text(pw / 2, ph + 42, options.xLabel, 'font-size="13"'));
  if (options.yLabel) {
    out.push(
      `<text transform="translate(${-left + 16},${r2(ph / 2)}) rotate(-90)" text-anchor="middle" ` +
        `font-size="13">${escapeXml(options.yLabel)}</text>`,
    );
  }
  out.push(
    legend(names.map((n, i) => ({ name: n, color: classColor(i), line: true })), pw + 14, 4),
  );
  out.push("</g></svg>");
  return out.join("\n");
}

/**
 * Scatter plot of 2-D points colored by class on equal axes, with an optional unit circle
 * and class directions drawn as rays from the origin across the whole plot (each ray ends
 * with a dot where it crosses the unit circle).
 *
 * @example
 * ```ts
 * import { scatterSvg } from "./report.ts";
 * const svg = scatterSvg({
 *   points: [0.9, 0.1, -0.2, 1.1, 1.0, -0.1],
 *   labels: [0, 1, 0],
 *   rays: [1, 0, 0, 1],
 *   unitCircle: true,
 *   classNames: ["alice", "bob"],
 * });
 * if (!svg.includes("alice") || svg.includes("NaN")) throw new Error("bad svg");
 * ```
 */
export function scatterSvg(options: ScatterOptions): string {
  const { points, labels } = options;
  if (points.length !== 2 * labels.length) {
    throw new RangeError(
      `Invalid points length ${points.length}: expected 2 x ${labels.length} labels = ${
        2 * labels.length
      }`,
    );
  }
  for (let i = 0; i < points.length; i++) {
    if (!Number.isFinite(points[i])) {
      throw new RangeError(`Non-finite coordinate ${points[i]} of point ${i >> 1}`);
    }
  }
  let classes = 0;
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i];
    if (!Number.isInteger(l) || l < 0) {
      throw new RangeError(`Invalid label ${l} of point ${i}: expected an integer >= 0`);
    }
    classes = Math.max(classes, l + 1);
  }
  const rays = options.rays ?? [];
  if (rays.length % 2 !== 0) {
    throw new RangeError(`Invalid rays length ${rays.length}: expected [C, 2] coordinates`);
  }
  for (let i = 0; i < rays.length; i++) {
    if (!Number.isFinite(rays[i])) {
      throw new RangeError(`Non-finite coordinate ${rays[i]} of ray ${i >> 1}`);
    }
  }
  classes = Math.max(classes, rays.length / 2);
  const width = options.width ?? 560;
  let reach = options.unitCircle ? 1 : 0;
  for (let i = 0; i < points.length; i++) reach = Math.max(reach, Math.abs(points[i]));
  if (reach === 0) reach = 1;
  // Symmetric around the origin: floor(-r / step) = -ceil(r / step).
  const ax = axis([-reach * 1.05, reach * 1.05], false, "x");
  const half = ax.hi;

  const names = Array.from(
    { length: classes },
    (_, c) => clipText(options.classNames?.[c] ?? `class ${c}`, 24),
  );
  const showLegend = classes > 0 && classes <= 24;
  const legendWidth = showLegend ? 36 + 7.4 * Math.max(...names.map((n) => n.length)) : 0;
  const left = 56;
  const top = options.title ? 40 : 16;
  const side = width - left - 16 - legendWidth;
  const height = top + side + 36;
  checkSize(width, height);
  if (side < 60) throw new RangeError(`Invalid width ${width}: too small for the plot and legend`);
  const p = (v: number) => ax.frac(v) * side;
  const q = (v: number) => (1 - ax.frac(v)) * side;

  const out: string[] = [];
  out.push(open(width, height));
  if (options.title) {
    out.push(text(left + side / 2, 24, options.title, 'font-size="15" font-weight="600"'));
  }
  out.push(`<g transform="translate(${left},${top})">`);
  out.push(gridAndTicks(ax, ax, side, side, p, q));
  out.push(`<svg x="0" y="0" width="${side}" height="${side}" overflow="hidden">`);
  out.push(
    `<line x1="${r2(p(0))}" y1="0" x2="${
      r2(p(0))
    }" y2="${side}" stroke="#999" stroke-width="0.8"/>`,
  );
  out.push(
    `<line x1="0" y1="${r2(q(0))}" x2="${side}" y2="${
      r2(q(0))
    }" stroke="#999" stroke-width="0.8"/>`,
  );
  if (options.unitCircle) {
    out.push(
      circle(
        p(0),
        q(0),
        p(1) - p(0),
        'fill="none" stroke="#555" stroke-width="1.2" stroke-dasharray="5 4"',
      ),
    );
  }
  for (let i = 0; i < labels.length; i++) {
    out.push(
      circle(
        p(points[2 * i]),
        q(points[2 * i + 1]),
        2.6,
        `fill="${classColor(labels[i])}" fill-opacity="0.75"`,
      ),
    );
  }
  for (let c = 0; c < rays.length / 2; c++) {
    const wx = rays[2 * c];
    const wy = rays[2 * c + 1];
    const norm = Math.hypot(wx, wy);
    if (norm === 0) continue;
    const ux = wx / norm;
    const uy = wy / norm;
    const far = 2 * half; // beyond the plot edge; the nested <svg> clips it
    const line = `x1="${r2(p(0))}" y1="${r2(q(0))}" x2="${r2(p(ux * far))}" y2="${
      r2(q(uy * far))
    }"`;
    out.push(`<line ${line} stroke="white" stroke-width="4.5"/>`);
    out.push(`<line ${line} stroke="${classColor(c)}" stroke-width="2.2"/>`);
    out.push(circle(p(ux), q(uy), 4, `fill="${classColor(c)}" stroke="white" stroke-width="1.5"`));
  }
  out.push("</svg>");
  out.push(frame(side, side));
  if (showLegend) {
    out.push(
      legend(names.map((n, c) => ({ name: n, color: classColor(c), line: false })), side + 14, 4),
    );
  }
  out.push("</g></svg>");
  return out.join("\n");
}

interface Axis {
  lo: number;
  hi: number;
  log: boolean;
  /** Position of a value in [0, 1] along the axis. */
  frac: (v: number) => number;
  ticks: { value: number; label: string; major: boolean }[];
  name: "x" | "y";
}

function extent(values: number[]): [number, number] {
  if (values.length === 0) return [NaN, NaN];
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

function axis(range: [number, number], log: boolean, name: "x" | "y"): Axis {
  let [lo, hi] = range;
  if (Number.isNaN(lo) || Number.isNaN(hi)) [lo, hi] = log ? [1, 10] : [0, 1];
  if (!Number.isFinite(lo) || !Number.isFinite(hi) || lo > hi) {
    throw new RangeError(`Invalid ${name} range [${lo}, ${hi}]: expected finite lo <= hi`);
  }
  if (log) {
    if (lo <= 0) throw new RangeError(`Invalid ${name} range [${lo}, ${hi}] for a log axis`);
    const a = Math.floor(Math.log10(lo) + 1e-9);
    let b = Math.ceil(Math.log10(hi) - 1e-9);
    if (b <= a) b = a + 1;
    const decades = b - a;
    const every = Math.ceil(decades / 8);
    const ticks: Axis["ticks"] = [];
    for (let e = a; e <= b; e++) {
      const major = (e - a) % every === 0;
      ticks.push({ value: 10 ** e, label: major ? `1e${e}` : "", major });
      if (e < b && decades <= 6) {
        for (let m = 2; m <= 9; m++) ticks.push({ value: m * 10 ** e, label: "", major: false });
      }
    }
    return {
      lo: 10 ** a,
      hi: 10 ** b,
      log,
      frac: (v) => (Math.log10(v) - a) / (b - a),
      ticks,
      name,
    };
  }
  if (lo === hi) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.5;
    lo -= pad;
    hi += pad;
  }
  const step = niceStep((hi - lo) / 6);
  const a = Math.floor(lo / step + 1e-9);
  const b = Math.ceil(hi / step - 1e-9);
  const ticks: Axis["ticks"] = [];
  for (let k = a; k <= b; k++) {
    ticks.push({ value: k * step, label: formatTick(k * step, step), major: true });
  }
  const L = a * step;
  const H = b * step;
  return { lo: L, hi: H, log, frac: (v) => (v - L) / (H - L), ticks, name };
}

/** The 1-2-5 multiple of a power of ten nearest above `raw`. */
function niceStep(raw: number): number {
  const p = 10 ** Math.floor(Math.log10(raw));
  const m = raw / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

function formatTick(v: number, step: number): string {
  if (Math.abs(v) < step * 1e-6) return "0";
  const a = Math.abs(v);
  if (a >= 1e6 || step < 1e-4) {
    const digits = Math.max(0, Math.min(6, Math.round(Math.log10(a) - Math.log10(step))));
    return v.toExponential(digits).replace("e+", "e");
  }
  return v.toFixed(Math.max(0, Math.ceil(-Math.log10(step) - 1e-9)));
}

function gridAndTicks(
  xa: Axis,
  ya: Axis,
  pw: number,
  ph: number,
  px: (v: number) => number,
  py: (v: number) => number,
): string {
  const out: string[] = [];
  for (const t of xa.ticks) {
    const x = r2(px(t.value));
    const color = t.major ? "#e3e3e3" : "#f1f1f1";
    out.push(`<line x1="${x}" y1="0" x2="${x}" y2="${ph}" stroke="${color}"/>`);
    out.push(`<line x1="${x}" y1="${ph}" x2="${x}" y2="${ph + (t.major ? 5 : 3)}" stroke="#333"/>`);
    if (t.label) out.push(tickLabel(Number(x), ph + 18, t.label, xa.log, "middle"));
  }
  for (const t of ya.ticks) {
    const y = r2(py(t.value));
    const color = t.major ? "#e3e3e3" : "#f1f1f1";
    out.push(`<line x1="0" y1="${y}" x2="${pw}" y2="${y}" stroke="${color}"/>`);
    out.push(`<line x1="${t.major ? -5 : -3}" y1="${y}" x2="0" y2="${y}" stroke="#333"/>`);
    if (t.label) out.push(tickLabel(-8, Number(y) + 4, t.label, ya.log, "end"));
  }
  return out.join("\n");
}

/** A tick label; on log axes "1e-3" is set as 10 with a superscript -3. */
function tickLabel(x: number, y: number, label: string, log: boolean, anchor: string): string {
  if (!log) {
    return `<text x="${r2(x)}" y="${r2(y)}" text-anchor="${anchor}" fill="#333">${
      escapeXml(label)
    }</text>`;
  }
  const e = label.slice(2);
  return `<text x="${r2(x)}" y="${r2(y)}" text-anchor="${anchor}" fill="#333">10` +
    `<tspan dy="-6" font-size="9">${escapeXml(e)}</tspan></text>`;
}

function legend(
  entries: { name: string; color: string; line: boolean }[],
  x: number,
  y: number,
): string {
  const out: string[] = [`<g transform="translate(${r2(x)},${r2(y)})">`];
  entries.forEach((e, i) => {
    const cy = 10 + 18 * i;
    out.push(
      e.line
        ? `<line x1="0" y1="${cy}" x2="22" y2="${cy}" stroke="${e.color}" stroke-width="2.5"/>`
        : circle(11, cy, 4.5, `fill="${e.color}"`),
    );
    out.push(`<text x="28" y="${cy + 4}" fill="#222">${escapeXml(e.name)}</text>`);
  });
  out.push("</g>");
  return out.join("\n");
}

function open(width: number, height: number): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" font-family="${FONT}" font-size="12">\n` +
    `<rect width="${width}" height="${height}" fill="white"/>`;
}

function frame(w: number, h: number): string {
  return `<rect x="0" y="0" width="${w}" height="${h}" fill="none" stroke="#333" stroke-width="1"/>`;
}

function text(x: number, y: number, s: string, attrs: string): string {
  return `<text x="${r2(x)}" y="${r2(y)}" text-anchor="middle" ${attrs}>${escapeXml(s)}</text>`;
}

function circle(cx: number, cy: number, r: number, attrs: string): string {
  return `<circle cx="${r2(cx)}" cy="${r2(cy)}" r="${r2(r)}" ${attrs}/>`;
}

function classColor(c: number): string {
  if (c < PALETTE.length) return PALETTE[c];
  return `hsl(${r2((c * 137.508) % 360)},62%,48%)`;
}

function checkSize(width: number, height: number): void {
  if (!(width > 0 && height > 0 && Number.isFinite(width) && Number.isFinite(height))) {
    throw new RangeError(`Invalid size ${width}x${height}: expected positive finite pixels`);
  }
}

function clipText(s: string, max: number): string {
  return s.length <= max ? s : s.slice(0, max - 1) + "\u2026";
}

function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function r2(v: number): number {
  return Math.round(v * 100) / 100;
}
