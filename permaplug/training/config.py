"""The resolved configuration of a run (``config.yaml``) and hyper-parameter parsing."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from permaplug.core import schema
from permaplug.core.atomic import write_text_atomic
from permaplug.core.errors import ConfigError
from permaplug.core.plugins import get_registry
from permaplug.data.features import GRID_STATIC, paper_features

NETWORKS: tuple[str, ...] = ("tcn", "transformer", "conv1dlstm", "gru", "bilstm")
BASELINES: tuple[str, ...] = ("persistence", "climatology", "seasonal-naive", "linear")
CONFIG_FILE = "config.yaml"


@dataclass
class RunConfig:
    """Everything ``permaplug run`` needs; written to ``config.yaml`` (defaults documented in
    docs/models.md)."""

    source: str = "era5land"
    catalog: str | None = None
    spatial: str = "bands"  # bands | grid (issue 8: cells with a band coordinate) | sites
    models: list[str] = field(default_factory=lambda: ["all"])
    epochs: int = 50
    batch_size: int = 32
    lr: float = 1e-3
    lr_schedule: str = "cosine"
    weight_decay: float = 0.0
    seed: int = 0
    device: str = "cpu"
    train_years: list[int] = field(default_factory=lambda: list(schema.TRAIN_YEARS))
    test_years: list[int] = field(default_factory=lambda: list(schema.TEST_YEARS))
    val_fraction: float = 0.0  # the CLI default and the recipes set it (docs/recipes.md)
    early_stopping: int = 0
    use_z: bool = True
    window: int = schema.WINDOW
    static: list[str] | None = None  # None: every static feature the table has
    features: list[str] | None = None  # None: the paper's inputs (data.features.paper_features)
    drop_features: list[str] = field(default_factory=list)  # e.g. ["year"]
    hparams: dict[str, dict[str, Any]] = field(default_factory=dict)
    threads: int | None = None
    recipe: str = "paper"  # the recipe the settings came from (training/recipe.py)
    band_identity: bool = True  # False: networks get no band (site) embedding
    target_norm: str = "per_layer"  # per_layer z-score | none (degC as they are)
    corrector: str = "qm"  # the projections' default bias corrector (the recipe's)
    corrector_options: dict[str, Any] = field(default_factory=dict)
    allow_inconsistent: list[str] = field(default_factory=list)  # see projection/consistency.py

    @classmethod
    def from_dict(cls, data: dict[str, Any], origin: str = "config") -> RunConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{origin}: unknown key(s) {', '.join(unknown)}; "
                              f"known: {', '.join(sorted(known))}")
        cfg = cls(**data)
        cfg.validate()
        return cfg

    @classmethod
    def load(cls, path: Path | str) -> RunConfig:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: cannot read the run configuration ({exc})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the run configuration must be a YAML mapping")
        data = {k: v for k, v in data.items() if k != "resolved"}
        return cls.from_dict(data, str(path))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: Path, resolved: dict[str, Any] | None = None) -> Path:
        data = self.to_dict()
        if resolved:
            data["resolved"] = resolved
        return write_text_atomic(path, yaml.safe_dump(data, sort_keys=False))

    def validate(self) -> None:
        if self.spatial not in ("bands", "grid", "sites"):
            raise ConfigError(f"--spatial {self.spatial!r}: use 'bands', 'grid' or 'sites'")
        for key in ("train_years", "test_years"):
            years = getattr(self, key)
            if len(years) != 2 or int(years[0]) > int(years[1]):
                raise ConfigError(f"{key}: expected FIRST-LAST years, got {years}")
            setattr(self, key, [int(years[0]), int(years[1])])
        a, b = self.train_years, self.test_years
        if a[0] <= b[1] and b[0] <= a[1]:
            raise ConfigError(f"train years {a[0]}-{a[1]} overlap test years {b[0]}-{b[1]}")
        if int(self.epochs) < 1 or int(self.batch_size) < 1:
            raise ConfigError("epochs and batch_size must be at least 1")
        if not 0.0 <= float(self.val_fraction) < 1.0:
            raise ConfigError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if int(self.early_stopping) < 0:
            raise ConfigError("early_stopping must be >= 0")
        if int(self.early_stopping) and not float(self.val_fraction):
            raise ConfigError("--early-stopping needs a validation split (--val-fraction > 0)")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ConfigError(f"lr_schedule {self.lr_schedule!r}: choose constant or cosine")
        if float(self.weight_decay) < 0 or float(self.lr) <= 0:
            raise ConfigError("lr must be > 0 and weight_decay >= 0")
        if int(self.window) < 13:
            raise ConfigError("window must be at least 13 months (seasonal-naive looks back 12)")
        if self.features is not None:
            if isinstance(self.features, str):
                self.features = [f for f in self.features.split(",") if f.strip()]
            if not isinstance(self.features, list) or not self.features or not all(
                    isinstance(f, str) and f.strip() for f in self.features):
                raise ConfigError("features: expected a non-empty list of feature names")
            self.features = [f.strip() for f in self.features]
        bad = []
        if self.drop_features:  # the declarations import the source classes: only when needed
            reg = get_registry()
            known = (set(reg.variables()) | set(reg.names("feature")) | set(GRID_STATIC)
                     | set(self.features or ()))
            bad = [f for f in self.drop_features if f not in known]
        if bad:
            raise ConfigError(f"--drop-feature {bad[0]!r}: not an input feature (dynamic: "
                              f"{', '.join(paper_features(False))}; or a static feature; "
                              "z is dropped with --no-z)")
        if self.target_norm not in ("per_layer", "none"):
            raise ConfigError(f"target_norm {self.target_norm!r}: choose per_layer or none")
        if not isinstance(self.band_identity, bool):
            raise ConfigError(f"band_identity must be true or false, got {self.band_identity!r}")
        if not isinstance(self.corrector_options, dict):
            raise ConfigError("corrector_options must be a mapping of option -> value")
        if not isinstance(self.hparams, dict):
            raise ConfigError("hparams must map model names to {name: value}")


def parse_years(text: str, option: str) -> list[int]:
    """``"2001-2018"`` or ``"2019"`` -> ``[first, last]``."""
    try:
        parts = [int(p) for p in str(text).split("-")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or parts[0] > parts[1]:
        raise ConfigError(f"{option} {text!r}: expected YEAR or FIRST-LAST, e.g. 2001-2018")
    return parts


def resolve_models(names: list[str]) -> list[str]:
    """Expand ``all`` (every registered model, built-ins first), check every name is registered,
    and append the baselines (shown in every comparison)."""
    reg = get_registry()
    known = [n for n in reg.names("model") if n not in reg.conflicting("model")]
    out: list[str] = []
    for name in names:
        if name == "all":  # a name two plugins claim is left out of 'all' (using it is an error)
            extra = [n for n in known if n not in NETWORKS + BASELINES]
            out += [n for n in NETWORKS if n in known] + extra
        else:
            reg.get("model", name)  # UnknownPluginError naming the model
            out.append(name)
    out += [b for b in BASELINES if b in known]
    return list(dict.fromkeys(out))


def parse_hparams(pairs: list[str] | tuple[str, ...], models: list[str],
                  base: dict[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """``["hidden_size=128", "tcn.channels=32"]`` -> per-model overrides.

    An unscoped key applies to every selected model that has it (ConfigError if none does);
    values are parsed as YAML scalars (``128`` -> int, ``0.1`` -> float).
    """
    reg = get_registry()
    out = {k: dict(v) for k, v in (base or {}).items()}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--hparam {pair!r}: expected KEY=VALUE or MODEL.KEY=VALUE")
        value = yaml.safe_load(raw)
        scope, dot, name = key.partition(".")
        if dot and scope in reg.names("model"):
            targets, key = [scope], name
            if key not in reg.get("model", scope).default_hparams:
                raise ConfigError(f"--hparam {pair!r}: model {scope!r} has no hyper-parameter "
                                  f"{key!r}; known: {', '.join(reg.get('model', scope).default_hparams)}")
        else:
            targets = [m for m in models if key in reg.get("model", m).default_hparams]
            if not targets:
                raise ConfigError(f"--hparam {pair!r}: no selected model has a hyper-parameter "
                                  f"{key!r}")
        for m in targets:
            out.setdefault(m, {})[key] = value
    known = set(reg.names("model"))
    for m, values in out.items():  # wrong types fail here, before any run folder is made
        check = getattr(reg.get("model", m), "check_hparams", None) if m in known else None
        if check is not None:
            check(values)
    return out
