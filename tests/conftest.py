"""Test-session fixtures of the tests folder (the repository's conftest.py sets up the cache and output folders)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bench import tiny_tower

# The demo's tiny CLIP tower (`pretrained: synthetic`), pretrained with a shorter recipe than the demo's: the tests
# check that the frozen-backbone detectors learn from it, not how well. Trained once per session into its cache.
TEST_TOWER_RECIPE = replace(tiny_tower.DEFAULT_RECIPE, videos=100, steps=100, batch=64, warmup_steps=10)


@pytest.fixture(scope="session", autouse=True)
def quick_tiny_tower():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tiny_tower, "DEFAULT_RECIPE", TEST_TOWER_RECIPE)
        yield TEST_TOWER_RECIPE
