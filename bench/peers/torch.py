"""PyTorch as a benchmark peer for the workloads of bench/WORKLOADS.md.

Prints one JSON line per result, with the fields of PeerResult (bench/peers/_result.ts):
framework, version, backend, workload, adapter, mode, ms, samples, calls, loss, check, wrong,
extra, error, tooSlow.

On a 2-core Debian machine use Debian's torch with the threaded OpenBLAS:
  LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-pthread /usr/bin/python3 bench/peers/torch.py
On a CUDA machine: python3 bench/peers/torch.py --devices cuda --workloads M1,M4,C1-fwd,C1-fwdbwd,L1,T1,T2
Float32 throughout; TF32 is switched off.
"""

import argparse
import json
import math
import os
import statistics
import sys
import time

# This file is named torch.py: drop its own folder from the path so `import torch` finds PyTorch.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path = [q for q in sys.path if os.path.abspath(q or ".") != _here]
sys.path.insert(0, os.path.join(_here, ".."))
from _inputs import NETWORK, WORKLOADS, network_params, seeded_labels, values_of  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False

VARIANTS = ["M1", "M4", "C1-fwd", "C1-fwdbwd", "L1", "T1", "T2"]
GPU_ONLY = {"M4", "T2"}
EXPECTED_L1 = 35.8995
GRAD_NORMS = (0.3113802, 0.3118896)  # PyTorch float64, as WORKLOADS.L1.params in _inputs.ts


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def time_workload(run, dev, mode, reps, max_call_ms, warmup=2, estimate_ms=None):
    """Warm-up, then reps repetitions; latency: one call + sync; throughput: N calls, one sync."""
    warm = []
    for _ in range(warmup):
        t0 = time.perf_counter()
        run()
        sync(dev)
        ms = (time.perf_counter() - t0) * 1000
        warm.append(ms)
        if ms > max_call_ms:
            return {"ms": ms, "samples": [], "calls": 1, "tooSlow": True}
        if ms > 5000:
            break
    est = warm[-1] if warm else (estimate_ms or 50.0)
    calls = 1 if mode == "latency" else max(1, min(20, math.ceil(1000 / max(est, 1e-3))))
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(calls):
            run()
        sync(dev)
        samples.append((time.perf_counter() - t0) * 1000 / calls)
    return {"ms": statistics.median(samples), "samples": samples, "calls": calls}


def tensor(spec, dev):
    return torch.from_numpy(values_of(spec)).to(dev)


def compare(got, ref, name, rtol=1e-3):
    """Normwise: max |got - ref| / max |ref|, as compareSamples() in _reference.ts."""
    got = got.detach().double().cpu().flatten()
    ref = ref.double().cpu().flatten()
    err = ((got - ref).abs().max() / ref.abs().max().clamp_min(1e-30)).item()
    if err <= rtol:
        return f"{name} ok (err {err:.1e})", False
    return f"{name} WRONG (err {err:.1e})", True


def prep_matmul(wid, dev):
    w = WORKLOADS[wid]
    a, b = tensor(w["a"], dev), tensor(w["b"], dev)
    out = {}

    def run():
        out["c"] = a @ b

    def check():
        rows = torch.tensor([0, 7, a.shape[0] - 1])
        ref = a[rows].double().cpu() @ b.double().cpu()
        text, wrong = compare(out["c"][rows.to(dev)], ref, "C")
        return {"check": text, "wrong": wrong}

    return run, check


def prep_conv(dev, backward):
    w = WORKLOADS["C1"]
    x, wt, dy = tensor(w["x"], dev), tensor(w["w"], dev), tensor(w["dy"], dev)
    x.requires_grad_(backward)
    wt.requires_grad_(backward)
    out = {}

    def run():
        if backward:
            y = F.conv2d(x, wt, padding=1)
            out["g"] = torch.autograd.grad(y, [x, wt], dy)
        else:
            with torch.no_grad():
                out["y"] = F.conv2d(x, wt, padding=1)

    def check():
        xd, wd = x.detach().double().cpu().requires_grad_(), wt.detach().double().cpu().requires_grad_()
        y = F.conv2d(xd, wd, padding=1)
        if not backward:
            text, wrong = compare(out["y"], y.detach(), "y")
            return {"check": text, "wrong": wrong}
        gx, gw = torch.autograd.grad(y, [xd, wd], dy.double().cpu())
        tx, wx = compare(out["g"][0], gx, "dx")
        tw, ww = compare(out["g"][1], gw, "dw")
        return {"check": f"{tx}; {tw}", "wrong": wx or ww}

    return run, check


def cosface_loss(x, w, labels, s, m):
    cos = (F.normalize(x, dim=1) @ F.normalize(w, dim=1).t()).clamp(-1, 1)
    logits = s * (cos - m * F.one_hot(labels, w.shape[0]).to(cos.dtype))
    return F.cross_entropy(logits, labels)


def prep_cosface(dev):
    w = WORKLOADS["L1"]
    x = tensor(w["features"], dev).requires_grad_()
    wt = tensor(w["weights"], dev).requires_grad_()
    labels = torch.from_numpy(seeded_labels(w["labels"], 256, 10000)).to(dev)
    out = {}

    def run():
        loss = cosface_loss(x, wt, labels, 64.0, 0.35)
        out["g"] = torch.autograd.grad(loss, [x, wt])
        out["loss"] = loss

    def check():
        loss = out["loss"].item()
        gx, gw = (g.double().norm().item() for g in out["g"])
        gx_err, gw_err = abs(gx / GRAD_NORMS[0] - 1), abs(gw / GRAD_NORMS[1] - 1)
        ok, grads_ok = abs(loss - EXPECTED_L1) <= 1e-3, gx_err <= 1e-3 and gw_err <= 1e-3
        return {
            "loss": loss,
            "check": f"loss {loss:.4f} {'==' if ok else '!='} {EXPECTED_L1}; grad norms "
            f"{'ok' if grads_ok else 'WRONG'} (rel err {gx_err:.1e}, {gw_err:.1e})",
            "wrong": not (ok and grads_ok),
            "extra": {"gradFeaturesNorm": gx, "gradWeightsNorm": gw},
        }

    return run, check


class Net(torch.nn.Module):
    """The T1/T2 network of WORKLOADS.md with the CosFace head."""

    def __init__(self, size, classes):
        super().__init__()
        convs, linear, class_weights = network_params(size, classes)
        layers = []
        cin = 3
        k = 0
        for width in NETWORK["stage_widths"]:
            for stride in (2, 1):
                conv = torch.nn.Conv2d(cin, width, 3, stride, 1, bias=False)
                conv.weight.data = torch.from_numpy(convs[k])
                layers += [conv, torch.nn.BatchNorm2d(width), torch.nn.PReLU(width, NETWORK["prelu0"])]
                cin = width
                k += 1
        self.body = torch.nn.Sequential(*layers)
        self.linear = torch.nn.Linear(linear.shape[0], NETWORK["embedding"], bias=False)
        self.linear.weight.data = torch.from_numpy(np.ascontiguousarray(linear.T))
        self.bn = torch.nn.BatchNorm1d(NETWORK["embedding"])
        self.class_weights = torch.nn.Parameter(torch.from_numpy(class_weights))

    def forward(self, images, labels):
        emb = self.bn(self.linear(self.body(images).flatten(1)))
        return cosface_loss(emb, self.class_weights, labels, NETWORK["s"], NETWORK["m"])


def prep_train(wid, dev, max_call_ms):
    w = WORKLOADS[wid]
    net = Net(w["size"], w["classes"]).to(dev).train()
    opt = torch.optim.SGD(
        net.parameters(), lr=NETWORK["lr"], momentum=NETWORK["momentum"], weight_decay=NETWORK["weight_decay"]
    )
    images = tensor(w["images"], dev)
    labels = torch.from_numpy(seeded_labels(w["labels"], w["batch"], w["classes"])).to(dev)
    out = {}

    def run():
        opt.zero_grad(set_to_none=True)
        loss = net(images, labels)
        loss.backward()
        opt.step()
        out["loss"] = loss.detach()

    facts = {}
    t0 = time.perf_counter()
    run()
    facts["loss"] = out["loss"].item()
    last = (time.perf_counter() - t0) * 1000
    facts["extra"] = {"firstStepMs": last}
    if last <= 5 * max_call_ms:  # the first step includes start-up costs: the second decides
        t0 = time.perf_counter()
        run()
        facts["extra"]["loss1"] = out["loss"].item()
        last = (time.perf_counter() - t0) * 1000
    return run, facts, last


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "CPU"


def run_one(wid, dev, modes, reps, max_call_ms):
    base = {"framework": "torch", "version": torch.__version__, "backend": dev.type, "workload": wid}
    if dev.type == "cuda":
        base["adapter"] = torch.cuda.get_device_name(dev)
    else:
        base["adapter"] = f"{cpu_model()}, {torch.get_num_threads()} threads"
        base["extra"] = {"blas": os.environ.get("LD_LIBRARY_PATH", "default BLAS")}
    if wid in GPU_ONLY and dev.type != "cuda":
        return [{**base, "error": "GPU-only workload"}]
    try:
        facts, warmup, est = {}, 2, None
        if wid in ("T1", "T2"):
            run, facts, est = prep_train(wid, dev, max_call_ms)
            check = None
            warmup = 0
            if est > max_call_ms:
                return [{**base, **facts, "mode": modes[0], "ms": est, "tooSlow": True}]
        elif wid in ("M1", "M4"):
            run, check = prep_matmul(wid, dev)
        elif wid == "L1":
            run, check = prep_cosface(dev)
        else:
            run, check = prep_conv(dev, wid == "C1-fwdbwd")
        results = []
        for mode in modes:
            t = time_workload(run, dev, mode, reps, max_call_ms, warmup=warmup, estimate_ms=est)
            if check and not results:
                facts = check()
            r = {**base, **facts, "extra": {**base.get("extra", {}), **facts.get("extra", {})}, "mode": mode, **t}
            results.append(r)
            if t.get("tooSlow"):
                break
        return results
    except Exception as e:  # noqa: BLE001 - every failure becomes a table entry
        return [{**base, "error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"}]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workloads", default="M1,C1-fwd,C1-fwdbwd,L1,T1")
    p.add_argument("--devices", default="cpu", help="comma list of cpu, cuda")
    p.add_argument("--modes", default="", help="comma list; default latency (cuda: latency,throughput)")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--max-call-ms", type=float, default=60000)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    a = p.parse_args()
    if a.reps < 5:
        p.error(f"--reps {a.reps} is below 5")
    torch.set_num_threads(a.threads)
    for wid in a.workloads.split(","):
        if wid not in VARIANTS:
            p.error(f"Unknown workload {wid}, expected one of {','.join(VARIANTS)}")
    for d in a.devices.split(","):
        if d == "cuda" and not torch.cuda.is_available():
            print(json.dumps({"framework": "torch", "version": torch.__version__, "backend": "cuda",
                              "workload": a.workloads.split(",")[0], "error": "CUDA is not available"}))
            continue
        dev = torch.device(d)
        modes = a.modes.split(",") if a.modes else (["latency", "throughput"] if d == "cuda" else ["latency"])
        for wid in a.workloads.split(","):
            for r in run_one(wid, dev, modes, a.reps, a.max_call_ms):
                print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
