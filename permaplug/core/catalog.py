"""intake-2 catalogs: one reader (:class:`PermaplugReader`) dispatching to registered sources.

A permaplug catalog is an intake version-2 YAML file whose every entry uses
``permaplug.core.catalog:PermaplugReader`` with kwargs ``plugin`` (a registered source name) and
``options`` (the source's keyword arguments)::

    version: 2
    metadata: {description: CMIP6 IPSL-CM6A-LR}
    entries:
      cmip:
        reader: permaplug.core.catalog:PermaplugReader
        kwargs:
          plugin: cmip
          options: {paths: ["{CATALOG_DIR}/cmip6/*.nc"], scenarios: [ssp585]}
        metadata: {role: scenario, data_label: "CMIP6 IPSL-CM6A-LR (real)"}

A catalog written in intake's complete form (top-level ``aliases``, ``data``,
``user_parameters``; per entry ``reader``, ``output_instance``, ``user_parameters``), like every
bundled catalog and the demo catalog, opens with intake alone::

    import intake
    cat = intake.from_yaml_file("permaplug/catalogs/real-tables.yaml")
    ds = cat["cmip5-ipsl-box"].read()   # PermaplugReader -> the cmip source -> xarray.Dataset

(intake fills ``{CATALOG_DIR}``; the reader fills ``{PERMAPLUG_RESOURCES}``.) permaplug also
accepts the short form above and fills in the missing boilerplate (:func:`complete_catalog`).
The file is checked with ``yaml.safe_load`` *before* intake sees it:

* every entry names our reader (no other importable class), and a registered source plugin;
* no intake templates except ``{CATALOG_DIR}`` and ``{PERMAPLUG_RESOURCES}`` (the package's
  bundled data folder); no ``data``/``user_parameters`` sections (they could import classes);
* path options (keys ``path``, ``paths``, ``root``, ``region``, ``sftlf``, ``unit_table``, or
  ending in ``_path``, ``_paths``, ``_file``, ``_files``, ``_dir``) resolve relative to the catalog's folder and may not leave it
  (nor be absolute) unless the catalog sets ``metadata: {allow_absolute_paths: true}``.

Every error is a :class:`CatalogError` naming the file and the entry.
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from permaplug.core import scenarios as scenario_roles
from permaplug.core.errors import CatalogError, DataError, PermaplugError, UnknownPluginError
from permaplug.core.variables import Variable

if TYPE_CHECKING:  # intake and xarray are imported when an entry is opened, not to validate
    import numpy as np
    import xarray as xr
    from intake.readers.entry import Catalog

    from permaplug.core.reader import PermaplugReader

READER = "permaplug.core.catalog:PermaplugReader"
ENTRY_CLS = "intake.readers.entry:ReaderDescription"
ROLES = ("reanalysis", "scenario", "static", "scenario_truth", "observations", "dynamic")
"""``dynamic``: further monthly inputs on the reanalysis' months and units, joined to the
training table when the run's features need a variable they provide."""
ALLOWED_TEMPLATES = ("CATALOG_DIR", "PERMAPLUG_RESOURCES")
_TEMPLATE_RE = re.compile(r"\{([^{}]*)\}")
_PATH_KEYS = ("path", "paths", "root", "region", "sftlf", "unit_table")
_PATH_SUFFIXES = ("_path", "_paths", "_file", "_files", "_dir")


def resources_dir() -> Path:
    """The package's bundled data folder (``permaplug/resources``)."""
    return Path(str(resources.files("permaplug") / "resources"))


def __getattr__(name: str) -> Any:
    """``PermaplugReader`` (the name catalogs use) lives in :mod:`permaplug.core.reader` and
    is imported on first use, with intake."""
    if name == "PermaplugReader":
        from permaplug.core.reader import PermaplugReader

        return PermaplugReader
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class CatalogEntry:
    """One validated catalog entry: its source plugin, resolved options and metadata."""

    name: str
    plugin: str
    options: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    @property
    def role(self) -> str:
        return str(self.metadata.get("role", ""))


def _is_path_key(key: str) -> bool:
    return key in _PATH_KEYS or key.endswith(_PATH_SUFFIXES)


def path_options(options: dict[str, Any]) -> list[str]:
    """The values of the path options in ``options`` (files, folders or glob patterns), in
    order; nested mappings and lists are searched too."""
    found: list[str] = []

    def walk(val: Any, is_path: bool) -> None:
        if isinstance(val, dict):
            for k, v in val.items():
                walk(v, _is_path_key(str(k)))
        elif isinstance(val, (list, tuple)):
            for v in val:
                walk(v, is_path)
        elif is_path and isinstance(val, str):
            found.append(val)

    walk(options, False)
    return found


def _inside(path: str, root: Path) -> bool:
    """True when ``path`` stays inside ``root`` both as written and with symbolic links
    resolved (a link inside the catalog folder pointing elsewhere is an escape)."""
    for candidate, base in ((os.path.normpath(path), os.path.normpath(root)),
                            (os.path.realpath(path), os.path.realpath(root))):
        try:
            Path(candidate).relative_to(base)
        except ValueError:
            return False
    return True


class _Resolver:
    """Checks templates and resolves path options of one catalog."""

    def __init__(self, file: Path, allow_absolute: bool) -> None:
        self.file = file
        self.folder = file.parent.resolve()
        self.allow_absolute = allow_absolute
        self.values = {"CATALOG_DIR": str(self.folder), "PERMAPLUG_RESOURCES": str(resources_dir())}

    def fail(self, entry: str, msg: str) -> CatalogError:
        return CatalogError(f"{self.file}: entry {entry!r}: {msg}")

    def value(self, entry: str, key: str, val: Any, is_path: bool = False) -> Any:
        if isinstance(val, dict):
            return {k: self.value(entry, str(k), v, _is_path_key(str(k))) for k, v in val.items()}
        if isinstance(val, (list, tuple)):
            return [self.value(entry, key, v, is_path) for v in val]
        if not isinstance(val, str):
            return val
        templates = _TEMPLATE_RE.findall(val)
        for t in templates:
            if t not in ALLOWED_TEMPLATES:
                allowed = ", ".join("{" + a + "}" for a in ALLOWED_TEMPLATES)
                raise self.fail(entry, f"option {key!r} uses template {{{t}}}; only "
                                f"{allowed} are allowed")
        resolved = val
        for t in ALLOWED_TEMPLATES:
            resolved = resolved.replace("{" + t + "}", self.values[t])
        if not (is_path or templates):
            return resolved
        if not os.path.isabs(resolved):
            if "://" in resolved:
                raise self.fail(entry, f"option {key!r}: remote path {val!r} is not supported")
            resolved = str(self.folder / resolved)
        resolved = os.path.normpath(resolved)
        if "PERMAPLUG_RESOURCES" in templates:
            ok = _inside(resolved, resources_dir())
        else:
            ok = _inside(resolved, self.folder)
        if not ok and not self.allow_absolute:
            raise self.fail(entry, f"option {key!r}: path {val!r} leaves the catalog folder "
                            f"{self.folder} (set metadata: {{allow_absolute_paths: true}} "
                            "to allow it)")
        return resolved


def validate_catalog(path: Path, raw: Any) -> tuple[dict[str, Any], dict[str, CatalogEntry]]:
    """Check a catalog's YAML content; return (intake v2 dict, entries with resolved options)."""
    from permaplug.core.plugins import get_registry

    if not isinstance(raw, dict):
        raise CatalogError(f"{path}: not a catalog (expected a YAML mapping)")
    if raw.get("version") != 2:
        raise CatalogError(f"{path}: 'version: 2' (an intake-2 catalog) is required")
    for key in ("data", "user_parameters"):
        if raw.get(key):
            raise CatalogError(f"{path}: section {key!r} is not allowed in a permaplug catalog")
    meta = raw.get("metadata") or {}
    entries = raw.get("entries")
    if not isinstance(meta, dict):
        raise CatalogError(f"{path}: 'metadata' must be a mapping")
    if not isinstance(entries, dict) or not entries:
        raise CatalogError(f"{path}: no 'entries'")
    resolver = _Resolver(path, bool(meta.get("allow_absolute_paths", False)))
    known = get_registry().names("source")
    out_entries: dict[str, Any] = {}
    parsed: dict[str, CatalogEntry] = {}
    for name, e in entries.items():
        name = str(name)
        if not isinstance(e, dict):
            raise resolver.fail(name, "must be a mapping")
        extra = set(e) - {"cls", "reader", "kwargs", "metadata", "output_instance",
                          "user_parameters", "description"}
        if extra:
            raise resolver.fail(name, f"unknown key(s) {sorted(extra)}")
        if e.get("cls", ENTRY_CLS) != ENTRY_CLS:
            raise resolver.fail(name, f"cls {e['cls']!r} is not allowed (use {ENTRY_CLS})")
        if e.get("reader", READER) != READER:
            raise resolver.fail(name, f"reader {e['reader']!r} is not allowed; every entry "
                                f"uses {READER}")
        if e.get("user_parameters"):
            raise resolver.fail(name, "user_parameters are not allowed")
        if e.get("output_instance", "xarray:Dataset") != "xarray:Dataset":
            raise resolver.fail(name, "output_instance must be xarray:Dataset")
        kwargs = e.get("kwargs") or {}
        if not isinstance(kwargs, dict):
            raise resolver.fail(name, "'kwargs' must be a mapping")
        if set(kwargs) - {"plugin", "options"}:
            raise resolver.fail(name, f"kwargs may only be 'plugin' and 'options', got "
                                f"{sorted(kwargs)}")
        plugin = kwargs.get("plugin")
        if not isinstance(plugin, str) or not plugin:
            raise resolver.fail(name, "kwargs.plugin (a registered source name) is required")
        if plugin not in known:
            err = UnknownPluginError("source", plugin, known)
            raise resolver.fail(name, str(err))
        options = kwargs.get("options") or {}
        if not isinstance(options, dict):
            raise resolver.fail(name, "kwargs.options must be a mapping")
        emeta = e.get("metadata") or {}
        if not isinstance(emeta, dict):
            raise resolver.fail(name, "'metadata' must be a mapping")
        role = emeta.get("role")
        if role is not None and role not in ROLES:
            raise resolver.fail(name, f"metadata.role {role!r}; use one of {', '.join(ROLES)}")
        if role == "scenario_truth" and not emeta.get("scenario"):
            raise resolver.fail(name, "role scenario_truth needs metadata.scenario "
                                "(the name of the scenario it is the truth of)")
        try:
            scenario_roles.metadata_attrs(emeta)
        except PermaplugError as exc:
            raise resolver.fail(name, str(exc)) from None
        resolved = resolver.value(name, "options", options)
        parsed[name] = CatalogEntry(name, plugin, resolved, dict(emeta),
                                    str(e.get("description", emeta.get("description", ""))))
        out_entries[name] = {
            "cls": ENTRY_CLS, "reader": READER,
            "kwargs": {"plugin": plugin, "options": resolved},
            "metadata": dict(emeta), "output_instance": "xarray:Dataset", "user_parameters": {},
        }
    intake_dict = {"version": 2, "aliases": {}, "data": {}, "user_parameters": {},
                   "metadata": dict(meta), "entries": out_entries}
    return intake_dict, parsed


def complete_catalog(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` (a catalog as a dict, short or complete form) in intake's complete form, which
    ``intake.from_yaml_file`` opens; options keep their templates (unlike
    :func:`validate_catalog`, which resolves them)."""
    entries = {}
    for name, e in (raw.get("entries") or {}).items():
        entries[name] = {"reader": READER, "output_instance": "xarray:Dataset",
                         "user_parameters": {}, **e, "metadata": dict(e.get("metadata") or {})}
    return {"version": 2, "aliases": {}, "data": {}, "user_parameters": {},
            **{k: v for k, v in raw.items() if k not in ("version", "entries")},
            "metadata": dict(raw.get("metadata") or {}), "entries": entries}


def _is_complete(raw: dict[str, Any]) -> bool:
    """True when intake can read the file itself (every key its ``Catalog.from_dict`` needs)."""
    top = all(k in raw for k in ("aliases", "data", "user_parameters", "metadata"))
    return top and all(isinstance(e, dict) and all(
        k in e for k in ("reader", "kwargs", "metadata", "output_instance", "user_parameters"))
        for e in raw["entries"].values())


class PermaplugCatalog:
    """A validated catalog: entry names, metadata, and opening entries as datasets."""

    def __init__(self, path: Path, metadata: dict[str, Any], entries: dict[str, CatalogEntry],
                 intake_dict: dict[str, Any], complete: bool = False) -> None:
        self.path = path
        self.metadata = metadata
        self._entries = entries
        self._intake_dict = intake_dict
        self._complete = complete
        self._intake: Catalog | None = None

    @property
    def intake(self) -> Catalog:
        """The intake catalog, built on first use (validating and listing entries import no
        intake): a file in intake's complete form is read by intake itself, as
        ``intake.from_yaml_file`` would; the short form from the completed, checked dict."""
        if self._intake is None:
            from intake.readers.entry import Catalog

            try:
                if self._complete:
                    cat = Catalog.from_yaml_file(str(self.path))
                else:
                    cat = Catalog.from_dict(self._intake_dict)
            except Exception as exc:
                raise CatalogError(f"{self.path}: intake could not build the catalog "
                                   f"({exc})") from exc
            if set(cat.entries) != set(self._entries) or any(
                    e.reader != READER for e in cat.entries.values()):
                raise CatalogError(f"{self.path}: the file changed while it was read; try again")
            self._intake = cat
        return self._intake

    def __repr__(self) -> str:
        return f"PermaplugCatalog({str(self.path)!r}, entries={self.names()})"

    def names(self) -> list[str]:
        """Entry names, in file order."""
        return list(self._entries)

    def entry(self, name: str) -> CatalogEntry:
        """The validated entry ``name`` (CatalogError if absent)."""
        try:
            return self._entries[name]
        except KeyError:
            raise CatalogError(f"{self.path}: no entry {name!r}; entries: "
                               f"{', '.join(self.names())}") from None

    def reader(self, name: str) -> PermaplugReader:
        """The intake reader of entry ``name``."""
        self.entry(name)
        return self.intake[name]

    def open(self, name: str, **overrides: Any) -> xr.Dataset:
        """Open entry ``name`` through intake; ``overrides`` update the source options.

        The dataset's data label is the entry's ``metadata.data_label`` when given (else the
        source's own); ``attrs['provenance']`` gains the catalog file and entry name.
        """
        entry = self.entry(name)
        options = {**entry.options, **overrides}
        ds = self.reader(name).read(options=options)
        self._label(entry, ds)
        if entry.role == "scenario":  # continuation / scenario_pair named by the catalog
            ds.attrs.update(scenario_roles.metadata_attrs(entry.metadata))
        prov = ds.attrs.get("provenance", "")
        ds.attrs["provenance"] = (f"{prov}; " if prov else "") + \
            f"catalog {self.path} entry {name!r} (source {entry.plugin})"
        return ds

    def open_cells(self, name: str, lat: np.ndarray, lon: np.ndarray) -> xr.Dataset | None:
        """Entry ``name`` sampled at ``N`` grid cells (:meth:`permaplug.Source.open_cells`):
        dims ``(cell,)`` in the order of ``lat``/``lon`` (float ``[N]``, degrees), or None when
        its source cannot sample per cell. DataError when the source returns other dims."""
        from permaplug.core.plugins import get_source

        entry = self.entry(name)
        ds = get_source(entry.plugin)(**dict(entry.options)).open_cells(lat, lon)
        if ds is None:
            return None
        n = len(lat)
        if set(ds.dims) != {"cell"} or ds.sizes["cell"] != n:
            raise DataError(f"{self.path}: entry {name!r}: source {entry.plugin!r} open_cells "
                            f"gave dims {dict(ds.sizes)}; expected (cell: {n})")
        self._label(entry, ds)
        return ds

    def _label(self, entry: CatalogEntry, ds: xr.Dataset) -> None:
        """Set the dataset's data label: the entry's ``metadata.data_label``, else the catalog's,
        else the source's own (``"unknown data"`` when none)."""
        from permaplug.core.schema import DATA_LABEL_ATTR

        label = entry.metadata.get("data_label") or self.metadata.get("data_label")
        if label:
            ds.attrs[DATA_LABEL_ATTR] = str(label)
        ds.attrs.setdefault(DATA_LABEL_ATTR, "unknown data")

    def provides(self, name: str) -> tuple[Variable, ...]:
        """What entry ``name`` gives: its source's :meth:`permaplug.Source.provides` for the
        entry's options. Reads no data (e.g. what a scenario entry can supply, before training)."""
        from permaplug.core.plugins import get_source

        entry = self.entry(name)
        return tuple(get_source(entry.plugin)(**dict(entry.options)).provides())

    def find_all(self, role: str, source: str | None = None) -> list[str]:
        """Names of the entries with ``metadata.role == role`` (and plugin or name ``source``)."""
        return [n for n, e in self._entries.items()
                if e.role == role and (source is None or source in (e.plugin, n))]

    def find(self, role: str, source: str | None = None) -> str:
        """The first entry with this role (and plugin or entry name ``source``); CatalogError."""
        found = self.find_all(role, source)
        if not found:
            what = f"role {role!r}" + (f" and source {source!r}" if source else "")
            have = ", ".join(f"{n} ({e.role or 'no role'}, {e.plugin})"
                             for n, e in self._entries.items())
            hint = ""
            if source:
                import difflib

                names = sorted({*self._entries, *(e.plugin for e in self._entries.values())})
                close = difflib.get_close_matches(source, names, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise CatalogError(f"{self.path}: no entry with {what}{hint}; entries: {have}")
        return found[0]


def read_catalog_yaml(path: Path) -> Any:
    """``yaml.safe_load`` of a catalog file (CatalogError on I/O or syntax errors)."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read catalog ({exc.strerror or exc})") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: invalid YAML ({str(exc).splitlines()[0]})") from exc


def load_catalog(path: str | Path | None = None) -> PermaplugCatalog:
    """Load and validate a catalog file; ``None`` = the default of the resolver set by
    :func:`set_catalog_resolver` (the command line's: the demo catalog, built on first use).

    A name without a folder or suffix that is not a file (e.g. ``real-tables``) names one of
    the catalogs shipped in ``permaplug/catalogs``, or one the resolver knows (the command
    line's: a demo version, ``demo-v1``, built in the cache on first use).
    """
    if path is None:
        found = _resolver(None) if _resolver is not None else None
        if found is None:
            raise CatalogError("no catalog given: pass the path of a catalog file (or the name "
                               f"of a bundled one: {', '.join(bundled_catalogs())})")
        path = found
    path = Path(path).expanduser()
    if not path.exists() and path.parent == Path(".") and not path.suffix:
        bundled = bundled_catalogs()
        found = _resolver(str(path)) if _resolver is not None else None
        if str(path) in bundled:
            path = bundled[str(path)]
        elif found is not None:
            path = Path(found)
        else:
            known = [*bundled, *(_resolver_names() if _resolver_names is not None else ())]
            raise CatalogError(f"{path}: no such catalog file, and not a bundled catalog "
                               f"({', '.join(known)})")
    if not path.is_file():
        raise CatalogError(f"{path}: catalog file not found")
    path = path.resolve()
    raw = read_catalog_yaml(path)
    intake_dict, entries = validate_catalog(path, raw)  # the safety checks, before intake
    return PermaplugCatalog(path, intake_dict["metadata"], entries, intake_dict,
                            complete=_is_complete(raw))


CatalogResolver = Callable[[str | None], "Path | None"]
"""``resolve(None)`` -> the default catalog's path; ``resolve(name)`` -> the path of a catalog
known by that name (after the bundled ones); None when it has none."""
_resolver: CatalogResolver | None = None
_resolver_names: Callable[[], Iterable[str]] | None = None


def set_catalog_resolver(resolver: CatalogResolver | None,
                         names: Callable[[], Iterable[str]] | None = None) -> None:
    """Let the application choose the default catalog and name further catalogs (``names()``
    lists those names for error messages). The command line sets one giving the demo catalogs
    (built on first use); the library alone has no default (``load_catalog(None)`` is then a
    CatalogError)."""
    global _resolver, _resolver_names
    _resolver, _resolver_names = resolver, names


def bundled_catalogs() -> dict[str, Path]:
    """The catalogs shipped in ``permaplug/catalogs`` by name (file stem)."""
    folder = Path(str(resources.files("permaplug") / "catalogs"))
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}
