"""Plugin manager: loads the ``permaplug`` entry-point group and keeps one registry per kind.

Built-in plugins come from the ``permaplug`` distribution's own entry points, exactly like a
third party's. ``PERMAPLUG_LOAD_PLUGINS`` restricts third-party loading: unset = every installed
plugin; a comma-separated list of distribution names = only those; empty = built-ins only.
A plugin that fails to import (or raises while registering) is recorded with its distribution
and error, shown by ``permaplug plugins``, and the other plugins keep working.
"""
from __future__ import annotations

import importlib.metadata as md
import inspect
import os
import threading
from dataclasses import dataclass, field
from typing import Any

import pluggy

from permaplug.core import hookspecs
from permaplug.core.errors import PluginError, UnknownPluginError

GROUP = "permaplug"
BUILTIN_DIST = "permaplug"
ENV_LOAD = "PERMAPLUG_LOAD_PLUGINS"


@dataclass(frozen=True)
class PluginInfo:
    """One registered class: its kind, name, and where it came from."""

    kind: str
    name: str
    cls: type
    distribution: str
    version: str
    entry_point: str

    @property
    def builtin(self) -> bool:
        return self.distribution == BUILTIN_DIST


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
        self.get(kind, name)
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
    dist = getattr(ep, "dist", None)
    if dist is None:
        return ("unknown", "")
    return (dist.metadata["Name"] or "unknown", dist.version or "")


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
    for ep in sorted(md.entry_points(group=GROUP), key=lambda e: (_dist_of(e)[0] != BUILTIN_DIST, e.name)):
        dist, version = _dist_of(ep)
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

            def register(cls: type, _kind: str = kind, _d: str = dist, _v: str = version,
                         _ep: str = ep_name) -> None:
                _add(reg, _kind, cls, _d, _v, _ep)

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


def _add(reg: Registry, kind: str, cls: type, dist: str, version: str, ep: str) -> None:
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise PluginError(f"{dist}: {kind} class {cls.__qualname__} has no 'name' attribute")
    if inspect.isabstract(cls):  # recorded as a broken plugin by the caller; the rest load
        raise TypeError(f"{kind} class {cls.__qualname__} does not implement "
                        f"{', '.join(sorted(cls.__abstractmethods__))}")
    existing = reg.plugins[kind].get(name)
    if existing is not None and existing.cls is not cls:
        raise PluginError(
            f"Two plugins register the {kind} {name!r}: {existing.distribution} "
            f"({existing.cls.__module__}.{existing.cls.__qualname__}) and {dist} "
            f"({cls.__module__}.{cls.__qualname__})"
        )
    reg.plugins[kind][name] = PluginInfo(kind, name, cls, dist, version, ep)


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
