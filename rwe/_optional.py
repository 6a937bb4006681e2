"""One lazy import point for optional dependencies (papermill ``missing_dependency`` style)."""

from __future__ import annotations

import importlib
from types import ModuleType

MATPLOTLIB_MISSING = "matplotlib is needed for plots: pip install matplotlib"


def import_optional(module: str, *, extra: str) -> ModuleType:
    """Import ``module`` or raise ImportError naming the rwe extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{module} is required for this feature; install it with: pip install 'rwe[{extra}]'"
        ) from exc


def import_pyplot():
    """Return ``matplotlib.pyplot`` with the non-interactive Agg backend when headless."""
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - matplotlib is a core dependency
        raise ImportError(MATPLOTLIB_MISSING) from exc
    import os

    if not os.environ.get("DISPLAY") and "inline" not in matplotlib.get_backend().lower():
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt
