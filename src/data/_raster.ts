/**
 * Private drawing helpers for the procedural face renderer in `synthetic.ts`: analytic shapes
 * (ellipses, rounded boxes, parabolic half-planes) composited with antialiased soft edges into
 * planar RGB Float32 buffers. Everything is in pixel units.
 *
 * @module
 */

/** Shape kind: an ellipse with radii `rx`, `ry` (optionally tapered towards +y). */
export const ELLIPSE = 0;
/** Shape kind: a box with half extents `rx`, `ry` and corner radius `round`. */
export const BOX = 1;
/** Shape kind: the half-plane `y < bend * (x / rx)^2` in the shape's local frame. */
export const HALFPLANE = 2;

/** An analytic shape in pixel coordinates; build it with {@linkcode shape}. */
export interface Shape {
  /** {@linkcode ELLIPSE}, {@linkcode BOX} or {@linkcode HALFPLANE}. */
  readonly kind: number;
  /** Centre x, pixels. */
  readonly cx: number;
  /** Centre y, pixels. */
  readonly cy: number;
  /** Radius (ellipse) or half extent (box) along the local x axis, pixels. */
  readonly rx: number;
  /** Radius or half extent along the local y axis, pixels. */
  readonly ry: number;
  /** `1 / rx` (multiplication is much cheaper than division). */
  readonly irx: number;
  /** `1 / ry`. */
  readonly iry: number;
  /** Cosine of the rotation. */
  readonly cos: number;
  /** Sine of the rotation. */
  readonly sin: number;
  /** Parabolic bend of the local y axis, pixels at `x = rx`. */
  readonly bend: number;
  /** Ellipse narrowing below the centre, 0 to 1. */
  readonly taper: number;
  /** Half thickness of the outline band, or 0 for a filled shape. */
  readonly ring: number;
  /** Corner radius of boxes. */
  readonly round: number;
}

/** Parameters of {@linkcode shape}; lengths in pixels, `angle` in radians. */
export interface ShapeOptions {
  /** {@linkcode ELLIPSE} (default), {@linkcode BOX} or {@linkcode HALFPLANE}. */
  kind?: number;
  /** Centre x. */
  cx: number;
  /** Centre y. */
  cy: number;
  /** Radius or half extent along the local x axis. */
  rx: number;
  /** Radius or half extent along the local y axis. */
  ry: number;
  /** Rotation of the local frame (x right, y down), radians. */
  angle?: number;
  /** The local y axis is bent by `bend * (x / rx)^2` pixels (a parabola through the centre). */
  bend?: number;
  /** Ellipses only: the width shrinks by `taper * (y / ry)^2` below the centre (a chin). */
  taper?: number;
  /** When positive, only a band of this half thickness around the outline is inside. */
  ring?: number;
  /** Boxes only: corner radius. */
  round?: number;
}

/**
 * Builds a shape with every field set (one hidden class, so the inner loops stay monomorphic).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { shape, signedDistance } from "./_raster.ts";
 * const s = shape({ cx: 5, cy: 5, rx: 2, ry: 2 });
 * assert.ok(Math.abs(signedDistance(s, 8, 5) - 5 / 6) < 1e-9); // (3² - 2²) / (2 · 3)
 * ```
 */
export function shape(o: ShapeOptions): Shape {
  const angle = o.angle ?? 0;
  const rx = Math.max(o.rx, 1e-3);
  const ry = Math.max(o.ry, 1e-3);
  return {
    kind: o.kind ?? ELLIPSE,
    cx: o.cx,
    cy: o.cy,
    rx,
    ry,
    irx: 1 / rx,
    iry: 1 / ry,
    cos: Math.cos(angle),
    sin: Math.sin(angle),
    bend: +(o.bend ?? 0),
    taper: +(o.taper ?? 0),
    ring: +(o.ring ?? 0),
    round: Math.min(o.round ?? 0, rx, ry),
  };
}

/**
 * Approximate signed distance in pixels to the outline of `s` from a point given in the
 * shape's local frame (x along the shape's angle, y down): negative inside. Exact for boxes
 * and straight half-planes; for ellipses it is `(k^2 - 1) / |grad k^2|` with `k` the ellipse
 * radius of the point, first-order accurate at the outline (all the antialiasing needs: for a
 * circle of radius R it is `(r - R)(r + R) / 2r`), and minus infinity at the centre.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { localDistance, shape } from "./_raster.ts";
 * assert.ok(localDistance(shape({ cx: 0, cy: 0, rx: 3, ry: 1 }), 0, 0.5) < 0);
 * ```
 */
export function localDistance(s: Shape, x: number, y: number): number {
  if (s.bend !== 0) {
    const t = x * s.irx;
    y -= s.bend * t * t;
  }
  let d: number;
  if (s.kind === ELLIPSE) {
    let ix = s.irx;
    if (s.taper !== 0 && y > 0) {
      const t = y < s.ry ? y * s.iry : 1;
      ix /= 1 - s.taper * t * t;
    }
    const ex = x * ix;
    const ey = y * s.iry;
    const gx = ex * ix;
    const gy = ey * s.iry;
    d = (ex * ex + ey * ey - 1) / (2 * Math.sqrt(gx * gx + gy * gy));
  } else if (s.kind === BOX) {
    const r = s.round;
    const qx = (x < 0 ? -x : x) - s.rx + r;
    const qy = (y < 0 ? -y : y) - s.ry + r;
    if (qx > 0 && qy > 0) d = Math.sqrt(qx * qx + qy * qy) - r;
    else d = (qx > qy ? qx : qy) - r;
  } else {
    d = y;
  }
  if (s.ring > 0) d = (d < 0 ? -d : d) - s.ring;
  return d;
}

/**
 * {@linkcode localDistance} from a point in pixel coordinates.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { shape, signedDistance } from "./_raster.ts";
 * assert.ok(signedDistance(shape({ cx: 0, cy: 0, rx: 3, ry: 1 }), 0, 0.5) < 0);
 * ```
 */
export function signedDistance(s: Shape, px: number, py: number): number {
  const dx = px - s.cx;
  const dy = py - s.cy;
  return localDistance(s, dx * s.cos + dy * s.sin, dy * s.cos - dx * s.sin);
}

/** A planar RGB image of `size` x `size` pixels with values in 0..255 (may overshoot). */
export interface Canvas {
  /** Side in pixels. */
  readonly size: number;
  /** Red plane, then green, then blue; pixel (y, x) of plane c at `c * size^2 + y * size + x`. */
  readonly data: Float32Array;
  /** Width of the antialiasing ramp in pixels (1 is crisp, larger values blur edges). */
  aa: number;
}

/** How {@linkcode fill} colours a shape. */
export interface Paint {
  /** Red, 0..255. */
  r: number;
  /** Green, 0..255. */
  g: number;
  /** Blue, 0..255. */
  b: number;
  /** Multiplies the coverage; default 1. */
  opacity?: number;
  /** Coverage is multiplied by the coverage of this shape (or its complement with `clipOut`). */
  clip?: Shape;
  /** Use the outside of `clip` instead of its inside. */
  clipOut?: boolean;
  /** Strand texture amplitude: colour times `1 + amp * wave(freq * angle around the centre)`. */
  texAmp?: number;
  /** Strand texture: periods per half turn is `texFreq / 2`. */
  texFreq?: number;
  /** With strands: also modulate by `wave(texRadial * distance)` (curls). */
  texRadial?: number;
}

/**
 * Where a shape can have coverage: a region in its local frame (an ellipse or a rectangle with
 * half extents `hx`, `hy`, or everything), and optionally an inner region of full coverage.
 */
interface Envelope {
  /** 0: ellipse, 1: rectangle, 2: the whole canvas. */
  kind: number;
  hx: number;
  hy: number;
  /** Inner full-coverage region (of kind `innerKind`), or `ihx <= 0` when there is none. */
  ihx: number;
  ihy: number;
  innerKind: number;
  /** Half height of the region's bounding box in pixel coordinates. */
  reachY: number;
}

function envelope(s: Shape, aa: number): Envelope {
  if (s.kind === HALFPLANE) {
    return { kind: 2, hx: 0, hy: 0, ihx: 0, ihy: 0, innerKind: 0, reachY: Infinity };
  }
  // Coverage is zero once the (approximate) distance exceeds aa / 2; the margin is generous
  // because the ellipse distance underestimates slightly outside the outline.
  const m = aa + s.ring + 1;
  const hx = s.rx + m;
  const spread = s.rx + m;
  const bendReach = Math.abs(s.bend) * (spread * s.irx) * (spread * s.irx);
  const hy = s.ry + bendReach + m;
  const plain = s.bend === 0 && s.ring === 0;
  const c = Math.abs(s.cos);
  const n = Math.abs(s.sin);
  if (s.kind === BOX) {
    const inner = plain ? aa : 0;
    return {
      kind: 1,
      hx,
      hy,
      ihx: plain ? s.rx - inner - s.round : 0,
      ihy: plain ? s.ry - inner - s.round : 0,
      innerKind: 1,
      reachY: hx * n + hy * c,
    };
  }
  // Ellipse: the outer region is the bounding box (a thin ellipse widened by a margin is a
  // stadium, which the ellipse of radii + margin would cut); the inner one is an ellipse, as a
  // tapered ellipse contains the ellipse narrowed by the full taper.
  const inner = aa + 1;
  return {
    kind: 1,
    hx,
    hy,
    ihx: plain ? s.rx * (1 - Math.max(s.taper, 0)) - inner : 0,
    ihy: plain ? s.ry - inner : 0,
    innerKind: 0,
    reachY: hx * n + hy * c,
  };
}

/**
 * The interval of `dx = px - cx` where the point (cx + dx, cy + dy) lies in the region
 * (`kind`, `hx`, `hy`) of a shape rotated by (cos, sin); `lo > hi` when empty.
 */
function span(
  s: Shape,
  region: { kind: number; hx: number; hy: number; dy: number; out: { lo: number; hi: number } },
): void {
  const { hx, hy, dy, out } = region;
  if (hx <= 0 || hy <= 0) {
    out.lo = 1;
    out.hi = 0;
    return;
  }
  const c = s.cos;
  const n = s.sin;
  if (region.kind === 0) {
    // (X / hx)^2 + (Y / hy)^2 <= 1 with X = dx c + dy n, Y = dy c - dx n.
    const ax = c / hx;
    const bx = (dy * n) / hx;
    const ay = -n / hy;
    const by = (dy * c) / hy;
    const A = ax * ax + ay * ay;
    const B = 2 * (ax * bx + ay * by);
    const C = bx * bx + by * by - 1;
    const disc = B * B - 4 * A * C;
    if (disc < 0) {
      out.lo = 1;
      out.hi = 0;
      return;
    }
    const root = Math.sqrt(disc);
    out.lo = (-B - root) / (2 * A);
    out.hi = (-B + root) / (2 * A);
    return;
  }
  // |dx c + dy n| <= hx and |dy c - dx n| <= hy.
  let lo = -Infinity;
  let hi = Infinity;
  if (Math.abs(c) > 1e-12) {
    const u = (-hx - dy * n) / c;
    const v = (hx - dy * n) / c;
    lo = Math.max(lo, Math.min(u, v));
    hi = Math.min(hi, Math.max(u, v));
  } else if (Math.abs(dy * n) > hx) {
    hi = -Infinity;
  }
  if (Math.abs(n) > 1e-12) {
    const u = (dy * c - hy) / n;
    const v = (dy * c + hy) / n;
    lo = Math.max(lo, Math.min(u, v));
    hi = Math.min(hi, Math.max(u, v));
  } else if (Math.abs(dy * c) > hy) {
    hi = -Infinity;
  }
  out.lo = lo;
  out.hi = hi;
}

/**
 * Composites `shape` in a flat colour over the canvas, "over" blending with antialiased
 * coverage. Each row visits only the span where the shape (and a clip) can cover pixels, and
 * skips the distance computation where coverage is surely full.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fill, shape } from "./_raster.ts";
 * const c = { size: 8, data: new Float32Array(3 * 64), aa: 1 };
 * fill(c, shape({ cx: 4, cy: 4, rx: 2, ry: 2 }), { r: 255, g: 0, b: 0 });
 * assert.ok(c.data[4 * 8 + 4] === 255 && c.data[64 + 4 * 8 + 4] === 0);
 * ```
 */
export function fill(canvas: Canvas, s: Shape, paint: Paint): void {
  const size = canvas.size;
  const plane = size * size;
  const data = canvas.data;
  const aa = canvas.aa;
  const inv = 1 / aa;
  const env = envelope(s, aa);
  const clip = paint.clip;
  const clipOut = paint.clipOut === true;
  const clipEnv = clip !== undefined && !clipOut ? envelope(clip, aa) : undefined;
  let y0 = Math.max(0, Math.floor(s.cy - env.reachY));
  let y1 = Math.min(size - 1, Math.ceil(s.cy + env.reachY));
  if (clip !== undefined && clipEnv !== undefined && clipEnv.kind !== 2) {
    y0 = Math.max(y0, Math.floor(clip.cy - clipEnv.reachY));
    y1 = Math.min(y1, Math.ceil(clip.cy + clipEnv.reachY));
  }
  const opacity = paint.opacity ?? 1;
  const amp = paint.texAmp ?? 0;
  const freq = paint.texFreq ?? 0;
  const radial = paint.texRadial ?? 0;
  const { r, g, b } = paint;
  const { cos, sin } = s;
  const ccos = clip === undefined ? 0 : clip.cos;
  const csin = clip === undefined ? 0 : clip.sin;
  const outer = { lo: 0, hi: 0 };
  const inner = { lo: 0, hi: 0 };
  const other = { lo: 0, hi: 0 };
  for (let y = y0; y <= y1; y++) {
    const py = y + 0.5;
    const dy = py - s.cy;
    let x0 = 0;
    let x1 = size - 1;
    if (env.kind !== 2) {
      span(s, { kind: env.kind, hx: env.hx, hy: env.hy, dy, out: outer });
      x0 = Math.max(x0, Math.ceil(s.cx + outer.lo - 0.5));
      x1 = Math.min(x1, Math.floor(s.cx + outer.hi - 0.5));
    }
    if (clip !== undefined && clipEnv !== undefined && clipEnv.kind !== 2) {
      span(clip, {
        kind: clipEnv.kind,
        hx: clipEnv.hx,
        hy: clipEnv.hy,
        dy: py - clip.cy,
        out: other,
      });
      x0 = Math.max(x0, Math.ceil(clip.cx + other.lo - 0.5));
      x1 = Math.min(x1, Math.floor(clip.cx + other.hi - 0.5));
    }
    if (x0 > x1) continue;
    // Pixels [f0, f1] are fully covered by the shape (the clip may still cut them).
    span(s, { kind: env.innerKind, hx: env.ihx, hy: env.ihy, dy, out: inner });
    const f0 = Math.ceil(s.cx + inner.lo - 0.5);
    const f1 = Math.floor(s.cx + inner.hi - 0.5);
    const dx0 = x0 + 0.5 - s.cx;
    // Local coordinates advance by (cos, -sin) per pixel along the row.
    let lx = dx0 * cos + dy * sin;
    let ly = dy * cos - dx0 * sin;
    let mx = 0;
    let my = 0;
    if (clip !== undefined) {
      const cdy = py - clip.cy;
      const cdx = x0 + 0.5 - clip.cx;
      mx = cdx * ccos + cdy * csin;
      my = cdy * ccos - cdx * csin;
    }
    let i = y * size + x0;
    for (let x = x0; x <= x1; x++, i++, lx += cos, ly -= sin, mx += ccos, my -= csin) {
      let a = 1;
      if (x < f0 || x > f1) {
        a = 0.5 - localDistance(s, lx, ly) * inv;
        if (!(a > 0)) continue;
        if (a > 1) a = 1;
      }
      if (clip !== undefined) {
        let c = 0.5 - localDistance(clip, mx, my) * inv;
        c = c > 0 ? (c < 1 ? c : 1) : 0;
        a *= clipOut ? 1 - c : c;
        if (!(a > 0)) continue;
      }
      a *= opacity;
      let m = 1;
      if (amp !== 0) {
        // Strands radiating from the centre: a triangle wave of a pseudo-angle (no atan2).
        const ux = x + 0.5 - s.cx;
        const uy = py - s.cy;
        const au = (ux < 0 ? -ux : ux) + (uy < 0 ? -uy : uy) + 1e-6;
        let t = wave(freq * 0.25 * (uy < 0 ? ux / au : 2 + ux / au));
        if (radial !== 0) t *= wave(radial * Math.sqrt(ux * ux + uy * uy));
        m = 1 + amp * t;
      }
      data[i] += a * (r * m - data[i]);
      data[i + plane] += a * (g * m - data[i + plane]);
      data[i + 2 * plane] += a * (b * m - data[i + 2 * plane]);
    }
  }
}

/** Triangle wave with period 1 and range [-1, 1], a cheap stand-in for a sine. */
function wave(u: number): number {
  const f = u - Math.floor(u);
  return 4 * (f < 0.5 ? f : 1 - f) - 1;
}

/** Two-colour linear gradient options for {@linkcode gradient}. */
export interface GradientOptions {
  /** Colour at the start (RGB, 0..255). */
  from: readonly [number, number, number];
  /** Colour at the end. */
  to: readonly [number, number, number];
  /** Direction of the gradient, radians (0: left to right). */
  angle: number;
}

/**
 * Overwrites the whole canvas with a linear gradient (a background).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { gradient } from "./_raster.ts";
 * const c = { size: 2, data: new Float32Array(12), aa: 1 };
 * gradient(c, { from: [0, 0, 0], to: [100, 100, 100], angle: 0 });
 * assert.ok(c.data[0] < c.data[1]);
 * ```
 */
export function gradient(canvas: Canvas, o: GradientOptions): void {
  const size = canvas.size;
  const plane = size * size;
  const data = canvas.data;
  const ux = Math.cos(o.angle) / size;
  const uy = Math.sin(o.angle) / size;
  const [r0, g0, b0] = o.from;
  const dr = o.to[0] - r0;
  const dg = o.to[1] - g0;
  const db = o.to[2] - b0;
  const half = size / 2;
  for (let y = 0, i = 0; y < size; y++) {
    let t = 0.5 + (0.5 - half) * ux + (y + 0.5 - half) * uy;
    for (let x = 0; x < size; x++, i++, t += ux) {
      const c = t < 0 ? 0 : t > 1 ? 1 : t;
      data[i] = r0 + c * dr;
      data[i + plane] = g0 + c * dg;
      data[i + 2 * plane] = b0 + c * db;
    }
  }
}

/** Lambertian lighting of a head-sized ellipsoid, for {@linkcode shade}. */
export interface LightOptions {
  /** The head's outline in pixels (its normals are those of a sphere squashed to it). */
  head: Shape;
  /** Unit light direction towards the light: x component (right). */
  lx: number;
  /** Y component (down). */
  ly: number;
  /** Z component (towards the viewer). */
  lz: number;
  /** Diffuse strength; the frontal normal keeps brightness 1. */
  diffuse: number;
}

/**
 * Multiplies the canvas by `ambient + diffuse * max(0, n . l)` with `n` the normal of the head
 * ellipsoid (fading to a flat side-lit value away from the head), so faces look round and the
 * light direction is visible.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { shade, shape } from "./_raster.ts";
 * const c = { size: 4, data: new Float32Array(48).fill(100), aa: 1 };
 * const head = shape({ cx: 2, cy: 2, rx: 2, ry: 2 });
 * shade(c, { head, lx: 1, ly: 0, lz: 0, diffuse: 0.5 });
 * assert.ok(c.data[4 + 3] > c.data[4]);
 * ```
 */
export function shade(canvas: Canvas, o: LightOptions): void {
  const size = canvas.size;
  const plane = size * size;
  const data = canvas.data;
  const h = o.head;
  const lz = Math.max(o.lz, 0);
  const ambient = 1 - o.diffuse * lz;
  const far = ambient + o.diffuse * 0.5 * lz;
  // Per pixel, the local (unit-circle) coordinates advance by these steps along a row.
  const sx = h.cos * h.irx;
  const sy = -h.sin * h.iry;
  // The light in the head's local frame, so the normal needs no rotation back.
  const lx = o.lx * h.cos + o.ly * h.sin;
  const ly = o.ly * h.cos - o.lx * h.sin;
  const diffuse = o.diffuse;
  for (let y = 0, i = 0; y < size; y++) {
    const dy = y + 0.5 - h.cy;
    const dx = 0.5 - h.cx;
    let hx = (dx * h.cos + dy * h.sin) * h.irx;
    let hy = (dy * h.cos - dx * h.sin) * h.iry;
    for (let x = 0; x < size; x++, i++, hx += sx, hy += sy) {
      const r2 = hx * hx + hy * hy;
      let f: number;
      if (r2 < 1) {
        const dot = hx * lx + hy * ly + Math.sqrt(1 - r2) * lz;
        f = ambient + diffuse * (dot > 0 ? dot : 0);
      } else {
        // Outside the head: the rim value fading (as 1 / (1 + 4 (r - 1)^2)) to a flat one.
        const r = Math.sqrt(r2);
        const dot = (hx * lx + hy * ly) / r;
        const rim = ambient + diffuse * (dot > 0 ? dot : 0);
        const e = r - 1;
        f = far + (rim - far) / (1 + 4 * e * e);
      }
      data[i] *= f;
      data[i + plane] *= f;
      data[i + 2 * plane] *= f;
    }
  }
}
