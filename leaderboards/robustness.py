"""Robustness: AUC of trained methods on perturbed copies of their test sets (`bench evaluate RUN --perturb ...`).

Rows are the trained methods (the source runs' identity and seeds), one per test set; columns are perturbation
levels (`none` first, then in the order evaluated). Each cell is an evaluate run's `<test set>/auc`.
"""

from __future__ import annotations

from bench.leaderboards.spec import TableSpec

ROBUSTNESS = TableSpec(
    name="robustness",
    description="Frame-level AUC under perturbations of the test images (bench evaluate --perturb), per test set",
    experiments=("ff_to_all",),
    test_sets=(),  # whatever the evaluate runs were tested on
    columns="perturbations",
    hint="bench evaluate RUN_ID --perturb jpeg=90,70,50 blur=1,2 resize=0.5",
    footnotes=("Perturbations are applied to real and fake test frames alike; the checkpoint is the source run's "
               "(selected on validation data), never retrained.",),
)

TABLES = (ROBUSTNESS,)
