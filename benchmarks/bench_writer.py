"""The demo's ERA5-Land-layout writer: ISA-L chunks through h5py against zlib inside HDF5.

Reads every (time, latitude, longitude) variable of a demo truth file (float32, file units)
and writes the same arrays, same chunks, side by side in one process, ``--repeats`` times each,
alternating:

* ``uncompressed``: netCDF4, chunked, no filter (the floor: the bytes themselves);
* ``zlib in HDF5``: netCDF4 with shuffle + zlib level 1 (how the demo wrote them before);
* ``ISA-L chunks``: :func:`permaplug.demo.chunks.write_deflated` (shuffle in NumPy, ISA-L
  deflate, h5py direct chunk write; how the demo writes them now).

Reports the median CPU seconds, MB/s of float32 input, the file sizes, the ratios, and checks
that the three files read back equal (data: demo emulator).

    python benchmarks/bench_writer.py [--file TRUTH.nc] [--repeats 3] [--write]
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import netCDF4
import numpy as np
from _common import load_average, machine, write_section

from permaplug.demo import chunks

DIMS = ("valid_time", "latitude", "longitude")


def read_fields(path: Path) -> tuple[dict[str, np.ndarray], tuple[int, ...]]:
    """Every 3-D variable of ``path`` as float32 (NaN where masked) and its chunk shape."""
    with netCDF4.Dataset(path) as ds:
        names = [n for n, v in ds.variables.items() if v.dimensions == DIMS]
        chunk = tuple(ds[names[0]].chunking())
        return {n: ds[n][:].filled(np.nan).astype(np.float32) for n in names}, chunk


def _empty(path: Path, shape: tuple[int, ...]) -> netCDF4.Dataset:
    ds = netCDF4.Dataset(path, "w")
    for d, n in zip(DIMS, shape):
        ds.createDimension(d, n)
    return ds


def write_library(path: Path, fields: dict[str, np.ndarray], chunk: tuple[int, ...],
                  zlib: bool) -> None:
    shape = next(iter(fields.values())).shape
    with _empty(path, shape) as ds:
        for name, values in fields.items():
            var = ds.createVariable(name, "f4", DIMS, zlib=zlib, complevel=1, shuffle=zlib,
                                    chunksizes=chunk, fill_value=np.float32(np.nan))
            var[:] = values


def write_isal(path: Path, fields: dict[str, np.ndarray], chunk: tuple[int, ...]) -> None:
    shape = next(iter(fields.values())).shape
    _empty(path, shape).close()
    variables = [chunks.Variable(n, {}, lambda t0, t1, v=v: v[t0:t1]) for n, v in fields.items()]
    chunks.write_deflated(path, variables, DIMS, chunk, shape[0])


def same(a: Path, b: Path, names: list[str]) -> bool:
    with netCDF4.Dataset(a) as x, netCDF4.Dataset(b) as y:
        return all(np.array_equal(x[n][:].filled(np.nan), y[n][:].filled(np.nan), equal_nan=True)
                   for n in names)


def run(path: Path, repeats: int) -> dict:
    fields, chunk = read_fields(path)
    mb = sum(v.nbytes for v in fields.values()) / 1e6
    ways = {"uncompressed": lambda p: write_library(p, fields, chunk, zlib=False),
            "zlib in HDF5": lambda p: write_library(p, fields, chunk, zlib=True),
            "ISA-L chunks": lambda p: write_isal(p, fields, chunk)}
    cpu: dict[str, list[float]] = {k: [] for k in ways}
    size: dict[str, int] = {}
    load0 = load_average()
    with tempfile.TemporaryDirectory(prefix="bench-writer-") as tmp:
        for i in range(repeats):
            for k, write in ways.items():
                out = Path(tmp) / f"{k.split()[0]}-{i}.nc"
                c0 = time.process_time()
                write(out)
                cpu[k].append(time.process_time() - c0)
                size[k] = out.stat().st_size
                if i:
                    continue
                print(f"{k}: {cpu[k][-1]:.2f} s CPU, {size[k] / 1e6:.0f} MB", flush=True)
        names = list(fields)
        equal = all(same(Path(tmp) / "uncompressed-0.nc", Path(tmp) / f"{k.split()[0]}-0.nc",
                         names) for k in ways if k != "uncompressed")
    med = {k: statistics.median(v) for k, v in cpu.items()}
    return {"file": path, "variables": len(fields), "shape": next(iter(fields.values())).shape,
            "chunk": chunk, "mb": mb, "cpu": cpu, "median": med, "size": size,
            "equal": equal, "load": (load0, load_average()), "repeats": repeats}


def render(r: dict) -> str:
    med, floor = r["median"], r["median"]["uncompressed"]
    lines = ["## Writer of the ERA5-Land-layout files (issue 16 item 2)", "",
             f"Machine: {machine()}. data: demo emulator.", "",
             (f"`{r['file'].name}`: {r['variables']} variables of {r['shape']} float32 "
              f"({r['mb']:.0f} MB), chunks {r['chunk']}; each way {r['repeats']} times, "
              "alternating, in one process; median CPU seconds."), "",
             "| writer | CPU (s) | MB/s | file (MB) | / floor (CPU) | / zlib in HDF5 (CPU) |",
             "|---|---:|---:|---:|---:|---:|"]
    for k, c in med.items():
        lines.append(f"| {k} | {c:.2f} | {r['mb'] / c:.0f} | {r['size'][k] / 1e6:.0f} | "
                     f"{c / floor:.2f} | {c / med['zlib in HDF5']:.2f} |")
    lines += ["", (f"ISA-L chunks: {med['zlib in HDF5'] / med['ISA-L chunks']:.1f} x less CPU "
                   f"than zlib in HDF5, file {r['size']['ISA-L chunks'] / r['size']['zlib in HDF5']:.3f}"
                   " x its size. All three files read back equal: "
                   f"{r['equal']}. 1-minute load {r['load'][0]:.1f} before, "
                   f"{r['load'][1]:.1f} after."),
              "", ("Reproduce: `python benchmarks/bench_writer.py --file TRUTH.nc --repeats 3 "
                   "--write`.")]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file", type=Path, help="a demo truth file (default: the cached default "
                    "demo's RCP 8.5 truth file, built on first use)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = ap.parse_args()
    path = args.file
    if path is None:
        from permaplug.demo.build import ensure_demo_catalog, truth_file

        path = ensure_demo_catalog(progress=False).parent / truth_file("rcp85")
    if not path.exists():
        raise SystemExit(f"{path}: no such file")
    text = render(run(path, args.repeats))
    print(text)
    if args.write:
        write_section("writer", text)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
