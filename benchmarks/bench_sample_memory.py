"""Extra memory of ``sample(n)`` and ``transform`` on many rows, for every estimator.

Each estimator is fitted briefly on three 2-D inputs in its own process; then, with the
process's resident memory as baseline, ``sample(n)`` is called while a thread polls the
resident set size (``/proc/self/statm``, every millisecond). The figure is the peak
increase over the baseline divided by the size of the returned array: 1.0 means the call
needed nothing beyond its output. Target (issue 17): at most 1.5 for ``sample(10**7)``.
``transform`` of ``n`` rows of one input is measured the same way (its input array is
allocated before the baseline).

    python -m benchmarks.bench_sample_memory [--n 10000000] [--features 2]

Writes ``benchmarks/results/sample_memory.md`` and ``sample_memory.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from benchmarks.common import command, machine

RESULTS = Path(__file__).parent / "results"

#: A brief fit of every estimator (the memory of inference does not depend on training).
BRIEF = {
    "GaussianBarycenter": {},
    "FreeSupportBarycenter": {"n_support": 200},
    "NOTBarycenter": {"max_iter": 20},
    "WINBarycenter": {"max_iter": 2, "transform_max_iter": 20},
    "ICNNBarycenter": {"max_iter": 20},
    "GenerativeBarycenter": {"max_iter": 20, "transform_max_iter": 20},
    # Langevin chains of 5 steps instead of the default's: the memory of a chain does not
    # depend on its length, and 10**7 default draws take about 40 minutes on 2 CPU cores.
    "EnergyBarycenter": {"max_iter": 20, "inference_steps": 5},
}

_CHILD = r"""
import gc, json, os, sys, threading, time, warnings
import numpy as np
import skbary
name, n, d, params = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
PAGE = os.sysconf("SC_PAGE_SIZE")

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE

def peak_extra(call):
    gc.collect()
    base, peak, done = rss(), [0], [False]
    def poll():
        while not done[0]:
            peak[0] = max(peak[0], rss())
            time.sleep(0.001)
    t = threading.Thread(target=poll); t.start()
    t0 = time.perf_counter()
    out = call()
    seconds = time.perf_counter() - t0
    done[0] = True; t.join()
    peak[0] = max(peak[0], rss())
    return out, (peak[0] - base) / out.nbytes, seconds

rng = np.random.RandomState(0)
Xs = [rng.randn(2000, d) @ rng.randn(d, d) * 0.5 + 3 * k for k in range(3)]
est = getattr(skbary, name)(random_state=0, **params).fit(Xs)
warnings.simplefilter("ignore")
est.sample(1000); est.transform(Xs[0][:1000], 0)  # lazy imports and caches first
Y, sample_ratio, sample_s = peak_extra(lambda: est.sample(n))
del Y
X = rng.randn(n, d) * 0.5
Z, transform_ratio, transform_s = peak_extra(lambda: est.transform(X, 0))
print(json.dumps({"sample": sample_ratio, "sample_s": sample_s,
                  "transform": transform_ratio, "transform_s": transform_s,
                  "output_mb": Z.nbytes / 2**20}))
"""


def measure(name: str, n: int, d: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, name, str(n), str(d), json.dumps(BRIEF[name])],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--features", type=int, default=2)
    parser.add_argument("--tag", default="", help="suffix of the result files")
    args = parser.parse_args(argv)
    rows = {}
    print(f"sample({args.n}) and transform of {args.n} rows, D={args.features}")
    print(f"{'estimator':24s} {'sample x out':>13s} {'s':>6s} {'transform x out':>16s} {'s':>6s}")
    for name in BRIEF:
        r = measure(name, args.n, args.features)
        rows[name] = r
        print(
            f"{name:24s} {r['sample']:13.2f} {r['sample_s']:6.1f} "
            f"{r['transform']:16.2f} {r['transform_s']:6.1f}"
        )
    RESULTS.mkdir(exist_ok=True)
    stem = f"sample_memory{args.tag}"
    (RESULTS / f"{stem}.json").write_text(
        json.dumps(
            {"n": args.n, "features": args.features, "machine": machine(), "rows": rows}, indent=1
        )
    )
    out_mb = next(iter(rows.values()))["output_mb"]
    lines = [
        f"# Extra memory of inference: sample({args.n}) and transform, D={args.features}",
        "",
        f"Peak increase of resident memory during the call, in multiples of the returned "
        f"array ({out_mb:.0f} MB); 1.0 = nothing beyond the output. Target: sample <= 1.5.",
        "",
        f"Machine: {machine()}. Command: `{command('benchmarks.bench_sample_memory')}`",
        "",
        "Brief fits (inference memory does not depend on training; EgBary's Langevin chains "
        "have 5 steps, since their memory does not depend on their length): "
        + ", ".join(f"{k} {v}" for k, v in BRIEF.items()),
        "",
        "| estimator | sample | seconds | transform | seconds |",
        "|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['sample']:.2f} | {r['sample_s']:.1f} | {r['transform']:.2f} | "
            f"{r['transform_s']:.1f} |"
        )
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
