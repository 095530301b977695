"""The example leaderboard table: `bench leaderboard --table toy_table` after runs of `toy_faces_cross`."""

from bench.leaderboards.spec import TableSpec

TOY_TABLE = TableSpec(
    name="toy_table",
    description="example plugin table: toy_faces, trained on swap, tested on swap and on the unseen reenact",
    experiments=("toy_faces_cross",),
    test_sets=("swap", "reenact"),
    metrics=("auc",),
)
