#!/usr/bin/env python3
"""The training benchmark's PyTorch side: the workloads of bench-train.mjs, layer for layer.

  vdsr-train   VDSR (20 convs, 64 channels), batch 64 of 41x41 patches: forward, MSE, backward, Adam
  srinc-train  SRINC (128 filters, 19 inception modules), batch 32 of 51x51 patches, the same
  vdsr-infer   VDSR on one 512x512 grey image, no autograd
  srinc-infer  SRINC on one 512x512 grey image, no autograd

Architectures as packages/sr/src/models.ts builds them (sizes and configs from
train-workloads.json, shared with bench-train.mjs):
  VDSR:  conv 1->F 3x3 + ReLU, (depth - 2) x [conv F->F 3x3 + ReLU], conv F->1 3x3, plus the
         input; no biases (the public PyTorch VDSR's layers).
  SRINC: conv 1->F 3x3 (bias) + ReLU, `modules` inception modules (each branch: its convs with
         bias, each followed by ReLU, or a stride-1 max-pool; branches concatenated on channels),
         conv C->1 (lastKernel, bias), plus the input.
fp32 throughout: TF32 off for matmul and cuDNN, cudnn.benchmark on (PyTorch's fastest
algorithm choice), torch.optim.Adam with its defaults for the device, MSE loss. Each timed
step ends with torch.cuda.synchronize(); the median is reported.

usage: python3 bench_torch.py [--device cpu|cuda] [--steps N] [--warmup N] [--quick] [--json FILE]
       python3 bench_torch.py --parity FILE   (FILE from node bench-train.mjs --parity-out FILE)
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


class ConvRelu(nn.Module):
    """A 3x3 conv and ReLU: VDSR's residual layer, named as lrface's (residual_layer.N.conv)."""

    def __init__(self, in_channels, out_channels, bias):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=bias)

    def forward(self, x):
        return F.relu(self.conv(x), inplace=True)


class VDSR(nn.Module):
    def __init__(self, depth, features, channels=1, bias=False):
        super().__init__()
        self.input = nn.Conv2d(channels, features, 3, padding=1, bias=bias)
        self.residual_layer = nn.ModuleList(ConvRelu(features, features, bias) for _ in range(depth - 2))
        self.output = nn.Conv2d(features, channels, 3, padding=1, bias=bias)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")

    def forward(self, x):
        h = F.relu(self.input(x), inplace=True)
        for layer in self.residual_layer:
            h = layer(h)
        return self.output(h) + x


class Branch(nn.ModuleList):
    """One inception branch: its convs (each followed by ReLU) as list items, named as lrface's
    (branches.B.K), with the stride-1 max-pools of the plan between them."""

    def __init__(self, in_channels, ops):
        super().__init__()
        self.ops = ops
        ch = in_channels
        for op in ops:
            if "conv" in op:
                conv = nn.Conv2d(ch, op["out"], op["conv"], padding=(op["conv"] - 1) // 2)
                nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
                nn.init.zeros_(conv.bias)
                self.append(conv)
                ch = op["out"]
            elif "maxPool" not in op:
                raise ValueError(f"unknown inception op {op}")
        self.out_channels = ch

    def forward(self, x):
        h = x
        k = 0
        for op in self.ops:
            if "conv" in op:
                h = F.relu(self[k](h), inplace=True)
                k += 1
            else:
                h = F.max_pool2d(h, op["maxPool"], stride=1, padding=(op["maxPool"] - 1) // 2)
        return h


class Inception(nn.Module):
    def __init__(self, in_channels, plan):
        super().__init__()
        self.branches = nn.ModuleList(Branch(in_channels, ops) for ops in plan)
        self.out_channels = sum(b.out_channels for b in self.branches)

    def forward(self, x):
        outs = [b(x) for b in self.branches]
        return outs[0] if len(outs) == 1 else torch.cat(outs, 1)


class SRINC(nn.Module):
    def __init__(self, features, modules, module, lastKernel=3, channels=1):
        super().__init__()
        self.first = nn.Conv2d(channels, features, 3, padding=1)
        nn.init.kaiming_normal_(self.first.weight, nonlinearity="relu")
        nn.init.zeros_(self.first.bias)
        blocks = []
        ch = features
        for _ in range(modules):
            blocks.append(Inception(ch, module))
            ch = blocks[-1].out_channels
        self.inception = nn.Sequential(*blocks)
        self.last = nn.Conv2d(ch, channels, lastKernel, padding=(lastKernel - 1) // 2)
        nn.init.kaiming_normal_(self.last.weight, nonlinearity="linear")
        nn.init.zeros_(self.last.bias)

    def forward(self, x):
        h = F.relu(self.first(x), inplace=True)
        return self.last(self.inception(h)) + x


def make_net(arch, sizes, device):
    torch.manual_seed(1)
    cfg = sizes[arch]["model"]
    if arch == "vdsr":
        net = VDSR(cfg["depth"], cfg["features"], cfg.get("channels", 1), cfg.get("bias", False))
    else:
        net = SRINC(cfg["features"], cfg["modules"], cfg["module"], cfg.get("lastKernel", 3), cfg.get("channels", 1))
    return net.to(device)


def timed(run, steps, warmup, sync):
    for _ in range(warmup):
        run()
    sync()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        run()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    # The median as bench-train.mjs takes it: the element at n // 2 of the sorted times.
    return {"ms_median": sorted(times)[len(times) // 2], "ms_min": min(times), "ms_mean": sum(times) / len(times), "times_ms": times}


def train_workload(arch, sizes, device, steps, warmup, sync):
    batch, patch = sizes[arch]["batch"], sizes[arch]["patch"]
    net = make_net(arch, sizes, device).train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    torch.manual_seed(2)
    x = torch.rand(batch, 1, patch, patch, device=device)
    y = torch.rand(batch, 1, patch, patch, device=device)
    losses = []

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.mse_loss(net(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.detach())

    t = timed(step, steps, warmup, sync)
    values = [float(v) for v in losses]  # read after timing, as the lrface side
    params = sum(p.numel() for p in net.parameters())
    return {**t, "batch": batch, "patch": patch, "samples_per_s": batch * 1e3 / t["ms_median"],
            "loss_first": values[0], "loss_last": values[-1], "parameters": params}


def infer_workload(arch, sizes, device, steps, warmup, sync):
    image = sizes[arch]["image"]
    net = make_net(arch, sizes, device).eval()
    torch.manual_seed(3)
    x = torch.rand(1, 1, image, image, device=device)

    def run():
        with torch.no_grad():
            net(x)

    t = timed(run, steps, warmup, sync)
    with torch.no_grad():
        mean = float(net(x).mean())
    return {**t, "image": image, "images_per_s": 1e3 / t["ms_median"], "output_mean": mean}


def parity(path, sizes):
    """Loads the models bench-train.mjs --parity-out wrote (quick sizes, state dicts by lrface's
    names, strictly) and checks that they give lrface's outputs: the architectures are the same
    layer for layer. Returns the exit status."""
    with open(path) as f:
        exported = json.load(f)
    status = 0
    for arch in ("vdsr", "srinc"):
        d = exported[arch]
        net = make_net(arch, sizes, "cpu").eval()
        net.load_state_dict({k: torch.tensor(v["data"], dtype=torch.float32).reshape(v["shape"]) for k, v in d["state"].items()}, strict=True)
        x = torch.tensor(d["x"], dtype=torch.float32).reshape(d["shape"])
        with torch.no_grad():
            y = net(x).flatten()
        ref = torch.tensor(d["y"], dtype=torch.float32)
        diff = float((y - ref).abs().max())
        same = diff <= 1e-4 * max(1.0, float(ref.abs().max()))
        params = sum(p.numel() for p in net.parameters())
        print(f"parity {arch}: lrface's state dict loads strictly ({params} parameters), max |torch - lrface| = {diff:.2e}: {'same' if same else 'DIFFERENT'}", flush=True)
        status |= 0 if same else 1
    return status


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check the script end to end")
    parser.add_argument("--json", default=None)
    parser.add_argument("--parity", default=None, metavar="FILE", help="check the models of bench-train.mjs --parity-out FILE against these, then exit")
    args = parser.parse_args()
    steps = args.steps if args.steps is not None else (3 if args.quick else 20)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    if steps < 1 or warmup < 1:
        parser.error("--steps and --warmup must be >= 1")
    with open(os.path.join(HERE, "train-workloads.json")) as f:
        table = json.load(f)
    if args.parity:
        sys.exit(parity(args.parity, table["quick"]))
    sizes = table["quick" if args.quick else "full"]

    device = torch.device(args.device)
    if args.device == "cuda":
        if not torch.cuda.is_available():
            print("bench_torch: no CUDA device", file=sys.stderr)
            sys.exit(2)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
        sync = torch.cuda.synchronize
        name = torch.cuda.get_device_name(0)
    else:
        sync = lambda: None  # noqa: E731
        name = f"CPU, {torch.get_num_threads()} threads"

    info = {"side": "torch", "device": args.device, "device_name": name, "quick": args.quick, "steps": steps, "warmup": warmup,
            "sizes": sizes, "torch": torch.__version__, "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if args.device == "cuda" else None,
            "tf32": {"matmul": torch.backends.cuda.matmul.allow_tf32, "cudnn": torch.backends.cudnn.allow_tf32},
            "cudnn_benchmark": torch.backends.cudnn.benchmark}
    results = []

    def save():
        if args.json:
            with open(args.json, "w") as f:
                json.dump({**info, "results": results}, f, indent=2)

    print(f"torch {torch.__version__} on {name}{' (quick sizes)' if args.quick else ''}, {warmup} warm-up + {steps} timed steps", flush=True)
    workloads = [("vdsr-train", lambda: train_workload("vdsr", sizes, device, steps, warmup, sync)),
                 ("srinc-train", lambda: train_workload("srinc", sizes, device, steps, warmup, sync)),
                 ("vdsr-infer", lambda: infer_workload("vdsr", sizes, device, steps, warmup, sync)),
                 ("srinc-infer", lambda: infer_workload("srinc", sizes, device, steps, warmup, sync))]
    status = 0
    for wid, run in workloads:
        # One workload failing leaves the others' results.
        try:
            r = run()
            results.append({"workload": wid, **r})
            if "samples_per_s" in r:
                rate = f"{r['samples_per_s']:.1f} samples/s, loss {r['loss_first']:.5f} -> {r['loss_last']:.5f}"
            else:
                rate = f"{r['images_per_s']:.2f} images/s"
            print(f"{wid:<12} median {r['ms_median']:9.2f} ms  (min {r['ms_min']:.2f})  {rate}", flush=True)
        except Exception as err:  # noqa: BLE001 - reported, and the run goes on
            results.append({"workload": wid, "error": repr(err)})
            print(f"{wid:<12} FAILED: {err!r}", flush=True)
            status = 1
        finally:
            if args.device == "cuda":
                torch.cuda.empty_cache()
        save()
    if args.device == "cuda":
        print(f"peak memory: {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")
    sys.exit(status)


if __name__ == "__main__":
    main()
