/// <reference lib="dom" />
/**
 * The margin explorer page: trains the toy experiment (`toy.ts`) live on the page's WebGPU
 * adapter (or, with a visible note, on the wasm backend where WebGPU is missing, or on the CPU
 * interpreter), and draws the normalized features,
 * the class weight directions and the angular gaps as they change.
 *
 * URL parameters drive it without clicks (the browser test uses them): `steps` (default 600),
 * `loss` (softmax | nsl | cosface | arcface), `m`, `s`, `lr`, `seed`, `readEvery` (steps between
 * reads, default 10), `backend=wasm` or `backend=cpu` (skip WebGPU), `autostart=1`. Progress is published as
 * `window.__toy` (see {@link ToyStatus}).
 *
 * @module
 */
import * as cg from "../../src/web.ts";
import {
  angularGaps,
  type GapReport,
  initToyState,
  LOSS_KINDS,
  type LossKind,
  makeToyData,
  makeToyStep,
  maxMargin2d,
  type ToyData,
  toyFeatures,
  type ToyHyper,
  type ToyParams,
  type ToyState,
} from "./toy.ts";

/** What the page publishes as `window.__toy`. */
export interface ToyStatus {
  /** Steps trained so far. */
  steps: number;
  /** The step count the current run stops at. */
  target: number;
  /** The loss of every step, in order. */
  losses: number[];
  /** The latest measured gaps, in degrees. */
  gaps: {
    min: number;
    mean: number;
    meanWidth: number;
    pairs: { from: number; to: number; gap: number }[];
  } | null;
  /** The WebGPU adapter the page found (description), or null. */
  adapter: string | null;
  /** Whether that adapter is a software fallback (SwiftShader, llvmpipe). */
  fallbackAdapter: boolean | null;
  /** The backend training runs on. */
  backend: string;
  /** Why training is not on WebGPU, when it is not. */
  note: string | null;
  /** Threads of the wasm backend (1 where the page is not cross-origin isolated), or null. */
  threads: number | null;
  /** The settings of the current run. */
  config: { loss: LossKind; m: number; s: number; lr: number; seed: number; readEvery: number };
  /** Mean wall time of a step over the last read interval, in milliseconds. */
  msPerStep: number;
  /** Whether training is running now. */
  running: boolean;
  /** Set when the run reached its step count. */
  done: boolean;
  /** The message of an error that stopped training. */
  error: string | null;
}

declare global {
  interface Window {
    __toy: ToyStatus;
  }
}

const COLORS = [
  "#1f77b4",
  "#ff7f0e",
  "#2ca02c",
  "#d62728",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#17becf",
];
const DEG = 180 / Math.PI;

const query = new URLSearchParams(location.search);

function numberParam(name: string, fallback: number): number {
  const raw = query.get(name);
  if (raw === null || raw === "") return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v)) {
    throw new RangeError(`URL parameter ${name}=${raw} is not a number`);
  }
  return v;
}

function lossParam(): LossKind {
  const raw = query.get("loss") ?? "cosface";
  if (!(LOSS_KINDS as readonly string[]).includes(raw)) {
    throw new RangeError(`URL parameter loss=${raw}: expected one of ${LOSS_KINDS.join(", ")}`);
  }
  return raw as LossKind;
}

function el<T extends HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (e === null) throw new TypeError(`The page has no element #${id}`);
  return e as T;
}

const status: ToyStatus = {
  steps: 0,
  target: 0,
  losses: [],
  gaps: null,
  adapter: null,
  fallbackAdapter: null,
  backend: "cpu",
  note: null,
  threads: null,
  config: { loss: "cosface", m: 0.2, s: 16, lr: 0.01, seed: 1, readEvery: 10 },
  msPerStep: NaN,
  running: false,
  done: false,
  error: null,
};
globalThis.window.__toy = status;

/**
 * Without WebGPU: the wasm backend (WebAssembly SIMD; on all cores where the page is
 * cross-origin isolated, else one), or the CPU interpreter if even that fails; says why.
 */
async function fallBack(why: string): Promise<void> {
  const note = el<HTMLParagraphElement>("backend");
  note.classList.add("fallback");
  if (query.get("backend") !== "cpu") {
    try {
      await cg.setBackend("wasm");
      const threads = (cg.getBackend() as unknown as { threads: number }).threads;
      status.backend = "wasm";
      status.note = why;
      status.threads = threads;
      note.textContent = `Training on WebAssembly (wasm backend, ${threads} thread${
        threads === 1 ? "" : "s"
      }${
        threads === 1 && !globalThis.crossOriginIsolated
          ? ": the page is not cross-origin isolated"
          : ""
      }): ${why}`;
      return;
    } catch (e) {
      why = `${why}; the wasm backend did not start either: ${(e as Error).message}`;
    }
  }
  await cg.setBackend("cpu");
  status.backend = "cpu";
  status.note = why;
  note.textContent = `Training on the CPU interpreter: ${why}`;
}

/** Finds the page's adapter and starts cosgrad's webgpu backend on it, or falls back to wasm. */
async function startBackend(): Promise<void> {
  const note = el<HTMLParagraphElement>("backend");
  const fallback = fallBack;
  const asked = query.get("backend");
  if (asked === "cpu" || asked === "wasm") return fallback(`the URL asked for backend=${asked}`);
  const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
  if (gpu === undefined) {
    return fallback(
      "this browser exposes no WebGPU (navigator.gpu is missing; it needs a secure context " +
        "such as http://localhost, and a browser with WebGPU enabled)",
    );
  }
  const adapter = await gpu.requestAdapter();
  if (adapter === null) return fallback("navigator.gpu.requestAdapter() found no adapter");
  const info = adapter.info;
  const parts = [info.vendor, info.architecture, info.device, info.description].filter((s) => s);
  const isFallback = (info as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter ??
    false;
  status.adapter = parts.length > 0 ? parts.join(" · ") : "(adapter without a description)";
  status.fallbackAdapter = isFallback;
  try {
    await cg.setBackend("webgpu");
  } catch (e) {
    return fallback(
      `adapter ${status.adapter} found, but cosgrad's webgpu backend did not start: ${
        (e as Error).message
      }`,
    );
  }
  status.backend = "webgpu";
  note.textContent = `Training on WebGPU: ${status.adapter}${
    isFallback ? " (software fallback adapter)" : ""
  }`;
}

// ---- Training state -------------------------------------------------------------------------

const seed = Math.trunc(numberParam("seed", 1));
const readEvery = Math.max(1, Math.trunc(numberParam("readEvery", 10)));
// Made once the backend is chosen, so the data lives on it.
let data: ToyData;
const classes = 8;
let n = 0;
// One compiled step per loss and constants (the losses take s and m as numbers).
const steps = new Map<string, ReturnType<typeof makeToyStep>>();
const readout = cg.compile((lossLog: cg.Tensor, p: ToyParams, x: cg.Tensor) =>
  cg.concat([
    lossLog,
    cg.reshape(toyFeatures(p, x), [2 * x.shape[0]]),
    cg.reshape(p.classW, [p.classW.size]),
  ])
);
let state: ToyState;
let hyper: ToyHyper;
let features: Float32Array | null = null;
let weights: Float32Array | null = null;

function resetModel(): void {
  state = initToyState({ seed, classes }, readEvery);
  status.steps = 0;
  status.losses = [];
  status.gaps = null;
  status.done = false;
  status.msPerStep = NaN;
  features = null;
  weights = null;
}

/** Makes the data, the hyperparameters and the initial state on the current backend. */
function startModel(): void {
  data = makeToyData({ seed, classes });
  n = data.labels.length;
  steps.clear();
  setHyper();
  resetModel();
}

function setHyper(): void {
  hyper = { lr: cg.tensor(status.config.lr) };
}

function currentStep() {
  const c = status.config;
  const key = `${c.loss}|${c.s}|${c.m}`;
  let step = steps.get(key);
  if (step === undefined) {
    step = makeToyStep({ kind: c.loss, s: c.s, m: c.m });
    steps.set(key, step);
  }
  return step;
}

function nextFrame(): Promise<void> {
  return new Promise((resolve) => requestAnimationFrame(() => resolve()));
}

/** Trains until the target step count is reached or the user pauses. */
async function trainSteps(): Promise<void> {
  while (status.running && status.steps < status.target) {
    const k = Math.min(readEvery, status.target - status.steps);
    const step = currentStep();
    const t0 = performance.now();
    for (let i = 0; i < k; i++) state = step(state, data.batch, hyper);
    // One read per interval: the losses, the features and the class weights together.
    const flat = await readout(state.lossLog, state.params, data.batch.x).data() as Float32Array;
    status.msPerStep = (performance.now() - t0) / k;
    // The log holds the latest readEvery losses, oldest first.
    for (let i = readEvery - k; i < readEvery; i++) status.losses.push(flat[i]);
    features = flat.slice(readEvery, readEvery + 2 * n);
    weights = flat.slice(readEvery + 2 * n);
    status.steps += k;
    measure();
    render();
    await nextFrame();
  }
  status.done = status.steps >= status.target;
}

async function train(): Promise<void> {
  if (status.running) return;
  status.running = true;
  status.done = false;
  updateControls();
  try {
    try {
      await trainSteps();
    } catch (e) {
      if (status.backend !== "webgpu") throw e;
      console.error(e);
      // The adapter exists but the backend failed on it: say so, and start again without it.
      const first = String((e as Error).message).split("\n").slice(0, 2).join(" ");
      await fallBack(
        `cosgrad's webgpu backend failed on adapter ${status.adapter} (${first}); restarted`,
      );
      startModel();
      await trainSteps();
    }
  } catch (e) {
    status.error = (e as Error).message;
    console.error(e);
  } finally {
    status.running = false;
    render();
    updateControls();
  }
}

function measure(): void {
  if (features === null) return;
  const g: GapReport = angularGaps(features, data.labels, classes);
  status.gaps = {
    min: g.min * DEG,
    mean: g.mean * DEG,
    meanWidth: g.meanWidth * DEG,
    pairs: g.gaps.map((p) => ({ from: p.from, to: p.to, gap: p.gap * DEG })),
  };
  lastReport = g;
}

// ---- Drawing ----------------------------------------------------------------------------------

let lastReport: GapReport | null = null;

function setupCanvas(canvas: HTMLCanvasElement): CanvasRenderingContext2D {
  const dpr = globalThis.devicePixelRatio || 1;
  const w = canvas.width, h = canvas.height;
  canvas.style.width = `${w}px`;
  canvas.style.height = `${h}px`;
  canvas.width = Math.round(w * dpr);
  canvas.height = Math.round(h * dpr);
  const ctx = canvas.getContext("2d");
  if (ctx === null) throw new TypeError("The browser gave no 2d canvas context");
  ctx.scale(dpr, dpr);
  return ctx;
}

const circleCanvas = el<HTMLCanvasElement>("circle");
const circleSize = circleCanvas.width;
const circle = setupCanvas(circleCanvas);
const lossCanvas = el<HTMLCanvasElement>("loss");
const lossSize = { w: lossCanvas.width, h: lossCanvas.height };
const lossCtx = setupCanvas(lossCanvas);

function drawCircle(): void {
  const ctx = circle, size = circleSize, cx = size / 2, cy = size / 2, r = size * 0.34;
  ctx.clearRect(0, 0, size, size);
  // Canvas y grows downwards: angle a is drawn at (cx + r cos a, cy - r sin a).
  const at = (a: number, rad: number): [number, number] => [
    cx + rad * Math.cos(a),
    cy - rad * Math.sin(a),
  ];
  ctx.strokeStyle = "#c9ced8";
  ctx.lineWidth = 1;
  ctx.beginPath();
  ctx.arc(cx, cy, r, 0, 2 * Math.PI);
  ctx.stroke();
  ctx.beginPath();
  ctx.moveTo(cx - r - 60, cy);
  ctx.lineTo(cx + r + 60, cy);
  ctx.moveTo(cx, cy - r - 60);
  ctx.lineTo(cx, cy + r + 60);
  ctx.strokeStyle = "#eceef2";
  ctx.stroke();

  if (weights !== null) {
    for (let c = 0; c < classes; c++) {
      const a = Math.atan2(weights[2 * c + 1], weights[2 * c]);
      const [x, y] = at(a, r * 0.9);
      ctx.strokeStyle = COLORS[c % COLORS.length];
      ctx.lineWidth = 2;
      ctx.setLineDash([5, 4]);
      ctx.beginPath();
      ctx.moveTo(cx, cy);
      ctx.lineTo(x, y);
      ctx.stroke();
      ctx.setLineDash([]);
      // Arrow head.
      const [hx1, hy1] = at(a - 0.05, r * 0.84);
      const [hx2, hy2] = at(a + 0.05, r * 0.84);
      ctx.fillStyle = COLORS[c % COLORS.length];
      ctx.beginPath();
      ctx.moveTo(x, y);
      ctx.lineTo(hx1, hy1);
      ctx.lineTo(hx2, hy2);
      ctx.closePath();
      ctx.fill();
      // The class number, on its ray.
      const [lx, ly] = at(a, r * 0.62);
      ctx.fillStyle = "#fff";
      ctx.beginPath();
      ctx.arc(lx, ly, 8, 0, 2 * Math.PI);
      ctx.fill();
      ctx.fillStyle = COLORS[c % COLORS.length];
      ctx.font = "bold 12px system-ui, sans-serif";
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.fillText(String(c), lx, ly);
    }
  }

  if (features !== null) {
    const perClass = n / classes;
    for (let i = 0; i < n; i++) {
      const a = Math.atan2(features[2 * i + 1], features[2 * i]);
      // A small deterministic radial spread so points of one class do not hide each other.
      const rad = r * (1 + 0.05 * ((i % perClass) / perClass - 0.5));
      const [x, y] = at(a, rad);
      ctx.fillStyle = COLORS[data.labels[i] % COLORS.length];
      ctx.globalAlpha = 0.75;
      ctx.beginPath();
      ctx.arc(x, y, 3.2, 0, 2 * Math.PI);
      ctx.fill();
    }
    ctx.globalAlpha = 1;
  }

  const rep = lastReport;
  if (rep !== null) {
    // Each class's arc, just outside the circle.
    for (const arc of rep.arcs) {
      ctx.strokeStyle = COLORS[arc.label % COLORS.length];
      ctx.lineWidth = 6;
      ctx.lineCap = "butt";
      ctx.beginPath();
      ctx.arc(cx, cy, r + 18, -arc.start, -(arc.start + arc.width), true);
      ctx.stroke();
    }
    // The gaps between neighbouring arcs, labelled in degrees.
    ctx.font = "12px system-ui, sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    rep.arcs.forEach((a, i) => {
      const gap = rep.gaps[i].gap;
      const end = a.start + a.width;
      const mid = end + gap / 2;
      if (gap > 0) {
        ctx.strokeStyle = "#8a93a3";
        ctx.lineWidth = 1.5;
        ctx.beginPath();
        ctx.arc(cx, cy, r + 30, -end, -(end + gap), true);
        ctx.stroke();
        for (const t of [end, end + gap]) {
          const [x1, y1] = at(t, r + 25);
          const [x2, y2] = at(t, r + 35);
          ctx.beginPath();
          ctx.moveTo(x1, y1);
          ctx.lineTo(x2, y2);
          ctx.stroke();
        }
      }
      const [tx, ty] = at(mid, r + 50);
      ctx.fillStyle = gap > 0 ? "#39404d" : "#c0392b";
      ctx.fillText(`${(gap * DEG).toFixed(1)}°`, tx, ty);
    });
  }

  ctx.fillStyle = "#5d6677";
  ctx.font = "13px system-ui, sans-serif";
  ctx.textAlign = "left";
  ctx.textBaseline = "top";
  const c = status.config;
  const title = c.loss === "softmax"
    ? "softmax"
    : c.loss === "nsl"
    ? `NSL  s=${c.s}`
    : `${c.loss === "cosface" ? "CosFace" : "ArcFace"}  m=${c.m.toFixed(2)}  s=${c.s}`;
  ctx.fillText(`${title}   step ${status.steps}`, 10, 10);
  if (status.gaps !== null) {
    ctx.textBaseline = "bottom";
    ctx.fillText(
      `min gap ${status.gaps.min.toFixed(1)}°   mean gap ${status.gaps.mean.toFixed(1)}°   ` +
        `mean class width ${status.gaps.meanWidth.toFixed(1)}°`,
      10,
      size - 10,
    );
  }
}

function drawLoss(): void {
  const ctx = lossCtx, { w, h } = lossSize, pad = 36;
  ctx.clearRect(0, 0, w, h);
  const ls = status.losses.filter((v) => Number.isFinite(v) && v > 0);
  ctx.fillStyle = "#5d6677";
  ctx.font = "11px system-ui, sans-serif";
  ctx.textBaseline = "top";
  ctx.textAlign = "left";
  ctx.fillText("loss (log scale)", pad, 4);
  if (ls.length < 2) return;
  const lo = Math.log10(Math.min(...ls)), hi = Math.log10(Math.max(...ls));
  const span = Math.max(hi - lo, 1e-3);
  const total = status.losses.length;
  ctx.strokeStyle = "#2f6fde";
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  status.losses.forEach((v, i) => {
    if (!(v > 0)) return;
    const x = pad + (w - pad - 6) * (i / Math.max(1, total - 1));
    const y = 18 + (h - 30) * (1 - (Math.log10(v) - lo) / span);
    if (i === 0) ctx.moveTo(x, y);
    else ctx.lineTo(x, y);
  });
  ctx.stroke();
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  ctx.fillText(`${(10 ** hi).toPrecision(2)}`, pad - 2, 18);
  ctx.fillText(`${(10 ** lo).toPrecision(2)}`, pad - 2, h - 12);
}

function renderTable(): void {
  const body = el<HTMLTableElement>("gaps").tBodies[0];
  const foot = el<HTMLTableElement>("gaps").tFoot!;
  body.replaceChildren();
  foot.replaceChildren();
  if (status.gaps === null) return;
  const swatch = (c: number) =>
    `<span class="swatch" style="background:${COLORS[c % COLORS.length]}"></span>${c}`;
  for (const p of status.gaps.pairs) {
    const tr = document.createElement("tr");
    tr.innerHTML = `<td>${swatch(p.from)} → ${swatch(p.to)}</td><td class="num"${
      p.gap < 0 ? ' style="color:#c0392b"' : ""
    }>${p.gap.toFixed(1)}°</td>`;
    body.append(tr);
  }
  const rows: [string, number][] = [
    ["min gap", status.gaps.min],
    ["mean gap", status.gaps.mean],
    ["mean class width", status.gaps.meanWidth],
  ];
  for (const [name, v] of rows) {
    const tr = document.createElement("tr");
    tr.innerHTML = `<td>${name}</td><td class="num">${v.toFixed(1)}°</td>`;
    foot.append(tr);
  }
}

function render(): void {
  drawCircle();
  drawLoss();
  renderTable();
  const last = status.losses.at(-1);
  el("progress").textContent = status.error !== null
    ? `Training stopped: ${status.error}`
    : `step ${status.steps} / ${status.target}` +
      (last !== undefined ? ` · loss ${last.toFixed(3)}` : "") +
      (Number.isFinite(status.msPerStep)
        ? ` · ${status.msPerStep.toFixed(1)} ms/step on ${status.backend}`
        : "");
}

// ---- Controls ---------------------------------------------------------------------------------

const mInput = el<HTMLInputElement>("m");
const sInput = el<HTMLInputElement>("s");
const stepsInput = el<HTMLInputElement>("steps");
const runButton = el<HTMLButtonElement>("run");

function updateControls(
  c: { loss: LossKind; m: number; s: number } = status.config,
): void {
  el("m-value").textContent = c.loss === "arcface"
    ? `${c.m.toFixed(2)} rad (${(c.m * DEG).toFixed(1)}°)`
    : c.m.toFixed(2);
  el("s-value").textContent = String(c.s);
  const note = el("m-note");
  note.classList.remove("warn");
  if (c.loss === "cosface") {
    const bound = maxMargin2d(classes);
    note.textContent = `2-D bound for ${classes} classes: m ≤ 1 − cos(2π/${classes}) = ${
      bound.toFixed(3)
    }`;
    if (c.m > bound) {
      note.textContent += ": above it, the classes cannot all reach the margin";
      note.classList.add("warn");
    }
  } else if (c.loss === "arcface") {
    note.textContent = `ArcFace adds m to the angle: 2-D bound θ ≤ 2π/${classes} = ${
      (2 * Math.PI / classes).toFixed(3)
    } rad`;
  } else {
    note.textContent = c.loss === "softmax"
      ? "Plain softmax uses neither m nor s (unnormalized logits)"
      : "NSL is CosFace with m = 0";
  }
  mInput.disabled = c.loss === "softmax" || c.loss === "nsl";
  sInput.disabled = c.loss === "softmax";
  runButton.textContent = status.running ? "Pause" : status.done ? "Train more" : "Train";
}

/**
 * Applies the controls. Each new (loss, s, m) compiles a new step, so the sliders take effect
 * when released (`change`); while dragging (`input`) only the shown values follow.
 */
function readControls(commit: boolean): void {
  const form = el<HTMLFormElement>("controls");
  const kind = new FormData(form).get("loss") as LossKind;
  const m = kind === "nsl" ? 0 : Number(mInput.value), s = Number(sInput.value);
  if (commit) {
    status.config.loss = kind;
    status.config.m = m;
    status.config.s = s;
  }
  updateControls({ loss: kind, m, s });
  if (commit && !status.running) render();
}

function writeControls(): void {
  const c = status.config;
  for (const input of document.querySelectorAll<HTMLInputElement>('input[name="loss"]')) {
    input.checked = input.value === c.loss;
  }
  mInput.value = String(c.m);
  sInput.value = String(c.s);
  stepsInput.value = String(status.target);
}

function wire(): void {
  el("controls").addEventListener("input", () => readControls(false));
  el("controls").addEventListener("change", () => readControls(true));
  runButton.addEventListener("click", () => {
    if (status.running) {
      status.running = false;
      return;
    }
    if (status.steps >= status.target) {
      status.target = status.steps + Math.max(10, Number(stepsInput.value) || 600);
    }
    void train();
  });
  el("reset").addEventListener("click", () => {
    status.running = false;
    // Let a running interval finish before the state is replaced.
    requestAnimationFrame(() => {
      resetModel();
      status.target = Math.max(10, Number(stepsInput.value) || 600);
      render();
      updateControls();
    });
  });
}

async function main(): Promise<void> {
  try {
    status.config = {
      loss: lossParam(),
      m: numberParam("m", 0.2),
      s: numberParam("s", 16),
      lr: numberParam("lr", 0.01),
      seed,
      readEvery,
    };
    if (status.config.loss === "nsl") status.config.m = 0;
    status.target = Math.max(1, Math.trunc(numberParam("steps", 600)));
    writeControls();
    wire();
    await startBackend();
    startModel();
    updateControls();
    render();
    if (query.get("autostart") === "1") await train();
  } catch (e) {
    status.error = (e as Error).message;
    el("progress").textContent = `Error: ${status.error}`;
    console.error(e);
  }
}

void main();
