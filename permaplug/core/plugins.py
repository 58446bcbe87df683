"""Plugin manager: loads the ``permaplug`` entry-point group and keeps one registry per kind.

Built-in plugins come from the ``permaplug`` distribution's own entry points, exactly like a
third party's. ``PERMAPLUG_LOAD_PLUGINS`` restricts third-party loading: unset = every installed
plugin; a comma-separated list of distribution names = only those; empty = built-ins only.
A plugin that fails to import (or raises while registering) is recorded with its distribution
and error, shown by ``permaplug plugins``, and the other plugins keep working.

A plugin registers either a class or, lazily, the class's import path with its name
(``register("pkg.module:Class", name="x")``): listing plugins and checking names then imports
nothing heavy, and the class is imported the first time it is used (:attr:`PluginInfo.cls`).
The built-in plugins register lazily, so ``permaplug --help`` and ``permaplug plugins`` import
neither torch nor xarray.

Two plugins registering one name are both kept and marked conflicting: listing still works,
only *using* that name is an error naming both distributions. The registry is also the union
of the variables sources and derived features declare (:meth:`Registry.variable`).
"""
from __future__ import annotations

import importlib
import importlib.metadata as md
import inspect
import os
import re
import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import pluggy

from permaplug.core import hookspecs
from permaplug.core.errors import PluginError, UnknownPluginError
from permaplug.core.variables import Declared, Variable, conflict_error, merge

GROUP = "permaplug"
BUILTIN_DIST = "permaplug"
ENV_LOAD = "PERMAPLUG_LOAD_PLUGINS"


_TARGET_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


@dataclass(frozen=True)
class PluginInfo:
    """One registered class: its kind, name, and where it came from.

    ``target`` is the class, or its import path ``"package.module:Class"`` when registered
    lazily; :attr:`cls` imports it on first use (PluginError naming the plugin if that fails).
    """

    kind: str
    name: str
    target: type | str
    distribution: str
    version: str
    entry_point: str

    @property
    def builtin(self) -> bool:
        return self.distribution == BUILTIN_DIST

    @property
    def class_path(self) -> str:
        """``package.module.Class``, without importing a lazily registered class."""
        if isinstance(self.target, str):
            return self.target.replace(":", ".")
        return f"{self.target.__module__}.{self.target.__qualname__}"

    @cached_property
    def cls(self) -> type:
        """The plugin class (imported now if it was registered by import path)."""
        if not isinstance(self.target, str):
            return self.target
        module, _, qualname = self.target.partition(":")
        try:
            obj: Any = importlib.import_module(module)
            for part in qualname.split("."):
                obj = getattr(obj, part)
        except Exception as exc:
            raise PluginError(f"{self.distribution}: {self.kind} {self.name!r} ({self.target}) "
                              f"could not be loaded: {type(exc).__name__}: {exc}") from exc
        _check_class(self.kind, obj, self.distribution)
        if obj.name != self.name:
            raise PluginError(f"{self.distribution}: {self.kind} registered as {self.name!r} "
                              f"but {self.class_path}.name is {obj.name!r}")
        return obj

    def describe(self) -> str:
        """``permaplug-tiny (permaplug_tiny.TinyLinear)``: where the class comes from."""
        return f"{self.distribution} ({self.class_path})"


@dataclass(frozen=True)
class BrokenPlugin:
    """An entry point that failed to import or to register."""

    distribution: str
    version: str
    entry_point: str
    error: str


@dataclass
class Registry:
    """All loaded plugins, by kind then name, plus the variables they declare.

    ``plugins[kind][name]`` is the first class registered under ``name``; ``conflicts`` holds,
    per ``(kind, name)``, every class registered under a name claimed more than once.
    """

    plugins: dict[str, dict[str, PluginInfo]] = field(
        default_factory=lambda: {k: {} for k in hookspecs.HOOKS.values()}
    )
    broken: list[BrokenPlugin] = field(default_factory=list)
    manager: pluggy.PluginManager | None = None
    conflicts: dict[tuple[str, str], list[PluginInfo]] = field(default_factory=dict)
    _variables: tuple[dict[str, Declared], dict[str, list[Declared]]] | None = field(
        default=None, repr=False)

    def get(self, kind: str, name: str) -> type:
        """The class registered as ``name`` for ``kind``; UnknownPluginError, or PluginError
        naming both distributions when two plugins registered that name."""
        if (kind, name) in self.conflicts:
            both = self.conflicts[(kind, name)]
            raise PluginError(f"Two plugins register the {kind} {name!r}: "
                              + " and ".join(p.describe() for p in both)
                              + " (uninstall one, or restrict loading with "
                              f"{ENV_LOAD})")
        try:
            return self.plugins[kind][name].cls
        except KeyError:
            hint = ""
            if self.broken:
                hint = "broken plugins: " + ", ".join(
                    f"{b.distribution} ({b.entry_point})" for b in self.broken
                ) + " (see 'permaplug plugins')"
            raise UnknownPluginError(kind, name, self.plugins.get(kind, {}), hint) from None

    def names(self, kind: str) -> list[str]:
        """Every registered name of ``kind`` (conflicting ones included), sorted."""
        return sorted(self.plugins[kind])

    def conflicting(self, kind: str) -> set[str]:
        """Names of ``kind`` that two or more plugins registered."""
        return {n for k, n in self.conflicts if k == kind}

    def info(self, kind: str, name: str) -> PluginInfo:
        """Where ``name`` comes from, without importing a lazily registered class."""
        if name not in self.plugins.get(kind, {}):
            self.get(kind, name)  # UnknownPluginError
        return self.plugins[kind][name]

    def all(self) -> list[PluginInfo]:
        """Every registered class, including each side of a name conflict."""
        out = [p for kind in self.plugins.values() for p in kind.values()]
        for infos in self.conflicts.values():
            out += [p for p in infos if p not in out]
        return out

    # --- variables ---------------------------------------------------------------------------
    def declarations(self) -> list[Declared]:
        """Every variable declared by a registered source (class level) or derived feature."""
        out: list[Declared] = []
        for info in sorted(self.all(), key=lambda p: (not p.builtin, p.kind, p.name)):
            if info.kind not in ("source", "feature"):
                continue
            try:
                cls = info.cls  # imports a lazily registered class
            except PluginError:
                continue  # reported when the plugin itself is used
            origin = f"{info.kind} {info.name!r} ({info.distribution})"
            if info.kind == "source":
                out += [Declared(v, origin) for v in getattr(cls, "variables", ()) or ()]
            else:
                out.append(Declared(cls.variable(), origin))
        return out

    def _merged(self) -> tuple[dict[str, Declared], dict[str, list[Declared]]]:
        if self._variables is None:
            self._variables = merge(self.declarations())
        return self._variables

    def variables(self) -> dict[str, Variable]:
        """Every declared variable by name (built-ins first), conflicting ones left out."""
        return {k: d.variable for k, d in self._merged()[0].items()}

    def variable_conflicts(self) -> dict[str, list[Declared]]:
        """Variables declared with different units, with every declaration."""
        return dict(self._merged()[1])

    def variable(self, name: str) -> Variable:
        """The declared variable ``name``; VariableConflictError naming both declarations when
        they disagree on units, KeyError when nothing declares it."""
        ok, bad = self._merged()
        if name in bad:
            raise conflict_error(name, bad[name])
        return ok[name].variable

    def declared_by(self, name: str) -> str:
        """Who declared ``name`` (``"source 'era5land' (permaplug)"``)."""
        ok, bad = self._merged()
        if name in bad:
            raise conflict_error(name, bad[name])
        return ok[name].origin


def _wanted(dist: str) -> bool:
    if dist == BUILTIN_DIST:
        return True
    value = os.environ.get(ENV_LOAD)
    if value is None:
        return True
    allowed = {v.strip() for v in value.split(",") if v.strip()}
    return dist in allowed


def _dist_of(ep: md.EntryPoint) -> tuple[str, str]:
    """(distribution name, version) of an entry point (its metadata file parsed once)."""
    dist = getattr(ep, "dist", None)
    if dist is None:
        return ("unknown", "")
    meta = dist.metadata
    return (meta["Name"] or "unknown", meta["Version"] or "")


def build_registry(extra_plugins: list[tuple[Any, str]] | None = None) -> Registry:
    """Load every wanted entry point of the ``permaplug`` group and collect registrations.

    ``extra_plugins`` are ``(module_or_object, distribution_name)`` pairs registered in addition
    (used by tests and by embedding applications).
    """
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    reg = Registry(manager=pm)
    origin: dict[int, tuple[str, str, str]] = {}

    seen: set[tuple[str, str]] = set()
    found = [(ep, *_dist_of(ep)) for ep in md.entry_points(group=GROUP)]
    for ep, dist, version in sorted(found, key=lambda f: (f[1] != BUILTIN_DIST, f[0].name)):
        if (dist, ep.name) in seen or not _wanted(dist):
            continue
        seen.add((dist, ep.name))
        try:
            plugin = ep.load()
            pm.register(plugin, name=f"{dist}:{ep.name}")
        except Exception as exc:  # noqa: BLE001 - one broken plugin must not take others down
            reg.broken.append(BrokenPlugin(dist, version, ep.name, f"{type(exc).__name__}: {exc}"))
            continue
        origin[id(plugin)] = (dist, version, ep.name)
    for plugin, dist in extra_plugins or []:
        pm.register(plugin, name=f"{dist}:{getattr(plugin, '__name__', id(plugin))}")
        origin[id(plugin)] = (dist, "", getattr(plugin, "__name__", "object"))

    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"Invalid permaplug plugin hook: {exc}") from exc

    for hook_name, kind in hookspecs.HOOKS.items():
        caller = getattr(pm.hook, hook_name)
        for impl in reversed(caller.get_hookimpls()):
            dist, version, ep_name = origin.get(id(impl.plugin), ("unknown", "", impl.plugin_name))

            def register(target: type | str, name: str | None = None, _kind: str = kind,
                         _d: str = dist, _v: str = version, _ep: str = ep_name) -> None:
                _add(reg, _kind, target, name, _d, _v, _ep)

            try:
                impl.function(register=register)
            except PluginError:
                raise
            except Exception as exc:  # noqa: BLE001
                reg.broken.append(
                    BrokenPlugin(dist, version, ep_name,
                                 f"{hook_name} raised {type(exc).__name__}: {exc}")
                )
    return reg


def _check_class(kind: str, cls: Any, dist: str) -> None:
    """PluginError/TypeError unless ``cls`` is a concrete class with a ``name``."""
    name = getattr(cls, "name", None)
    if not isinstance(cls, type) or not isinstance(name, str) or not name:
        what = getattr(cls, "__qualname__", repr(cls))
        raise PluginError(f"{dist}: {kind} class {what} has no 'name' attribute")
    if inspect.isabstract(cls):  # recorded as a broken plugin by the caller; the rest load
        raise TypeError(f"{kind} class {cls.__qualname__} does not implement "
                        f"{', '.join(sorted(cls.__abstractmethods__))}")


def _add(reg: Registry, kind: str, target: type | str, name: str | None, dist: str,
         version: str, ep: str) -> None:
    if isinstance(target, str):  # lazy: checked when the class is first used
        if not _TARGET_RE.match(target):  # TypeError: recorded as a broken plugin
            raise TypeError(f"{kind} {target!r}: register a class or an import path "
                            "'package.module:Class'")
        if not name:
            raise TypeError(f"{kind} {target!r} registered by import path needs name=...")
    else:
        _check_class(kind, target, dist)
        if name is not None and name != target.name:
            raise PluginError(f"{dist}: {kind} class {target.__qualname__} registered as "
                              f"{name!r} but its name is {target.name!r}")
        name = target.name
    if kind == "feature" and not isinstance(target, str):
        target.variable()  # a bad declaration (e.g. an unknown kind) makes the plugin broken
    info = PluginInfo(kind, name, target, dist, version, ep)
    existing = reg.plugins[kind].get(name)
    if existing is not None and existing.target != target:
        # both are kept and listed; only using the name is an error (Registry.get)
        if all(p.target != target for p in reg.conflicts.get((kind, name), [])):
            reg.conflicts.setdefault((kind, name), [existing]).append(info)
        return
    reg.plugins[kind][name] = info


_lock = threading.Lock()
_registry: Registry | None = None


def get_registry(reload: bool = False) -> Registry:
    """The process-wide registry, built on first use."""
    global _registry
    with _lock:
        if _registry is None or reload:
            _registry = build_registry()
        return _registry


def get_source(name: str) -> type:
    return get_registry().get("source", name)


def get_corrector(name: str) -> type:
    return get_registry().get("corrector", name)


def get_model(name: str) -> type:
    return get_registry().get("model", name)


def get_explainer(name: str) -> type:
    return get_registry().get("explainer", name)


def get_feature(name: str) -> type:
    return get_registry().get("feature", name)
