"""Exception and warning hierarchy for rwe.

Every error rwe raises on purpose derives from :class:`RWEError`, so callers (and the CLI)
can catch one class and show its message without a traceback.
"""

from __future__ import annotations

__all__ = [
    "RWEError",
    "InvalidParameterError",
    "DataValidationError",
    "ProtocolError",
    "ReferenceDataError",
    "NotebookExecutionError",
    "DossierExistsError",
    "DossierWriteError",
    "LedgerError",
    "RWEWarning",
    "SmallSubgroupWarning",
    "ConvergenceWarning",
]


class RWEError(Exception):
    """Base class of every error rwe raises on purpose."""


class InvalidParameterError(RWEError, ValueError, TypeError):
    """A function argument has the wrong type or value (sklearn's convention)."""


class DataValidationError(RWEError, ValueError):
    """An input table broke a rule.

    Parameters
    ----------
    messages : list of str
        One line per failure; each names the file, the column, the rule and
        up to five offending row numbers.
    source : str, optional
        The file (or "<DataFrame>") the table came from.
    """

    def __init__(self, messages: list[str] | str, source: str | None = None):
        if isinstance(messages, str):
            messages = [messages]
        self.messages = list(messages)
        self.source = source
        super().__init__("\n".join(self.messages))


class ProtocolError(RWEError, ValueError):
    """A protocol file is malformed: each message carries the YAML line and the field path."""

    def __init__(self, messages: list[str] | str, path: str | None = None):
        if isinstance(messages, str):
            messages = [messages]
        self.messages = list(messages)
        self.path = path
        super().__init__("\n".join(self.messages))


class ReferenceDataError(RWEError, ValueError):
    """A reference population file is malformed (e.g. shares do not sum to 1)."""


class NotebookExecutionError(RWEError):
    """A dossier notebook failed; carries the notebook, the cell index and the error name."""

    def __init__(self, notebook: str, cell_index: int | None, ename: str, evalue: str,
                 kept_at: str | None = None):
        self.notebook = notebook
        self.cell_index = cell_index
        self.ename = ename
        self.evalue = evalue
        self.kept_at = kept_at
        where = f"cell {cell_index}" if cell_index is not None else "an unknown cell"
        msg = f"notebook {notebook} failed in {where}: {ename}: {evalue}"
        if kept_at:
            msg += f" (failed notebook kept at {kept_at})"
        super().__init__(msg)


class DossierExistsError(RWEError, FileExistsError):
    """The output directory exists and ``force`` was not given."""


class DossierWriteError(RWEError, OSError):
    """The dossier could not be written (disk full, no permission): names the output directory
    and the file; nothing is left at the output or in the build directory."""


class LedgerError(RWEError, ValueError):
    """A change-control ledger cannot be used: broken chain, truncated, from another plan,
    locked, or left locked by a process that died. The message names the file and the first
    bad entry; nothing was appended."""


class RWEWarning(UserWarning):
    """Base class of rwe's warnings."""


class SmallSubgroupWarning(RWEWarning):
    """A subgroup is below the minimum n: its estimate is not interpretable."""


class ConvergenceWarning(RWEWarning):
    """An iterative fit (e.g. a logistic recalibration) did not converge."""
