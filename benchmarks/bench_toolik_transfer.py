"""Transfer from the emulator to the real Toolik record (issue 14.4).

For each network: (1) trained on Toolik only, (2) trained on the demo emulator's band 4 (the
band Toolik lies in) and applied to Toolik unchanged, (3) the emulator model fine-tuned on
Toolik's training years. Same inputs everywhere (the variables both tables have, plus the
calendar; see ``permaplug.training.transfer``), Toolik test years 2013-2021, RMSE per layer
(degC); climatology and linear baselines fitted on Toolik for reference. Seeded: the same
command gives the same table.

    python benchmarks/bench_toolik_transfer.py [--networks gru tcn ...] [--epochs 50]
        [--demo-version 1] [--write]

``--write`` puts the table into the "Toolik transfer" section of benchmarks/RESULTS.md (between
markers) and the raw numbers into benchmarks/toolik_transfer.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")
JSON = Path(__file__).with_name("toolik_transfer.json")
START, END = "<!-- toolik-transfer:start -->", "<!-- toolik-transfer:end -->"


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("MPLBACKEND", "Agg")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", nargs="+",
                        default=["tcn", "transformer", "conv1dlstm", "gru", "bilstm"])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--finetune-epochs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--demo-version", default=None,
                        help="demo emulator version to pretrain on (default: the current one)")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)

    import torch

    from permaplug.core.catalog import load_catalog
    from permaplug.data.assemble import assemble_table
    from permaplug.training.transfer import TransferSetup, compare_transfer, markdown

    torch.set_num_threads(1)
    setup = TransferSetup(epochs=args.epochs, finetune_epochs=args.finetune_epochs,
                          seed=args.seed)
    from permaplug.demo import ensure_demo_catalog

    demo = ensure_demo_catalog(progress=False, **(
        {"version": args.demo_version} if args.demo_version else {}))
    emulator = assemble_table(load_catalog(demo), source="era5land")
    site = assemble_table(load_catalog("toolik"), source="era5-toolik", spatial="sites")
    result = compare_transfer(emulator, site, args.networks, setup, echo=print)
    table = markdown(result)
    text = (f"data: {result['data']['site']} (target); pretraining data: "
            f"{result['data']['emulator']} band {setup.band}\n\n"
            f"Inputs: {', '.join(result['inputs'])}; Toolik training {setup.site_train_years[0]}-"
            f"{setup.site_train_years[1]} (last {setup.val_fraction:.0%} of the months validate), "
            f"test {setup.site_test_years[0]}-{setup.site_test_years[1]}; emulator "
            f"{setup.emulator_years[0]}-{setup.emulator_years[1] - 1}; {setup.epochs} epochs, "
            f"fine-tune {setup.finetune_epochs} epochs at lr {setup.finetune_lr:g} with early "
            f"stopping ({setup.early_stopping}); seed {setup.seed}. RMSE in degC.\n\n{table}\n")
    print(text)
    if args.write:
        JSON.write_text(json.dumps(result, indent=1, default=str) + "\n")
        doc = RESULTS.read_text(encoding="utf-8")
        block = f"{START}\n{text}{END}"
        if START in doc and END in doc:
            doc = doc[: doc.index(START)] + block + doc[doc.index(END) + len(END):]
        else:
            doc = doc.rstrip() + "\n\n## Toolik transfer (real observations)\n\n" + block + "\n"
        RESULTS.write_text(doc, encoding="utf-8")
        print(f"wrote {RESULTS} and {JSON}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
