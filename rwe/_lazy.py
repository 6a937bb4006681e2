"""Lazy public names for a package (PEP 562): ``import rwe.drift`` imports none of its modules;
a name is imported from its private module on first use and cached in the package; a
submodule is imported when first used as an attribute."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, table: Mapping[str, str]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``table`` maps each public name to the
    private module (relative to the package) that defines it."""

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            # a submodule not imported yet (``rwe.stats.summaries``), as without lazy names
            if not name.startswith("__") and importlib.util.find_spec(
                    f"{package}.{name}") is not None:
                return importlib.import_module(f"{package}.{name}")
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(table))

    return __getattr__, __dir__
