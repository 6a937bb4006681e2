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

from rwe._lazy import lazy_exports

#: Public name -> the private module that defines it (imported on first use: a dossier
#: kernel that reads a saved result does not load scipy.stats and statsmodels).
_LAZY = {
    "ONLINE_CHOICES": "_budget", "budget_summary": "_budget",
    "ledger_show_text": "_commands", "ledger_verify_text": "_commands", "run_compare": "_commands",
    "CLUSTER_CHOICES": "_compare", "MSG_NEEDS_ROWS": "_compare", "MULTIPLICITY": "_compare",
    "compare_from_protocol": "_compare", "compare_models": "_compare", "compare_plan": "_compare",
    "plan_sha256": "_compare",
    "package_versions": "_hashes", "score_sha256": "_hashes", "test_set_sha256": "_hashes",
    "GENESIS": "_ledger", "LEDGER_FORMAT": "_ledger", "Ledger": "_ledger",
    "LedgerVerification": "_ledger", "verify_ledger": "_ledger",
    "APPROVE": "_result", "EXIT_CODES": "_result", "INCONCLUSIVE": "_result", "REJECT": "_result",
    "VERDICTS": "_result", "ComparisonResult": "_result",
}

__all__ = [
    "compare_models", "compare_from_protocol", "ComparisonResult", "APPROVE", "REJECT",
    "INCONCLUSIVE", "VERDICTS", "EXIT_CODES", "MULTIPLICITY", "CLUSTER_CHOICES",
    "ONLINE_CHOICES", "MSG_NEEDS_ROWS", "Ledger", "LedgerVerification", "verify_ledger",
    "GENESIS", "LEDGER_FORMAT", "budget_summary", "plan_sha256", "test_set_sha256",
    "score_sha256", "package_versions", "compare_plan", "run_compare", "ledger_verify_text",
    "ledger_show_text",
]

__getattr__, __dir__ = lazy_exports("rwe.change_control", _LAZY)
