"""Transfer from the emulator to the real Toolik record (issue 14.4).

For each network: (1) trained on Toolik only, (2) trained on the demo emulator's band 4 (the
band Toolik lies in) and applied to Toolik unchanged, (3) the emulator model fine-tuned on
Toolik's training years. Same inputs everywhere (the variables both tables have, plus the
calendar; see ``permaplug.training.transfer``), Toolik test years 2013-2021, RMSE per layer
(degC); climatology and linear baselines fitted on Toolik for reference. Seeded: the same
command gives the same table.

The inputs default to the ``toolik`` catalog's selected features that the emulator table can
supply too (``d2m`` is not in the demo's ERA5-Land files: left out, and said so); ``--inputs``
names them explicitly (e.g. ``--inputs t2m tp`` for the earlier comparison).

    python benchmarks/bench_toolik_transfer.py [--networks gru tcn ...] [--epochs 50]
        [--demo-version 1] [--inputs t2m tp ...] [--seeds 0 1 2] [--write]

Several seeds: the table gives the median RMSE over the seeds (each seed's numbers are in the
JSON).

``--write`` puts the table into the "Toolik transfer" section of benchmarks/RESULTS.md (between
markers) and the raw numbers into benchmarks/toolik_transfer.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from _common import RESULTS, write_section

JSON = Path(__file__).with_name("toolik_transfer.json")


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("MPLBACKEND", "Agg")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", nargs="+",
                        default=["tcn", "transformer", "conv1dlstm", "gru", "bilstm"])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--finetune-epochs", type=int, default=50)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--inputs", nargs="+", default=None,
                        help="dynamic inputs (default: the toolik catalog's features that the "
                             "emulator table can supply too)")
    parser.add_argument("--demo-version", default=None,
                        help="demo emulator version to pretrain on (default: the current one)")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)

    import torch

    from permaplug.core.catalog import load_catalog
    from permaplug.data.assemble import assemble_table
    from permaplug.demo import ensure_demo_catalog
    from permaplug.demo.cache import DEMO_VERSION
    from permaplug.training.transfer import (
        TransferSetup,
        compare_transfer,
        markdown,
        mean_over_networks,
        median_over_seeds,
        shared_inputs,
    )

    torch.set_num_threads(1)
    version = args.demo_version or DEMO_VERSION
    demo = ensure_demo_catalog(progress=False, version=version)
    emulator = assemble_table(load_catalog(demo), source="era5land")
    toolik = load_catalog("toolik")
    site = assemble_table(toolik, source="era5-toolik", spatial="sites")
    wanted = args.inputs or list(toolik.metadata["run_defaults"].get("features") or ["t2m", "tp"])
    inputs = shared_inputs([emulator, site], wanted)
    left_out = [f for f in wanted if f not in inputs and f not in ("year", "month_sin",
                                                                    "month_cos")]
    if left_out:
        print(f"left out (the emulator table cannot supply them): {', '.join(left_out)}")
    runs = []
    for seed in args.seeds:
        setup = TransferSetup(inputs=tuple(inputs), epochs=args.epochs,
                              finetune_epochs=args.finetune_epochs, seed=seed)
        runs.append(compare_transfer(emulator, site, args.networks, setup, echo=print))
    result = median_over_seeds(runs)
    result["demo_version"] = version
    result["left_out"] = left_out
    table = markdown(result)
    seeds = ", ".join(map(str, args.seeds))
    medians = {k: mean_over_networks(result, k) for k in ("stl1", "stl2", "stl3")}
    summary = "; ".join(
        f"{v} {' / '.join(f'{medians[k][v]:.3f}' for k in medians)}" for v in medians["stl1"])
    clim = result["baselines"]["climatology"]
    text = (f"data: {result['data']['site']} (target); pretraining data: "
            f"{result['data']['emulator']} (demo v{version}) band {setup.band}\n\n"
            f"Inputs: {', '.join(result['inputs'])}"
            + (f" (the toolik catalog's {', '.join(left_out)} left out: the emulator table "
               "lacks it)" if left_out else "")
            + f"; Toolik training {setup.site_train_years[0]}-"
            f"{setup.site_train_years[1]} (last {setup.val_fraction:.0%} of the months validate), "
            f"test {setup.site_test_years[0]}-{setup.site_test_years[1]}; emulator "
            f"{setup.emulator_years[0]}-{setup.emulator_years[1] - 1}; {setup.epochs} epochs, "
            f"fine-tune {setup.finetune_epochs} epochs at lr {setup.finetune_lr:g} with early "
            f"stopping ({setup.early_stopping}); "
            + (f"median over seeds {seeds}" if len(args.seeds) > 1 else f"seed {seeds}")
            + f". RMSE in degC.\n\n{table}\n\n"
            f"Median over the networks (0-7 / 7-28 / 28-100 cm): {summary}; Toolik climatology "
            + " / ".join(f"{clim[k]['rmse']:.3f}" for k in ("stl1", "stl2", "stl3")) + ".\n")
    print(text)
    if args.write:
        result["per_seed"] = runs
        JSON.write_text(json.dumps(result, indent=1, default=str) + "\n")
        write_section("toolik-transfer", text)
        print(f"wrote {RESULTS} and {JSON}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
