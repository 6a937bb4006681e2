"""Cohort characteristics: the "Table 1" of an evaluation data set (EVIDENCE.md REP-2).

Overall, per site and per acquisition device: the number of rows, mean (SD) or median
[Q1, Q3] of each numeric feature, the distribution of each categorical attribute (missing
values as their own row), missing values per variable and the outcome prevalence, as
``tableone`` (Pollard et al. 2018), the library the field uses for it, makes them: its cells,
formats and formulas, computed from category codes and numpy summaries because tableone
converts every categorical value to text in a Python loop (32 s at 1M rows). The test suite
compares every cell with tableone's own table. The result keeps the category counts typed
next to the formatted cells, so small-cell suppression acts on counts, not on text.

This belongs with the representativeness analyses (REP-2); it lives here until that module
takes it.
"""

from rwe.cohort._table1 import TableOneResult, table_one, table_one_from_protocol

__all__ = ["TableOneResult", "table_one", "table_one_from_protocol"]
