/**
 * cosgrad's embedded default dataset: procedural faces generated in code, so training and
 * open-set verification run with no download.
 *
 * Every identity has its own face (head shape, eye spacing and size, nose, mouth, brows, skin
 * and hair tone, hair style, glasses, beard, ...); every image of it adds nuisance (yaw, pitch,
 * roll, scale, shift, lighting, expression, blur, noise, background, clothes, occluders) whose
 * strength `difficulty` sets. Everything derives from a counter-based hash of
 * (seed, identity, image, parameter number), so any image can be rendered alone, in any order,
 * on any machine, with identical bytes.
 *
 * Training and test identities are disjoint by construction: train on identities
 * `0 .. N-1` (`identityOffset: 0`) and evaluate on {@linkcode TEST_IDENTITY_OFFSET} and up,
 * which is what {@linkcode syntheticPairs} does.
 *
 * @module
 */

import { BOX, type Canvas, ELLIPSE, fill, gradient, HALFPLANE, shade, shape } from "./_raster.ts";
import type { Shape } from "./_raster.ts";

/** First identity used by {@linkcode syntheticPairs}: far from any training range. */
export const TEST_IDENTITY_OFFSET = 1_000_000;

// Stream markers: identity parameters use image index IDENTITY_STREAM, pairs use PAIR_STREAM.
const IDENTITY_STREAM = 0xffffffff;
const PAIR_STREAM = 0xfffffffe;
const MAX_IDENTITY = 0xfffffff0;

// ---------------------------------------------------------------------------------------------
// Counter-based randomness: murmur3 (x86, 32-bit) of the words (identity, image, k), seeded.

function mixWord(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A counter-based random stream: value k is a pure function of (seed, a, b, k). */
interface Rng {
  readonly seed: number;
  readonly a: number;
  readonly b: number;
  k: number;
}

function rng(seed: number, key: { a: number; b: number }): Rng {
  return { seed: seed >>> 0, a: key.a >>> 0, b: key.b >>> 0, k: 0 };
}

/** Next uniform value in [0, 1) (32 random bits). */
function uniform(r: Rng): number {
  let h = mixWord(r.seed, r.a);
  h = mixWord(h, r.b);
  h = mixWord(h, r.k++);
  return fmix32(h ^ 12) / 4294967296;
}

/** Uniform in [lo, hi). */
function range(r: Rng, lohi: readonly [number, number]): number {
  return lohi[0] + (lohi[1] - lohi[0]) * uniform(r);
}

/** Symmetric, centre-heavy value in (-1, 1): the mean of two uniforms, rescaled. */
function centred(r: Rng): number {
  return uniform(r) + uniform(r) - 1;
}

type Rgb = [number, number, number];

function lerp3(a: readonly number[], b: readonly number[], t: number): Rgb {
  return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
}

function scale3(c: readonly number[], f: number): Rgb {
  return [c[0] * f, c[1] * f, c[2] * f];
}

// ---------------------------------------------------------------------------------------------
// Identity: what stays fixed across all images of one person. Face units: head half height ~1,
// y down, origin at the head centre.

interface Identity {
  headA: number;
  headB: number;
  taper: number;
  skin: Rgb;
  hair: Rgb;
  iris: Rgb;
  lip: Rgb;
  eyeY: number;
  eyeSep: number;
  eyeW: number;
  eyeH: number;
  eyeTilt: number;
  browGap: number;
  browLen: number;
  browThick: number;
  browSlant: number;
  browBend: number;
  noseLen: number;
  noseW: number;
  noseDepth: number;
  mouthY: number;
  mouthW: number;
  lipThick: number;
  earY: number;
  earW: number;
  earH: number;
  hairStyle: number;
  hairline: number;
  hairVolume: number;
  hairTilt: number;
  hairStrands: number;
  beard: number;
  mustache: boolean;
  glasses: number;
  lensR: number;
  blush: number;
}

const SKIN: readonly Rgb[] = [
  [246, 214, 190],
  [228, 185, 150],
  [205, 150, 112],
  [170, 115, 80],
  [125, 82, 56],
  [88, 58, 42],
];

const HAIR: readonly Rgb[] = [
  [22, 18, 16],
  [48, 32, 22],
  [88, 58, 34],
  [135, 92, 52],
  [196, 160, 100],
  [150, 72, 38],
  [165, 162, 158],
];
const HAIR_WEIGHTS = [0.26, 0.24, 0.16, 0.12, 0.1, 0.06, 0.06];

const IRIS: readonly Rgb[] = [
  [58, 36, 24],
  [96, 64, 36],
  [70, 110, 150],
  [80, 115, 70],
  [120, 100, 60],
];

function palette(colours: readonly Rgb[], t: number): Rgb {
  const x = Math.min(Math.max(t, 0), 0.9999) * (colours.length - 1);
  const i = Math.floor(x);
  return lerp3(colours[i], colours[Math.min(i + 1, colours.length - 1)], x - i);
}

function weighted(r: Rng, weights: readonly number[]): number {
  let u = uniform(r);
  for (let i = 0; i < weights.length; i++) {
    u -= weights[i];
    if (u < 0) return i;
  }
  return weights.length - 1;
}

function jitter(r: Rng, c: Rgb, amount: number): Rgb {
  return [
    c[0] * (1 + amount * centred(r)),
    c[1] * (1 + amount * centred(r)),
    c[2] * (1 + amount * centred(r)),
  ];
}

function makeIdentity(seed: number, identity: number): Identity {
  const r = rng(seed, { a: identity, b: IDENTITY_STREAM });
  const headA = range(r, [0.74, 0.94]);
  const headB = range(r, [0.98, 1.2]);
  const skin = jitter(r, palette(SKIN, uniform(r)), 0.05);
  const hairIndex = weighted(r, HAIR_WEIGHTS);
  const hair = jitter(r, HAIR[hairIndex], 0.12);
  const eyeY = range(r, [-0.1, 0.08]);
  const eyeW = range(r, [0.12, 0.18]);
  const noseLen = range(r, [0.3, 0.46]);
  const mouthY = eyeY + noseLen + range(r, [0.2, 0.3]);
  const lipBase = lerp3(skin, [170, 70, 80], range(r, [0.25, 0.6]));
  const beardRoll = uniform(r);
  return {
    headA,
    headB,
    taper: range(r, [0.1, 0.42]),
    skin,
    hair,
    iris: jitter(r, IRIS[Math.floor(uniform(r) * IRIS.length)], 0.1),
    lip: lipBase,
    eyeY,
    eyeSep: headA * range(r, [0.36, 0.47]),
    eyeW,
    eyeH: eyeW * range(r, [0.38, 0.6]),
    eyeTilt: range(r, [-0.14, 0.14]),
    browGap: range(r, [0.13, 0.24]),
    browLen: eyeW * range(r, [1.05, 1.5]),
    browThick: range(r, [0.022, 0.055]),
    browSlant: range(r, [-0.25, 0.25]),
    browBend: range(r, [-0.06, 0.01]),
    noseLen,
    noseW: range(r, [0.085, 0.15]),
    noseDepth: range(r, [0.2, 0.4]),
    mouthY,
    mouthW: range(r, [0.19, 0.31]),
    lipThick: range(r, [0.04, 0.075]),
    earY: eyeY + range(r, [0.05, 0.16]),
    earW: range(r, [0.08, 0.12]),
    earH: range(r, [0.15, 0.23]),
    hairStyle: weighted(r, [0.32, 0.24, 0.12, 0.16, 0.16]),
    hairline: -headB * range(r, [0.5, 0.72]),
    hairVolume: range(r, [0.03, 0.2]),
    hairTilt: range(r, [-0.12, 0.12]),
    hairStrands: range(r, [18, 40]),
    beard: beardRoll < 0.72 ? 0 : beardRoll < 0.82 ? 1 : beardRoll < 0.93 ? 2 : 3,
    mustache: uniform(r) < 0.18,
    glasses: weighted(r, [0.76, 0.1, 0.09, 0.05]),
    lensR: range(r, [0.15, 0.21]),
    blush: range(r, [0, 0.22]),
  };
}

// ---------------------------------------------------------------------------------------------
// Nuisance: what changes from one image of a person to the next.

interface Nuisance {
  yaw: number;
  pitch: number;
  roll: number;
  scale: number;
  shiftX: number;
  shiftY: number;
  light: [number, number, number];
  diffuse: number;
  gain: Rgb;
  contrast: number;
  brightness: number;
  smile: number;
  open: number;
  raise: number;
  eyeOpen: number;
  gazeX: number;
  gazeY: number;
  blur: number;
  noise: number;
  bgFrom: Rgb;
  bgTo: Rgb;
  bgAngle: number;
  cloth: Rgb;
  occluder: number;
  occX: number;
  occY: number;
  occW: number;
  occH: number;
  occAngle: number;
  occColour: Rgb;
  noiseSeed: number;
}

const NEUTRAL_BG: Rgb = [150, 155, 162];

function randomColour(r: Rng): Rgb {
  return [range(r, [20, 240]), range(r, [20, 240]), range(r, [20, 240])];
}

function makeNuisance(seed: number, key: { a: number; b: number }, d: number): Nuisance {
  const r = rng(seed, key);
  const lightAz = d * Math.PI * centred(r) * 1.6;
  const lightEl = range(r, [0.35, 0.75]);
  const light: [number, number, number] = [
    Math.sin(lightAz) * Math.cos(lightEl),
    -Math.cos(lightAz) * Math.cos(lightEl),
    Math.sin(lightEl),
  ];
  const occ = uniform(r) < 0.45 * d ? (uniform(r) < 0.5 ? 1 : 2) : 0;
  const bgMix = 0.3 + 0.5 * d;
  return {
    yaw: d * 0.7 * centred(r),
    pitch: d * 0.35 * centred(r),
    roll: d * 0.4 * centred(r),
    scale: 1 + d * 0.18 * centred(r),
    shiftX: d * 0.08 * centred(r),
    shiftY: d * 0.08 * centred(r),
    light,
    diffuse: 0.3 + d * 0.6 * uniform(r),
    gain: [1 + 0.12 * d * centred(r), 1 + 0.12 * d * centred(r), 1 + 0.12 * d * centred(r)],
    contrast: 1 + 0.3 * d * centred(r),
    brightness: 30 * d * centred(r),
    smile: d * range(r, [-0.4, 1]),
    open: d * Math.max(0, range(r, [-0.6, 1])),
    raise: d * range(r, [-0.5, 1]),
    eyeOpen: 1 - d * 0.75 * uniform(r) ** 3,
    gazeX: d * centred(r),
    gazeY: d * 0.5 * centred(r),
    blur: d * 2.2 * uniform(r) ** 2,
    noise: d * 12 * uniform(r),
    bgFrom: lerp3(NEUTRAL_BG, randomColour(r), bgMix),
    bgTo: lerp3(NEUTRAL_BG, randomColour(r), bgMix),
    bgAngle: uniform(r) * 2 * Math.PI,
    cloth: lerp3([70, 80, 100], randomColour(r), bgMix),
    occluder: occ,
    occX: range(r, [0.1, 0.9]),
    occY: range(r, [0.15, 0.95]),
    occW: range(r, [0.15, 0.4]),
    occH: range(r, [0.06, 0.3]),
    occAngle: uniform(r) * Math.PI,
    occColour: randomColour(r),
    noiseSeed: (uniform(r) * 4294967296) | 1,
  };
}

// ---------------------------------------------------------------------------------------------
// Pose: face units -> pixels. Points on the face sit on an ellipsoid (half width A, half height
// B, depth C); yaw and pitch rotate it before an orthographic projection, then roll, scale and
// shift place it in the image.

interface Pose {
  a: number;
  b: number;
  c: number;
  cosYaw: number;
  sinYaw: number;
  cosPitch: number;
  sinPitch: number;
  cosRoll: number;
  sinRoll: number;
  roll: number;
  k: number;
  ox: number;
  oy: number;
}

interface Projected {
  px: number;
  py: number;
  /** Foreshortening of small features along face x and y. */
  fx: number;
  fy: number;
}

interface Point {
  x: number;
  y: number;
  /** Height above the ellipsoid surface (nose tip), face units. */
  dz?: number;
  /** Absolute depth instead of the surface (ears, the back of the hair). */
  z?: number;
}

function project(pose: Pose, p: Point): Projected {
  const { x, y } = p;
  let z: number;
  let fx = 1;
  let fy = 1;
  if (p.z !== undefined) {
    z = p.z;
  } else {
    const q = 1 - (x / pose.a) ** 2 - (y / pose.b) ** 2;
    const zs = pose.c * Math.sqrt(Math.max(q, 0.02));
    z = zs + (p.dz ?? 0);
    // Surface normal, then how much more or less of it faces the camera after the rotation.
    const nx = x / (pose.a * pose.a);
    const ny = y / (pose.b * pose.b);
    const nz = zs / (pose.c * pose.c);
    const nz1 = nz * pose.cosYaw - nx * pose.sinYaw;
    const nz2 = nz1 * pose.cosPitch + ny * pose.sinPitch;
    fx = Math.min(Math.max(nz1 / nz, 0.25), 1.6);
    fy = Math.min(Math.max(nz2 / Math.max(nz1, 1e-3), 0.25), 1.6);
  }
  const x1 = x * pose.cosYaw + z * pose.sinYaw;
  const z1 = z * pose.cosYaw - x * pose.sinYaw;
  const y2 = y * pose.cosPitch - z1 * pose.sinPitch;
  return {
    px: pose.ox + pose.k * (pose.cosRoll * x1 - pose.sinRoll * y2),
    py: pose.oy + pose.k * (pose.sinRoll * x1 + pose.cosRoll * y2),
    fx,
    fy,
  };
}

interface Place extends Point {
  rx: number;
  ry: number;
  kind?: number;
  angle?: number;
  bend?: number;
  taper?: number;
  ring?: number;
  round?: number;
  /** Scale rx, ry by the local foreshortening (default true). */
  foreshorten?: boolean;
}

/** A shape given in face units at a point of the face, in pixels. */
function place(pose: Pose, o: Place): Shape {
  const p = project(pose, o);
  const f = o.foreshorten ?? true;
  const k = pose.k;
  return shape({
    kind: o.kind ?? ELLIPSE,
    cx: p.px,
    cy: p.py,
    rx: o.rx * k * (f ? p.fx : 1),
    ry: o.ry * k * (f ? p.fy : 1),
    angle: (o.angle ?? 0) + pose.roll,
    bend: (o.bend ?? 0) * k,
    taper: o.taper ?? 0,
    ring: (o.ring ?? 0) * k,
    round: (o.round ?? 0) * k,
  });
}

/** A box from point p to point q (face units, after projection), half thickness t. */
function segment(pose: Pose, ends: { p: Point; q: Point; t: number }): Shape {
  const a = project(pose, ends.p);
  const b = project(pose, ends.q);
  const t = ends.t * pose.k;
  const len = Math.hypot(b.px - a.px, b.py - a.py);
  return shape({
    kind: BOX,
    cx: (a.px + b.px) / 2,
    cy: (a.py + b.py) / 2,
    rx: len / 2 + t,
    ry: t,
    angle: Math.atan2(b.py - a.py, b.px - a.px),
    round: t,
  });
}

function paint(
  c: readonly number[],
  opacity = 1,
): { r: number; g: number; b: number; opacity: number } {
  return { r: c[0], g: c[1], b: c[2], opacity };
}

// ---------------------------------------------------------------------------------------------
// The renderer.

const VIEW = 2.8; // face units across the image at scale 1
const CENTRE_Y = 0.12; // face y at the image centre

function render(canvas: Canvas, face: { id: Identity; n: Nuisance }): void {
  const { id, n } = face;
  const size = canvas.size;
  const k = (size / VIEW) * n.scale;
  const pose: Pose = {
    a: id.headA,
    b: id.headB,
    c: id.headA * 1.1,
    cosYaw: Math.cos(n.yaw),
    sinYaw: Math.sin(n.yaw),
    cosPitch: Math.cos(n.pitch),
    sinPitch: Math.sin(n.pitch),
    cosRoll: Math.cos(n.roll),
    sinRoll: Math.sin(n.roll),
    roll: n.roll,
    k,
    ox: size / 2 + n.shiftX * size,
    oy: size / 2 + n.shiftY * size,
  };
  // Put face y = CENTRE_Y at the image centre (before roll).
  pose.ox -= -pose.sinRoll * CENTRE_Y * k;
  pose.oy -= pose.cosRoll * CENTRE_Y * k;
  canvas.aa = 1 + n.blur * size / 112;

  const A = id.headA;
  const B = id.headB;
  const skin = id.skin;
  const hair = id.hair;
  const strands = {
    texAmp: id.hairStyle === 4 ? 0.06 : 0.08,
    texFreq: id.hairStrands,
    texRadial: id.hairStyle === 4 ? 9 / k : 0, // curls: 9 per face unit
  };

  gradient(canvas, { from: n.bgFrom, to: n.bgTo, angle: n.bgAngle });

  // Hair behind the head: long (1) and voluminous (4) styles.
  if (id.hairStyle === 1) {
    fill(
      canvas,
      place(pose, {
        kind: BOX,
        x: 0,
        y: 0.25,
        z: -0.4,
        rx: A * (1.12 + id.hairVolume),
        ry: B * 1.25,
        round: A,
      }),
      { ...paint(scale3(hair, 0.85)), ...strands },
    );
  } else if (id.hairStyle === 4) {
    fill(
      canvas,
      place(pose, { x: 0, y: -0.25, z: -0.4, rx: A * (1.25 + id.hairVolume), ry: B * 1.05 }),
      { ...paint(scale3(hair, 0.9)), ...strands },
    );
  }

  // Neck and clothes.
  fill(
    canvas,
    place(pose, { kind: BOX, x: 0, y: B + 0.2, z: -0.3, rx: A * 0.48, ry: 0.6, round: 0.1 }),
    paint(scale3(skin, 0.78)),
  );
  fill(
    canvas,
    place(pose, { x: 0, y: B + 1.05, z: -0.3, rx: A * 2.1, ry: 0.72 }),
    paint(n.cloth),
  );

  // Ears, behind the silhouette.
  for (const s of [-1, 1]) {
    const ear = { x: s * A * 0.96, y: id.earY, z: -0.12, rx: id.earW, ry: id.earH };
    fill(canvas, place(pose, ear), paint(scale3(skin, 0.92)));
    fill(
      canvas,
      place(pose, {
        ...ear,
        x: s * (A * 0.96 + id.earW * 0.2),
        rx: id.earW * 0.5,
        ry: id.earH * 0.6,
      }),
      paint(scale3(skin, 0.7), 0.5),
    );
  }

  // Face: the head silhouette seen from the rotated view.
  const silA = Math.hypot(A * pose.cosYaw, pose.c * pose.sinYaw);
  const silB = Math.hypot(B * pose.cosPitch, pose.c * pose.sinPitch);
  const head = place(pose, { x: 0, y: 0, z: 0, rx: silA, ry: silB, taper: id.taper });
  fill(canvas, head, paint(skin));

  // Cheeks.
  for (const s of [-1, 1]) {
    fill(
      canvas,
      place(pose, { x: s * id.eyeSep * 1.05, y: id.eyeY + id.noseLen * 0.8, rx: 0.17, ry: 0.11 }),
      { ...paint([215, 110, 110], id.blush), clip: head },
    );
  }

  // Nose: shadow on the side away from the light, soft base, nostrils, highlight.
  const shadowSide = n.light[0] >= 0 ? -1 : 1;
  const tipY = id.eyeY + id.noseLen;
  fill(
    canvas,
    segment(pose, {
      p: { x: shadowSide * id.noseW * 0.45, y: id.eyeY + 0.05, dz: 0.05 },
      q: { x: shadowSide * id.noseW * 0.6, y: tipY - 0.05, dz: id.noseDepth * 0.8 },
      t: id.noseW * 0.22,
    }),
    paint(scale3(skin, 0.72), 0.22 + 0.35 * n.diffuse),
  );
  fill(
    canvas,
    place(pose, { x: 0, y: tipY, dz: id.noseDepth, rx: id.noseW, ry: id.noseW * 0.55 }),
    paint(scale3(skin, 0.8), 0.45),
  );
  for (const s of [-1, 1]) {
    fill(
      canvas,
      place(pose, {
        x: s * id.noseW * 0.45,
        y: tipY + id.noseW * 0.28,
        dz: id.noseDepth * 0.7,
        rx: id.noseW * 0.26,
        ry: id.noseW * 0.15,
        angle: s * 0.3,
      }),
      paint(scale3(skin, 0.35), 0.75),
    );
  }
  fill(
    canvas,
    place(pose, {
      x: -shadowSide * id.noseW * 0.15,
      y: tipY - id.noseW * 0.1,
      dz: id.noseDepth,
      rx: id.noseW * 0.35,
      ry: id.noseW * 0.25,
    }),
    paint(scale3(skin, 1.12), 0.35),
  );

  // Beard and moustache (under the lips).
  const beardColour = scale3(hair, 0.95);
  if (id.beard === 1 || id.beard === 2) {
    const top = place(pose, {
      kind: HALFPLANE,
      x: 0,
      y: tipY + 0.1,
      rx: A,
      ry: 1,
      bend: -(tipY + 0.1 - id.earY) * 1.1,
      foreshorten: false,
    });
    fill(canvas, head, {
      ...paint(beardColour, id.beard === 1 ? 0.45 : 0.92),
      clip: top,
      clipOut: true,
      texAmp: 0.1,
      texFreq: id.hairStrands * 2,
    });
  } else if (id.beard === 3) {
    fill(
      canvas,
      place(pose, { x: 0, y: id.mouthY + 0.2, rx: id.mouthW * 0.85, ry: 0.26 }),
      { ...paint(beardColour, 0.9), clip: head },
    );
  }
  if (id.mustache || id.beard === 2) {
    fill(
      canvas,
      place(pose, {
        x: 0,
        y: (tipY + id.mouthY) / 2 + 0.03,
        rx: id.mouthW * 1.1,
        ry: 0.05,
        bend: 0.05,
      }),
      paint(beardColour, 0.95),
    );
  }

  // Mouth: lips bent by the smile, an opening with teeth.
  const bend = -n.smile * id.mouthW * 0.35;
  const opening = n.open * 0.12;
  const mouth = { x: 0, y: id.mouthY + opening * 0.4, rx: id.mouthW, bend };
  fill(
    canvas,
    place(pose, { ...mouth, ry: id.lipThick + opening * 0.6 }),
    paint(id.lip),
  );
  if (opening > 0.01) {
    const inner = place(pose, { ...mouth, rx: id.mouthW * 0.82, ry: opening * 0.5 });
    fill(canvas, inner, paint([70, 22, 28]));
    fill(
      canvas,
      place(pose, {
        ...mouth,
        y: mouth.y - opening * 0.5,
        rx: id.mouthW * 0.7,
        ry: opening * 0.25,
      }),
      { ...paint([236, 232, 220]), clip: inner },
    );
  } else {
    fill(
      canvas,
      place(pose, { ...mouth, ry: 0.008 }),
      paint(scale3(id.lip, 0.45), 0.9),
    );
  }

  // Eyes: lash line, white, iris, pupil, glint; then brows.
  for (const s of [-1, 1]) {
    const eye = {
      x: s * id.eyeSep,
      y: id.eyeY,
      rx: id.eyeW,
      ry: id.eyeH * n.eyeOpen,
      angle: -s * id.eyeTilt,
    };
    fill(
      canvas,
      place(pose, {
        ...eye,
        y: eye.y - eye.ry * 0.18,
        rx: eye.rx * 1.1,
        ry: eye.ry * 1.1 + 0.012,
      }),
      paint([45, 32, 30], 0.9),
    );
    const white = place(pose, eye);
    fill(canvas, white, paint([236, 232, 228]));
    const iris = {
      x: eye.x + n.gazeX * id.eyeW * 0.35,
      y: eye.y + n.gazeY * id.eyeH * 0.3,
      rx: id.eyeH * 0.95,
      ry: id.eyeH * 0.95,
    };
    fill(canvas, place(pose, iris), { ...paint(id.iris), clip: white });
    fill(
      canvas,
      place(pose, { ...iris, rx: iris.rx * 0.45, ry: iris.ry * 0.45 }),
      { ...paint([12, 10, 10]), clip: white },
    );
    fill(
      canvas,
      place(pose, {
        ...iris,
        x: iris.x + iris.rx * 0.3,
        y: iris.y - iris.ry * 0.3,
        rx: iris.rx * 0.18,
        ry: iris.ry * 0.18,
      }),
      { ...paint([255, 255, 255], 0.8), clip: white },
    );
    // Eyelid crease.
    fill(
      canvas,
      place(pose, {
        ...eye,
        y: eye.y - id.eyeH * 1.05,
        ry: 0.006,
        rx: eye.rx * 0.85,
        bend: -0.025,
      }),
      paint(scale3(skin, 0.6), 0.45),
    );
    fill(
      canvas,
      place(pose, {
        kind: BOX,
        x: s * (id.eyeSep + 0.02),
        y: id.eyeY - id.browGap - n.raise * 0.07,
        rx: id.browLen,
        ry: id.browThick,
        round: id.browThick,
        angle: s * id.browSlant,
        bend: id.browBend,
      }),
      paint(scale3(hair, 0.75), 0.92),
    );
  }

  // Hair on top of the head (every style but bald, which keeps a fringe at the sides).
  const cap = place(pose, {
    x: 0,
    y: -0.1,
    z: 0,
    rx: silA * (1.04 + id.hairVolume * 0.5),
    ry: silB * (1.0 + id.hairVolume),
  });
  const lineY = id.hairStyle === 3 ? id.eyeY - id.browGap - 0.1 : id.hairline;
  const lineBend = id.hairStyle === 3 ? 0.15 : id.hairStyle === 2 ? 1.2 : 0.45;
  const line = place(pose, {
    kind: HALFPLANE,
    x: 0,
    y: id.hairStyle === 2 ? -B * 1.05 : lineY,
    rx: A,
    ry: 1,
    angle: id.hairTilt,
    bend: lineBend,
    foreshorten: false,
  });
  fill(canvas, cap, { ...paint(hair), clip: line, ...strands });

  // Glasses.
  if (id.glasses > 0) {
    const frame: Rgb = id.glasses === 1 ? [95, 92, 90] : [22, 20, 20];
    const t = id.glasses === 1 ? 0.011 : 0.024;
    const lenses: Shape[] = [];
    for (const s of [-1, 1]) {
      const lens = { x: s * id.eyeSep, y: id.eyeY + 0.01, rx: id.lensR, ry: id.lensR * 0.78 };
      if (id.glasses === 3) fill(canvas, place(pose, lens), paint([20, 24, 30], 0.85));
      lenses.push(place(pose, { ...lens, ring: t }));
      fill(
        canvas,
        segment(pose, {
          p: { x: s * (id.eyeSep + id.lensR), y: id.eyeY - 0.02 },
          q: { x: s * A * 0.98, y: id.earY - 0.05, z: 0 },
          t: t * 0.8,
        }),
        paint(frame),
      );
    }
    for (const l of lenses) fill(canvas, l, paint(frame));
    fill(
      canvas,
      segment(pose, {
        p: { x: -id.eyeSep + id.lensR, y: id.eyeY - 0.03 },
        q: { x: id.eyeSep - id.lensR, y: id.eyeY - 0.03 },
        t: t * 0.8,
      }),
      paint(frame),
    );
  }

  shade(canvas, {
    head: place(pose, { x: 0, y: 0, z: 0, rx: silA, ry: silB }),
    lx: n.light[0],
    ly: n.light[1],
    lz: n.light[2],
    diffuse: n.diffuse,
  });

  // Occluder in front of everything: a box (hand, sticker) or a long bar (microphone, scarf).
  if (n.occluder !== 0) {
    const bar = n.occluder === 2;
    fill(
      canvas,
      shape({
        kind: BOX,
        cx: n.occX * size,
        cy: n.occY * size,
        rx: (bar ? 0.9 : n.occW) * size,
        ry: (bar ? n.occH * 0.4 : n.occH + 0.05) * size,
        angle: n.occAngle,
        round: 0.02 * size,
      }),
      paint(n.occColour),
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Public API.

/** Options of {@linkcode syntheticFaces}. */
export interface SyntheticFacesOptions {
  /** Any integer; images are a pure function of (seed, identity, image). Default 0. */
  seed?: number;
  /** Number of identities (classes). */
  identities: number;
  /** Images per identity. */
  imagesPerIdentity: number;
  /** Square image side in pixels, 16 to 1024. Default 112. */
  size?: number;
  /** Nuisance strength in [0, 1]: 0 renders every image of a person alike. Default 0.5. */
  difficulty?: number;
  /**
   * Identity `i` of this set is global identity `identityOffset + i`: sets with disjoint
   * ranges share no person. Default 0; test sets use {@linkcode TEST_IDENTITY_OFFSET}.
   */
  identityOffset?: number;
}

/** Options of {@linkcode SyntheticFaces.image}. */
export interface ImageOptions {
  /** Written in place and returned; length `3 * size * size`. */
  out?: Float32Array;
  /** Mirror horizontally (augmentation, or the test-time mirror feature). */
  flip?: boolean;
}

/** Options of {@linkcode SyntheticFaces.batch}. */
export interface BatchOptions {
  /** Written in place and returned; length `n * 3 * size * size`. */
  out?: Float32Array;
  /** Mirror every image (`true`) or those whose entry is non-zero. */
  flip?: boolean | Uint8Array;
}

/** A procedural face dataset; see {@linkcode syntheticFaces}. */
export interface SyntheticFaces {
  /** The seed, as an unsigned 32-bit integer. */
  readonly seed: number;
  /** Number of identities (classes); labels are `0 .. identities-1`. */
  readonly identities: number;
  /** Images per identity. */
  readonly imagesPerIdentity: number;
  /** `identities * imagesPerIdentity`. */
  readonly count: number;
  /** Image side in pixels. */
  readonly size: number;
  /** Nuisance strength in [0, 1]. */
  readonly difficulty: number;
  /** Global id of local identity 0. */
  readonly identityOffset: number;
  /**
   * Renders image `index` of identity `identity` (0-based, local to this set) as CHW float32,
   * pixels mapped `(p - 127.5) / 128` from 0..255.
   */
  image(identity: number, index: number, options?: ImageOptions): Float32Array;
  /** Renders images `(ids[i], idx[i])` into one `[n, 3, size, size]` array. */
  batch(ids: Int32Array, idx: Int32Array, options?: BatchOptions): Float32Array;
  /** Renders one image as 8-bit RGBA (`size * size * 4` bytes), for saving a picture. */
  rgba(identity: number, index: number, options?: { flip?: boolean }): Uint8Array;
}

function checkInt(name: string, value: unknown, lohi: readonly [number, number]): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < lohi[0] || value > lohi[1]) {
    throw new RangeError(
      `Invalid ${name} ${String(value)}: expected an integer in [${lohi[0]}, ${lohi[1]}]`,
    );
  }
  return value;
}

/**
 * Creates a deterministic procedural face dataset: `identities` people with
 * `imagesPerIdentity` images each, rendered on demand (nothing is stored). A 64 px image takes
 * well under a millisecond, a 112 px one about a millisecond, on one CPU core.
 *
 * Labels for training are the local identity indices `0 .. identities-1`.
 *
 * @param options Seed, counts, image size, difficulty and identity offset.
 * @returns The dataset: `image`, `batch`, `rgba` and the counts.
 * @throws {RangeError} When a count, the size, the difficulty or the offset is out of range.
 *
 * @example Render one 32 px face and a batch of two
 * ```ts
 * import assert from "node:assert/strict";
 * import { syntheticFaces } from "./synthetic.ts";
 * const faces = syntheticFaces({ seed: 1, identities: 10, imagesPerIdentity: 4, size: 32 });
 * const x = faces.image(3, 0);
 * assert.equal(x.length, 3 * 32 * 32);
 * assert.deepEqual(x, syntheticFaces({ seed: 1, identities: 10, imagesPerIdentity: 4, size: 32 }).image(3, 0));
 * const b = faces.batch(new Int32Array([3, 7]), new Int32Array([0, 2]));
 * assert.deepEqual(b.subarray(0, x.length), x);
 * ```
 */
export function syntheticFaces(options: SyntheticFacesOptions): SyntheticFaces {
  const seed = checkInt("seed", options.seed ?? 0, [-(2 ** 31), 2 ** 32 - 1]) >>> 0;
  const identities = checkInt("identities", options.identities, [1, MAX_IDENTITY]);
  const imagesPerIdentity = checkInt("imagesPerIdentity", options.imagesPerIdentity, [1, 2 ** 30]);
  const size = checkInt("size", options.size ?? 112, [16, 1024]);
  const identityOffset = checkInt("identityOffset", options.identityOffset ?? 0, [
    0,
    MAX_IDENTITY - identities,
  ]);
  const difficulty = options.difficulty ?? 0.5;
  if (typeof difficulty !== "number" || !(difficulty >= 0 && difficulty <= 1)) {
    throw new RangeError(`Invalid difficulty ${String(difficulty)}: expected a number in [0, 1]`);
  }
  const plane = size * size;
  const canvas: Canvas = { size, data: new Float32Array(3 * plane), aa: 1 };

  function draw(identity: number, index: number): Nuisance {
    checkInt("identity", identity, [0, identities - 1]);
    checkInt("image index", index, [0, imagesPerIdentity - 1]);
    const global = identityOffset + identity;
    const id = makeIdentity(seed, global);
    const n = makeNuisance(seed, { a: global, b: index }, difficulty);
    render(canvas, { id, n });
    return n;
  }

  // Colour jitter, noise, clamping and (optional) mirroring, from the canvas into `out`.
  function finish(n: Nuisance, o: { out: Float32Array; at: number; flip: boolean }): void {
    const src = canvas.data;
    const { out, at, flip } = o;
    let state = n.noiseSeed;
    const sigma = n.noise * Math.sqrt(6); // triangular noise has standard deviation 1 / sqrt(6)
    for (let c = 0; c < 3; c++) {
      const gain = n.gain[c] * n.contrast;
      const bias = 128 - 128 * n.contrast + n.brightness;
      const base = c * plane;
      for (let y = 0; y < size; y++) {
        const row = base + y * size;
        for (let x = 0; x < size; x++) {
          // xorshift32; the sum of its two 16-bit halves is triangular noise on [-1, 1].
          state ^= state << 13;
          state ^= state >>> 17;
          state ^= state << 5;
          const e = ((state & 0xffff) + (state >>> 16)) * (1 / 65536) - 1;
          let v = src[row + x] * gain + bias + sigma * e;
          v = v < 0 ? 0 : v > 255 ? 255 : v;
          // Mirroring moves finished pixels, noise included: a flip is an exact mirror.
          out[at + row + (flip ? size - 1 - x : x)] = (v - 127.5) / 128;
        }
      }
    }
  }

  function image(identity: number, index: number, opts: ImageOptions = {}): Float32Array {
    const out = opts.out ?? new Float32Array(3 * plane);
    if (out.length !== 3 * plane) {
      throw new RangeError(`Invalid out length ${out.length}: expected ${3 * plane}`);
    }
    const n = draw(identity, index);
    finish(n, { out, at: 0, flip: opts.flip === true });
    return out;
  }

  function batch(ids: Int32Array, idx: Int32Array, opts: BatchOptions = {}): Float32Array {
    if (ids.length !== idx.length) {
      throw new RangeError(
        `Invalid batch: ${ids.length} identities but ${idx.length} image indices`,
      );
    }
    const count = ids.length;
    const out = opts.out ?? new Float32Array(count * 3 * plane);
    if (out.length !== count * 3 * plane) {
      throw new RangeError(`Invalid out length ${out.length}: expected ${count * 3 * plane}`);
    }
    const flip = opts.flip ?? false;
    if (flip instanceof Uint8Array && flip.length !== count) {
      throw new RangeError(`Invalid flip length ${flip.length}: expected ${count}`);
    }
    for (let i = 0; i < count; i++) {
      const n = draw(ids[i], idx[i]);
      const f = typeof flip === "boolean" ? flip : flip[i] !== 0;
      finish(n, { out, at: i * 3 * plane, flip: f });
    }
    return out;
  }

  function rgba(identity: number, index: number, opts: { flip?: boolean } = {}): Uint8Array {
    return toRgba8(image(identity, index, { flip: opts.flip }));
  }

  return {
    seed,
    identities,
    imagesPerIdentity,
    count: identities * imagesPerIdentity,
    size,
    difficulty,
    identityOffset,
    image,
    batch,
    rgba,
  };
}

/**
 * Converts one normalised CHW image (`(p - 127.5) / 128`, square) back to 8-bit RGBA bytes,
 * row-major, alpha 255: ready for `encode` from fast-png with `channels: 4`.
 *
 * @param chw `3 * size * size` values.
 * @returns `size * size * 4` bytes.
 * @throws {RangeError} When the length is not three times a square.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { toRgba8 } from "./synthetic.ts";
 * const chw = new Float32Array([-127.5 / 128, 0.5 / 128, 127.5 / 128]); // one pixel
 * assert.deepEqual(toRgba8(chw), new Uint8Array([0, 128, 255, 255]));
 * ```
 */
export function toRgba8(chw: Float32Array): Uint8Array {
  const plane = chw.length / 3;
  const size = Math.round(Math.sqrt(plane));
  if (!Number.isInteger(plane) || size * size !== plane || plane === 0) {
    throw new RangeError(
      `Invalid image length ${chw.length}: expected 3 * size * size values (CHW, square)`,
    );
  }
  const out = new Uint8Array(plane * 4);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) {
      const v = Math.round(chw[c * plane + i] * 128 + 127.5);
      out[i * 4 + c] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
    out[i * 4 + 3] = 255;
  }
  return out;
}

/** One image of the pair protocol: a local identity of `faces` and an image index. */
export interface FaceRef {
  /** Local identity of the pair's `faces` dataset. */
  identity: number;
  /** Image index, `0 .. imagesPerIdentity-1`. */
  index: number;
}

/** A verification pair; `fold` in `0 .. folds-1`. */
export interface FacePair {
  /** First image. */
  a: FaceRef;
  /** Second image. */
  b: FaceRef;
  /** True when both images show the same identity. */
  same: boolean;
  /** 0-based fold. */
  fold: number;
}

/** Options of {@linkcode syntheticPairs}. */
export interface SyntheticPairsOptions {
  /** Default 0. */
  seed?: number;
  /** Default 10 (LFW view 2). */
  folds?: number;
  /** Same-identity pairs per fold, and as many different-identity pairs. Default 300. */
  pairsPerFold?: number;
  /** Identities in each fold (disjoint across folds). Default 100. */
  identitiesPerFold?: number;
  /** Default 8. */
  imagesPerIdentity?: number;
  /** Default 112. */
  size?: number;
  /** Default 0.5. */
  difficulty?: number;
  /** Global id of the first test identity. Default {@linkcode TEST_IDENTITY_OFFSET}. */
  identityOffset?: number;
}

/** The LFW-style protocol over unseen identities; see {@linkcode syntheticPairs}. */
export interface SyntheticPairs {
  /** The test identities: fold f owns local identities `f * identitiesPerFold ..`. */
  readonly faces: SyntheticFaces;
  /**
   * `folds * 2 * pairsPerFold` pairs, fold by fold (so contiguous equal folds, as in LFW's
   * `pairs.txt`), same-identity pairs first within a fold.
   */
  readonly pairs: FacePair[];
  /** Number of folds. */
  readonly folds: number;
  /** Same-identity pairs per fold, and as many different-identity pairs. */
  readonly pairsPerFold: number;
  /** Identities owned by each fold. */
  readonly identitiesPerFold: number;
}

/**
 * Builds an LFW view-2 style verification protocol over test identities never used in
 * training: `folds` folds, each with `pairsPerFold` same-identity and `pairsPerFold`
 * different-identity pairs, drawn without repeats, with disjoint identities across folds.
 * Pair members refer to `faces`, the matching test dataset (render with `faces.image`).
 *
 * @param options Seed, fold layout and the test dataset's image options.
 * @returns The test dataset and the pairs.
 * @throws {RangeError} When a count is out of range or a fold cannot hold that many distinct
 *   pairs.
 *
 * @example Two small folds
 * ```ts
 * import assert from "node:assert/strict";
 * import { syntheticPairs } from "./synthetic.ts";
 * const { faces, pairs } = syntheticPairs({ folds: 2, pairsPerFold: 5, identitiesPerFold: 4, size: 32 });
 * assert.equal(pairs.length, 20);
 * assert.equal(faces.identities, 8);
 * const p = pairs[0];
 * assert.ok(p.same && p.a.identity === p.b.identity && p.a.index !== p.b.index);
 * faces.image(p.a.identity, p.a.index);
 * ```
 */
export function syntheticPairs(options: SyntheticPairsOptions = {}): SyntheticPairs {
  const folds = checkInt("folds", options.folds ?? 10, [1, 1000]);
  const perFold = checkInt("pairsPerFold", options.pairsPerFold ?? 300, [1, 1_000_000]);
  const ipf = checkInt("identitiesPerFold", options.identitiesPerFold ?? 100, [2, 10_000_000]);
  const m = checkInt("imagesPerIdentity", options.imagesPerIdentity ?? 8, [2, 2 ** 30]);
  const sameCapacity = ipf * (m * (m - 1)) / 2;
  const diffCapacity = (ipf * (ipf - 1)) / 2 * m * m;
  if (sameCapacity < perFold * 1.25 || diffCapacity < perFold * 1.25) {
    throw new RangeError(
      `Invalid pairsPerFold ${perFold}: a fold of ${ipf} identities with ${m} images each ` +
        `holds only ${sameCapacity} distinct same-identity pairs (need 25% headroom)`,
    );
  }
  const faces = syntheticFaces({
    seed: options.seed,
    identities: folds * ipf,
    imagesPerIdentity: m,
    size: options.size,
    difficulty: options.difficulty,
    identityOffset: options.identityOffset ?? TEST_IDENTITY_OFFSET,
  });
  const pairs: FacePair[] = [];
  for (let fold = 0; fold < folds; fold++) {
    const r = rng(faces.seed, { a: faces.identityOffset + fold, b: PAIR_STREAM });
    const first = fold * ipf;
    const seen = new Set<string>();
    // Same pairs: identities in a shuffled round robin, two distinct images each.
    const order = Array.from({ length: ipf }, (_, i) => i);
    for (let i = ipf - 1; i > 0; i--) {
      const j = Math.floor(uniform(r) * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    let turn = 0;
    while (pairs.length < (2 * fold + 1) * perFold) {
      const identity = first + order[turn++ % ipf];
      const i = Math.floor(uniform(r) * m);
      const j = Math.floor(uniform(r) * (m - 1));
      const jj = j >= i ? j + 1 : j;
      const key = `${identity}:${Math.min(i, jj)}:${Math.max(i, jj)}`;
      if (seen.has(key)) continue;
      seen.add(key);
      pairs.push({ a: { identity, index: i }, b: { identity, index: jj }, same: true, fold });
    }
    while (pairs.length < (2 * fold + 2) * perFold) {
      const p = first + Math.floor(uniform(r) * ipf);
      const q0 = first + Math.floor(uniform(r) * (ipf - 1));
      const q = q0 >= p ? q0 + 1 : q0;
      const i = Math.floor(uniform(r) * m);
      const j = Math.floor(uniform(r) * m);
      const key = p < q ? `${p}:${i}|${q}:${j}` : `${q}:${j}|${p}:${i}`;
      if (seen.has(key)) continue;
      seen.add(key);
      pairs.push({ a: { identity: p, index: i }, b: { identity: q, index: j }, same: false, fold });
    }
  }
  return { faces, pairs, folds, pairsPerFold: perFold, identitiesPerFold: ipf };
}
