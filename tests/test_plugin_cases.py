"""Issue 12's numbered cases, each with a deliberately broken (or unusual) plugin, through the `bench` command line.

Every plugin here is an installed-looking distribution (a dist-info with a `bench` entry point) written into a
temporary folder on PYTHONPATH; the commands that do not train never import torch, so each case takes a second.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.test_plugins import make_dist

BENCH = shutil.which("bench", path=str(Path(sys.executable).parent)) or "bench"
IMPORTS = "import bench\nfrom bench.config import ProtocolConfig, SplitSpec, TrainerConfig\n"
DEMO_PROTOCOL = 'ProtocolConfig(name="{name}", version=1, train=SplitSpec(dataset="synthetic", split="train"), test={{"t": SplitSpec(dataset="synthetic")}})'


def bench(site: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_") or k in ("BENCH_CACHE", "BENCH_OUTPUT")}
    return subprocess.run([BENCH, *args], capture_output=True, text=True, cwd=site, timeout=300,
                          env={**base, "PYTHONPATH": str(site), **env})


def plugin(site: Path, dist: str, source: str) -> None:
    module = dist.replace("-", "_")
    make_dist(site, dist, module, IMPORTS + textwrap.dedent(source))


def store_plugin(site: Path, dist: str, *stores: str, header: str = "") -> None:
    """A plugin whose only hook stores config nodes: each of `stores` is one `store(...)` call."""
    calls = "\n".join(f"    {s}" for s in stores)
    make_dist(site, dist, dist.replace("-", "_"),
              f"{IMPORTS}{header}\n\n@bench.hookimpl\ndef bench_register_configs(store):\n{calls}\n")


@pytest.fixture
def site(tmp_path) -> Path:
    return tmp_path


def row(stdout: str, dist: str) -> str:
    """The (wrapped) row of `dist` in `bench list plugins`, as one line."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(dist + " "))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith(" ")), len(lines))
    return " ".join(" ".join(lines[start:end]).split())


def one_line_error(res: subprocess.CompletedProcess) -> str:
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("bench: error: "), res.stderr
    return lines[0]


# ---- 2: a plugin dataset's root comes from its root_env --------------------------------------------------------------
def test_plugin_dataset_root_comes_from_its_root_env(site):
    (site / "envfaces_cfg.py").write_text(textwrap.dedent("""
        from dataclasses import dataclass
        from typing import ClassVar
        from bench.dataset import DatasetConfig

        @dataclass
        class EnvFacesConfig(DatasetConfig):
            root_env: ClassVar[str] = "ENV_FACES_ROOT"
            name: str = "env_faces"
    """))
    plugin(site, "envfaces-plugin", """
        @bench.hookimpl
        def bench_register_datasets(register):
            register("env_faces", "envfaces_data:EnvFaces", "faces from $ENV_FACES_ROOT", config="envfaces_cfg:EnvFacesConfig")
    """)
    res = bench(site, "run", "--cfg", ENV_FACES_ROOT="/data/env-faces")
    assert res.returncode == 0, res.stderr
    assert "env_faces:\n    name: env_faces\n    root: /data/env-faces" in res.stdout
    res = bench(site, "run", "--cfg", "datasets.env_faces.root=/elsewhere", ENV_FACES_ROOT="/data/env-faces")
    assert "root: /elsewhere" in res.stdout


# ---- 4: no silent merges, in any namespace ---------------------------------------------------------------------------
@pytest.mark.parametrize("source, what", [
    (f'store("protocol", "demo", {DEMO_PROTOCOL.format(name="demo")})', "protocol config name 'demo'"),
    ('store("trainer", "default", TrainerConfig(epochs=1))', "trainer config name 'default'"),
    ('store("detector", "dummy", {"name": "dummy", "width": 4})', "detector config name 'dummy'"),
])
def test_a_name_clash_with_a_builtin_is_one_line_and_list_plugins_shows_it(site, source, what):
    store_plugin(site, "clash-plugin", source)
    line = one_line_error(bench(site, "run", "--cfg"))
    assert f"{what} is registered by forgerybench and again by clash-plugin" in line
    assert "BENCH_DISABLE_PLUGINS=clash-plugin" in line
    res = bench(site, "list", "plugins")
    assert res.returncode == 0 and "clash: " + what in row(res.stdout, "clash-plugin")
    assert bench(site, "run", "--cfg", BENCH_DISABLE_PLUGINS="clash-plugin").returncode == 0


def test_two_plugins_storing_the_same_protocol_clash_naming_both(site):
    for dist in ("alpha-plugin", "beta-plugin"):
        store_plugin(site, dist, f'store("protocol", "shared", {DEMO_PROTOCOL.format(name="shared")})')
    line = one_line_error(bench(site, "list", "protocols"))
    assert "protocol config name 'shared' is registered by alpha-plugin and again by beta-plugin" in line


# ---- 5: detector variants keep the recipe and the tiny variant; dicts work, wrong nodes are refused -------------------
def test_detector_variants_keep_recipe_and_tiny_variant(site):
    store_plugin(site, "variant-plugin", 'store("detector", "dummy_deep", DummyConfig(depth=4))',
                 'store("detector", "dummy_wide", {"name": "dummy", "width": 32})',
                 header="from bench.detectors.configs import DummyConfig")
    res = bench(site, "run", "--cfg", "protocol=ff_to_all", "detector=dummy_wide")
    assert res.returncode == 0, res.stderr
    assert "width: 32" in res.stdout and "lr: 0.001" in res.stdout and "epochs: 5" in res.stdout  # Dummy's recipe
    res = bench(site, "run", "--cfg", "detector=dummy_deep")  # the demo protocol: scale=tiny
    assert "depth: 4" in res.stdout and "width: 8" in res.stdout  # Dummy's tiny variant still applies


@pytest.mark.parametrize("node, reason", [
    ('{"width": 32}', "its name None must be the registered detector it configures"),
    ('{"name": "dummy", "widht": 32}', "widht"),
    ('XceptionConfig(name="dummy")', "a XceptionConfig cannot configure 'dummy'"),
    ('[1, 2]', "must be a dataclass instance or a dict"),
])
def test_bad_detector_variants_fail_their_plugin_at_registration(site, node, reason):
    store_plugin(site, "badvariant-plugin", f'store("detector", "dummy_bad", {node})',
                 header="from bench.detectors.configs import XceptionConfig")
    res = bench(site, "list", "plugins")
    assert res.returncode == 0 and "FAILED" in row(res.stdout, "badvariant-plugin") and reason in row(res.stdout, "badvariant-plugin")
    assert bench(site, "run", "--cfg").returncode == 0  # everything else works


# ---- 6: a hook that raises drops the whole plugin, shown once as FAILED ---------------------------------------------
def test_a_raising_hook_drops_everything_its_plugin_registered(site):
    plugin(site, "halfway-plugin", f"""
        @bench.hookimpl
        def bench_register_configs(store):
            store("protocol", "halfway", {DEMO_PROTOCOL.format(name="halfway")})

        @bench.hookimpl
        def bench_register_datasets(register):
            raise RuntimeError("the dataset index is missing")
    """)
    res = bench(site, "list", "protocols")
    assert res.returncode == 0 and "halfway" not in res.stdout
    assert res.stderr.count("bench: warning: plugin halfway-plugin failed") == 1
    res = bench(site, "list", "plugins")
    assert res.stdout.count("halfway-plugin") == 1
    assert "FAILED: RuntimeError: the dataset index is missing" in row(res.stdout, "halfway-plugin")


# ---- 7: misspelled or unmarked hooks are errors of their plugin ------------------------------------------------------
@pytest.mark.parametrize("source, reason", [
    ("@bench.hookimpl\ndef bench_register_detector(register):\n    pass", "unknown hook bench_register_detector (did you mean bench_register_detectors?)"),
    ("def bench_register_detectors(register):\n    pass", "bench_register_detectors is not marked @bench.hookimpl"),
    ("@bench.hookimpl\ndef bench_register_detectors(registry):\n    pass", "registry"),  # pluggy: argument not in the spec
])
def test_hook_names_and_arguments_are_checked(site, source, reason):
    plugin(site, "typo-plugin", source)
    res = bench(site, "list", "plugins")
    line = row(res.stdout, "typo-plugin")
    assert "FAILED" in line and reason in line


# ---- 8: a broken model module touches only runs of that detector -----------------------------------------------------
def test_a_broken_model_module_does_not_disturb_other_detectors(site):
    (site / "brokenmodel_cfg.py").write_text("from dataclasses import dataclass\nfrom bench.detector_config import "
                                             "DetectorConfig\n\n@dataclass\nclass BrokenConfig(DetectorConfig):\n"
                                             "    name: str = 'broken_model'\n")
    (site / "brokenmodel_net.py").write_text("import not_installed_cuda_lib\n")
    plugin(site, "brokenmodel-plugin", """
        @bench.hookimpl
        def bench_register_detectors(register):
            register("broken_model", "brokenmodel_net:Net", "needs a library", config="brokenmodel_cfg:BrokenConfig")
    """)
    res = bench(site, "run", "--cfg", "detector=dummy")
    assert res.returncode == 0 and res.stderr == ""
    assert bench(site, "run", "--cfg", "detector=broken_model").returncode == 0  # its config is fine
    res = bench(site, "list", "plugins")
    line = row(res.stdout, "brokenmodel-plugin")
    assert "FAILED" in line and "not_installed_cuda_lib" in line


# ---- 9: one warning line; diagnostics keep working -------------------------------------------------------------------
def test_a_broken_plugin_is_one_warning_line(site):
    plugin(site, "importfail-plugin", "raise ImportError('needs a GPU library')")
    res = bench(site, "list")
    assert res.returncode == 0 and "dummy" in res.stdout
    assert res.stderr.splitlines() == [
        "bench: warning: plugin importfail-plugin failed and contributes nothing: ImportError: needs a GPU library "
        "(`bench list plugins`; BENCH_DISABLE_PLUGINS=importfail-plugin to skip it)"]


def test_list_plugins_says_when_plugins_are_disabled(site):
    plugin(site, "quiet-plugin", "")
    res = bench(site, "list", "plugins", BENCH_DISABLE_PLUGINS="1")
    assert "disabled: BENCH_DISABLE_PLUGINS=1" in row(res.stdout, "quiet-plugin")
    assert "BENCH_DISABLE_PLUGINS=1: external plugins are not loaded" in res.stdout


# ---- 10: tables from plugins, disabling one plugin, local plugins -------------------------------------------------------
TABLE_PLUGIN = """
    @bench.hookimpl
    def bench_register_tables(register):
        from bench.leaderboards.spec import TableSpec

        register("{name}", TableSpec(name="{name}", description="toy table", experiments=("demo",), test_sets=("warp",)))
"""


def test_a_plugin_adds_a_leaderboard_table(site):
    plugin(site, "table-plugin", TABLE_PLUGIN.format(name="toy_table"))
    res = bench(site, "list", "tables")
    assert res.returncode == 0 and "toy_table" in res.stdout and "cross" in res.stdout


def test_a_plugin_table_named_like_a_builtin_one_is_refused(site):
    plugin(site, "table-plugin", TABLE_PLUGIN.format(name="cross"))
    line = one_line_error(bench(site, "list", "tables"))
    assert "table name 'cross' is registered by forgerybench and again by table-plugin" in line
    res = bench(site, "list", "plugins")
    assert "FAILED: table name 'cross'" in row(res.stdout, "table-plugin")


def test_disable_one_plugin_by_name(site):
    for dist in ("keep-plugin", "drop-plugin"):
        plugin(site, dist, TABLE_PLUGIN.format(name=dist.split("-")[0] + "_table"))
    res = bench(site, "list", "tables", BENCH_DISABLE_PLUGINS="drop-plugin,unrelated")
    assert "keep_table" in res.stdout and "drop_table" not in res.stdout


@pytest.mark.parametrize("how", ["env", "flag"])
def test_an_unpackaged_local_module_is_a_plugin(site, how):
    (site / "my_local_plugin.py").write_text(IMPORTS + textwrap.dedent(TABLE_PLUGIN.format(name="local_table")))
    args = ["-p", "my_local_plugin", "list", "tables"] if how == "flag" else ["list", "tables"]
    env = {"BENCH_PLUGINS": "my_local_plugin"} if how == "env" else {}
    res = subprocess.run([BENCH, *args], capture_output=True, text=True, cwd=site, timeout=300,
                         env={**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, **env})
    assert res.returncode == 0 and "local_table" in res.stdout, res.stderr
