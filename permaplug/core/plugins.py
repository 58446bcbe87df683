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


@dataclass(frozen=True)
class BrokenPlugin:
    """An entry point that failed to import or to register."""

    distribution: str
    version: str
    entry_point: str
    error: str


@dataclass
class Registry:
    """All loaded plugins, by kind then name."""

    plugins: dict[str, dict[str, PluginInfo]] = field(
        default_factory=lambda: {k: {} for k in hookspecs.HOOKS.values()}
    )
    broken: list[BrokenPlugin] = field(default_factory=list)
    manager: pluggy.PluginManager | None = None

    def get(self, kind: str, name: str) -> type:
        """Return the class registered as ``name`` for ``kind``; raise UnknownPluginError."""
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
        return sorted(self.plugins[kind])

    def info(self, kind: str, name: str) -> PluginInfo:
        """Where ``name`` comes from, without importing a lazily registered class."""
        if name not in self.plugins.get(kind, {}):
            self.get(kind, name)  # UnknownPluginError
        return self.plugins[kind][name]

    def all(self) -> list[PluginInfo]:
        return [p for kind in self.plugins.values() for p in kind.values()]


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
    info = PluginInfo(kind, name, target, dist, version, ep)
    existing = reg.plugins[kind].get(name)
    if existing is not None and existing.target != target:
        raise PluginError(
            f"Two plugins register the {kind} {name!r}: {existing.distribution} "
            f"({existing.class_path}) and {dist} ({info.class_path})"
        )
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
