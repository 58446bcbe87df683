"""What fresh memory costs on this machine: first touch of new arrays against reusing one.

A demo build at 16,001 cells spent about 70 of its ~310 CPU-s in the kernel (``sys``), almost
all of it on the first touch of newly allocated arrays (page faults; with transparent huge
pages, compaction stalls). This script measures it directly, in fresh processes: filling
``--gb`` GB of float32 arrays of the emulator's output size (924 months x 32,002 cells, 118 MB
each), allocated anew each time with NumPy's default (huge pages advised), with huge pages not
advised, or written into one reused array (the floor: the same stores, no new memory).
Reports the median CPU seconds per GB (user + sys) over ``--repeats`` processes each,
alternating, and the ratio to the floor.

    python benchmarks/bench_fresh_memory.py [--gb 4] [--repeats 5] [--write]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

from _common import load_average, machine, write_section

CHILD = r"""
import json, resource, sys
import numpy as np
way, n = sys.argv[1], int(sys.argv[2])
if way == "fresh, huge pages not advised":
    from numpy._core.multiarray import _set_madvise_hugepage
    _set_madvise_hugepage(False)
shape = (924, 32002)
keep = np.empty(shape, np.float32) if way == "reused (floor)" else None
if keep is not None:
    keep.fill(0.0)  # touched before the clock starts
r0 = resource.getrusage(resource.RUSAGE_SELF)
for i in range(n):
    a = keep if keep is not None else np.empty(shape, np.float32)
    a.fill(float(i))
    del a
r1 = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"user": r1.ru_utime - r0.ru_utime, "sys": r1.ru_stime - r0.ru_stime,
                  "faults": r1.ru_minflt - r0.ru_minflt}))
"""
WAYS = ("fresh, NumPy default (huge pages advised)", "fresh, huge pages not advised",
        "reused (floor)")
ARRAY_GB = 924 * 32002 * 4 / 1e9


def measure(gb: float, repeats: int) -> dict:
    n = max(1, round(gb / ARRAY_GB))
    runs: dict[str, list[dict]] = {w: [] for w in WAYS}
    load0 = load_average()
    for _ in range(repeats):
        for way in WAYS:
            out = subprocess.run([sys.executable, "-c", CHILD, way, str(n)], check=True,
                                 capture_output=True, text=True).stdout
            runs[way].append(json.loads(out))
    return {"arrays": n, "gb": n * ARRAY_GB, "runs": runs, "repeats": repeats,
            "load": (load0, load_average())}


def render(m: dict) -> str:
    gb = m["gb"]
    med = {w: {k: statistics.median(r[k] for r in rs) for k in ("user", "sys", "faults")}
           for w, rs in m["runs"].items()}
    floor = (med["reused (floor)"]["user"] + med["reused (floor)"]["sys"]) / gb
    lines = ["## Fresh memory (why the demo build avoids whole-size temporaries)", "",
             f"Machine: {machine()}.", "",
             (f"{m['arrays']} float32 arrays of 924 x 32,002 ({gb:.1f} GB) filled, in fresh "
              f"processes; median of {m['repeats']} per way, alternating."), "",
             "| way | user s/GB | sys s/GB | page faults | CPU / floor |", "|---|---:|---:|---:|---:|"]
    for w, v in med.items():
        total = (v["user"] + v["sys"]) / gb
        lines.append(f"| {w} | {v['user'] / gb:.3f} | {v['sys'] / gb:.3f} | {v['faults']:.0f} | "
                     f"{total / floor:.1f} |")
    lines += ["", (f"1-minute load {m['load'][0]:.1f} before, {m['load'][1]:.1f} after. On this "
                   "virtual machine a page fault is expensive, so every new array of the size of "
                   "a variable costs more in the kernel than the arithmetic that fills it."),
              "", "Reproduce: `python benchmarks/bench_fresh_memory.py --gb 4 --repeats 5 --write`."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gb", type=float, default=4.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = ap.parse_args()
    text = render(measure(args.gb, args.repeats))
    print(text)
    if args.write:
        write_section("fresh-memory", text)


if __name__ == "__main__":
    main()
