"""Torch-free composition: answering from the config alone never imports the heavy libraries (issue 14)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

HEAVY = ("torch", "torchvision", "timm", "open_clip", "mlflow")


def imported_after(code: str) -> list[str]:
    """Run `code` in a fresh interpreter (stdout silenced) and return which HEAVY modules it imported."""
    body = textwrap.indent(textwrap.dedent(code).strip(), "    ")
    script = (f"import contextlib, io, json, sys\nwith contextlib.redirect_stdout(io.StringIO()):\n{body}\n"
              f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n")
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [
    ["run", "--cfg"],
    ["run", "--cfg", "protocol=ff_to_all", "detector=moa_clip"],
    ["run", "--cfg", "detector=xception", "scale=tiny"],
    ["list"],
    ["list", "datasets"],
    ["list", "protocols"],
])
def test_cli_answers_without_importing_torch(argv):
    assert imported_after(f"from bench.cli import main\nassert main({argv!r}) == 0") == []


def test_composing_every_detector_imports_no_model_code():
    code = """
        from bench.compose import compose_run
        from bench.plugins import get_plugins
        for name in get_plugins().detectors.names():
            for scale in ("full", "tiny"):
                compose_run([f"detector={name}", f"scale={scale}", "protocol=ff_to_all"])
    """
    assert imported_after(code) == []


def test_config_error_answers_without_importing_torch():
    code = """
        from bench.cli import main
        assert main(["run", "--cfg", "trainer.epochz=3"]) == 2
    """
    assert imported_after(code) == []


def test_openai_constants_match_open_clip():
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

    from bench.detector_config import OPENAI_MEAN, OPENAI_STD

    assert (OPENAI_MEAN, OPENAI_STD) == (tuple(OPENAI_DATASET_MEAN), tuple(OPENAI_DATASET_STD))


def test_a_run_imports_only_its_own_detector_module(tmp_path):
    code = f"""
        from bench.cli import main
        from bench.testing import SMALL_DEMO
        assert main(["run", "detector=dummy", *SMALL_DEMO, "paths.output={tmp_path}"]) == 0
        import sys
        others = [m for m in ("bench.detectors.clip_probe", "bench.detectors.xception", "bench.detectors.f3net",
                              "bench.detectors.moa_clip", "timm", "open_clip") if m in sys.modules]
        assert not others, others
    """
    assert "torch" in imported_after(code)  # the run itself trained (and imported nothing it did not use)
