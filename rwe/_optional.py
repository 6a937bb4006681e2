"""One lazy import point for optional dependencies (papermill ``missing_dependency`` style)."""

from __future__ import annotations

import importlib
import weakref
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


#: Figures whose layout already fits their labels (tight_layout or fixed margins): saving them
#: needs no ``bbox_inches="tight"``, which costs one more full draw.
_LAID_OUT: weakref.WeakSet = weakref.WeakSet()


def tight_layout(fig, **kwargs):
    """``fig.tight_layout(**kwargs)``, remembered (see :func:`is_laid_out`)."""
    fig.tight_layout(**kwargs)
    _LAID_OUT.add(fig)
    return fig


def mark_laid_out(fig):
    """Remember that ``fig``'s margins already fit its labels."""
    _LAID_OUT.add(fig)
    return fig


def is_laid_out(fig) -> bool:
    """True for a figure laid out by :func:`tight_layout` or :func:`mark_laid_out`."""
    return fig in _LAID_OUT
