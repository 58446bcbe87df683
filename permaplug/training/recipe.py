"""Recipes: named, declarative sets of run settings (inputs, band identity, statics, target
normalisation, validation, the projections' corrector).

A recipe is a YAML file. The package ships ``paper`` (the published pipeline, the default) and
``physical`` (inputs that mean the same in history and scenarios) in ``permaplug/recipes/``;
``permaplug run --recipe FILE`` takes a user's own. Keys (all but ``name`` optional)::

    name: my-recipe
    description: one paragraph
    features: default | [t2m, tp, snowpack_dd, ...]   # default: the paper's (or a site table's own)
    static: all | [lith_sedimentary, ...] | []        # all: every static variable of the table
    band_identity: true | false                       # the learnable band (site) embedding
    target_normalisation: per_layer | none            # z-score per layer, or degC as they are
    z: true | false                                   # the scenario signal (with features: default)
    validation: {fraction: 0.15, early_stopping: 10}  # from the training years, never the test
    projection: {corrector: qdm, corrector_options: {preserve_order: true}}
    allow_inconsistent: [swvl1, ...]                  # fed to projections despite another meaning
    hparams: {gru: {hidden_size: 64}}

:func:`load_recipe` checks every key and value and returns the :class:`RunConfig` fields the
recipe sets (:attr:`Recipe.settings`); options on the command line and in ``--config`` override
them (``permaplug run`` documents the order).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from permaplug.core.errors import ConfigError

DEFAULT_RECIPE = "paper"
"""The recipe of ``permaplug run`` without ``--recipe``: the published pipeline."""
TARGET_NORMALISATIONS = ("per_layer", "none")
_KEYS = {"name", "description", "features", "static", "band_identity", "target_normalisation",
         "z", "validation", "projection", "allow_inconsistent", "hparams"}


@dataclass(frozen=True)
class Recipe:
    """A checked recipe: its name, where it was read, its description and the run settings
    (``RunConfig`` field -> value) it sets."""

    name: str
    source: str
    description: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    text: str = ""  # the YAML as written (kept in the run folder)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "description": self.description,
                "settings": dict(self.settings)}


def bundled_recipes() -> dict[str, Path]:
    """The recipes shipped in the package, by name."""
    folder = resources.files("permaplug") / "recipes"
    return {Path(str(p)).stem: Path(str(p)) for p in folder.iterdir()
            if str(p).endswith(".yaml")}


def _names(value: Any, key: str, origin: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"recipe {origin}: {key} must be a list of names")
    return [v.strip() for v in value]


def _bool(value: Any, key: str, origin: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"recipe {origin}: {key} must be true or false, got {value!r}")
    return value


def parse_recipe(data: Any, origin: str) -> Recipe:
    """A :class:`Recipe` from the mapping ``data`` read from ``origin`` (ConfigError naming the
    key for anything unknown or of the wrong type)."""
    if not isinstance(data, dict):
        raise ConfigError(f"recipe {origin}: expected a YAML mapping")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ConfigError(f"recipe {origin}: unknown key(s) {', '.join(unknown)}; known: "
                          f"{', '.join(sorted(_KEYS))}")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"recipe {origin}: needs a 'name'")
    s: dict[str, Any] = {"recipe": name.strip()}
    if "features" in data:
        feats = data["features"]
        s["features"] = None if feats in ("default", None) else _names(feats, "features", origin)
        if s["features"] == []:
            raise ConfigError(f"recipe {origin}: features is empty")
    if "static" in data:
        st = data["static"]
        s["static"] = None if st in ("all", None) else _names(st, "static", origin) if st else []
    if "band_identity" in data:
        s["band_identity"] = _bool(data["band_identity"], "band_identity", origin)
    if "target_normalisation" in data:
        tn = data["target_normalisation"]
        if tn not in TARGET_NORMALISATIONS:
            raise ConfigError(f"recipe {origin}: target_normalisation {tn!r}; choose "
                              f"{' or '.join(TARGET_NORMALISATIONS)}")
        s["target_norm"] = tn
    if "z" in data:
        s["use_z"] = _bool(data["z"], "z", origin)
    val = data.get("validation") or {}
    if not isinstance(val, dict) or set(val) - {"fraction", "early_stopping"}:
        raise ConfigError(f"recipe {origin}: validation takes fraction and early_stopping")
    if "fraction" in val:
        s["val_fraction"] = float(val["fraction"])
    if "early_stopping" in val:
        s["early_stopping"] = int(val["early_stopping"])
    proj = data.get("projection") or {}
    if not isinstance(proj, dict) or set(proj) - {"corrector", "corrector_options"}:
        raise ConfigError(f"recipe {origin}: projection takes corrector and corrector_options")
    if "corrector" in proj:
        if not isinstance(proj["corrector"], str):
            raise ConfigError(f"recipe {origin}: projection.corrector must be a name")
        s["corrector"] = proj["corrector"]
    if "corrector_options" in proj:
        if not isinstance(proj["corrector_options"], dict):
            raise ConfigError(f"recipe {origin}: projection.corrector_options must be a mapping")
        s["corrector_options"] = dict(proj["corrector_options"])
    if "allow_inconsistent" in data:
        s["allow_inconsistent"] = _names(data["allow_inconsistent"] or [], "allow_inconsistent",
                                         origin)
    if "hparams" in data:
        if not isinstance(data["hparams"], dict):
            raise ConfigError(f"recipe {origin}: hparams must map model names to settings")
        s["hparams"] = {str(k): dict(v or {}) for k, v in data["hparams"].items()}
    desc = " ".join(str(data.get("description") or "").split())
    return Recipe(name.strip(), origin, desc, s)


def load_recipe(name_or_path: str) -> Recipe:
    """The bundled recipe ``name_or_path``, or the recipe file at that path.

    ConfigError (one line) for an unknown name, an unreadable file or a bad key."""
    bundled = bundled_recipes()
    if name_or_path in bundled:
        path, origin = bundled[name_or_path], name_or_path
    else:
        path, origin = Path(name_or_path), str(name_or_path)
        if path.suffix not in (".yaml", ".yml") or not path.is_file():
            raise ConfigError(f"--recipe {name_or_path!r}: not a bundled recipe "
                              f"({', '.join(sorted(bundled))}) nor a recipe YAML file")
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"recipe {origin}: cannot read ({exc})") from None
    recipe = parse_recipe(data, origin)
    return Recipe(recipe.name, recipe.source, recipe.description, recipe.settings, text)


def recipe_line(cfg: Any) -> str:
    """One line naming a run's recipe and what it chose (inputs, band identity, statics,
    the projections' corrector)."""
    statics = (("all" if cfg.features is None else "those selected") if cfg.static is None
               else ", ".join(cfg.static) or "none")
    inputs = "the paper's" if cfg.features is None else ", ".join(cfg.features)
    return (f"recipe: {cfg.recipe} (inputs: {inputs}; band identity "
            f"{'on' if cfg.band_identity else 'off'}; statics: {statics}; projections: "
            f"{cfg.corrector})")
