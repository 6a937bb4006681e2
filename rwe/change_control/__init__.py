"""Change control of model updates (PCCP): paired comparison of a candidate version with the
current, the original and every approved version on the same sequestered cases, acceptance
criteria judged on confidence bounds, an error budget across updates, and a tamper-evident
ledger (EVIDENCE.md CHG-1..CHG-8, PRV-6, PRV-7; METHODS.md C7; see DESIGN.md here).

>>> import rwe
>>> result = rwe.compare_from_protocol("protocols/demo.yaml", candidate="1.1",
...                                    ledger="ledger.jsonl")          # doctest: +SKIP
>>> result.verdict                                                       # doctest: +SKIP
'REJECT'
"""

from __future__ import annotations

from ._budget import ONLINE_CHOICES, budget_summary
from ._commands import ledger_show_text, ledger_verify_text, run_compare
from ._compare import (
    CLUSTER_CHOICES,
    MSG_NEEDS_ROWS,
    MULTIPLICITY,
    compare_from_protocol,
    compare_models,
    compare_plan,
    plan_sha256,
)
from ._hashes import package_versions, score_sha256, test_set_sha256
from ._ledger import GENESIS, LEDGER_FORMAT, Ledger, LedgerVerification, verify_ledger
from ._result import APPROVE, EXIT_CODES, INCONCLUSIVE, REJECT, VERDICTS, ComparisonResult

__all__ = [
    "compare_models", "compare_from_protocol", "ComparisonResult", "APPROVE", "REJECT",
    "INCONCLUSIVE", "VERDICTS", "EXIT_CODES", "MULTIPLICITY", "CLUSTER_CHOICES",
    "ONLINE_CHOICES", "MSG_NEEDS_ROWS", "Ledger", "LedgerVerification", "verify_ledger",
    "GENESIS", "LEDGER_FORMAT", "budget_summary", "plan_sha256", "test_set_sha256",
    "score_sha256", "package_versions", "compare_plan", "run_compare", "ledger_verify_text",
    "ledger_show_text",
]
