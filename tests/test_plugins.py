"""Plugin system: registration through hooks, duplicate names, broken plugins, the disable switch."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bench.errors import BenchError
from bench.plugins import BUILTIN_DIST, PluginWarning, load_plugins
from bench.registry import Registry


def make_dist(site: Path, dist: str, module: str, source: str) -> None:
    """Write an installed-looking distribution (dist-info with a `bench` entry point) plus its module."""
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[bench]\n{module} = {module}\n")
    (site / f"{module}.py").write_text(textwrap.dedent(source))


@pytest.fixture
def site(tmp_path, monkeypatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_builtins_register_through_hooks():
    plugins = load_plugins(external=False)
    assert {"dummy", "clip_probe"} <= set(plugins.detectors.names())
    assert "synthetic" in plugins.datasets
    assert all(e.dist == BUILTIN_DIST for e in plugins.detectors.entries())


def test_registry_is_lazy_and_checks_base_class():
    reg = Registry("detector")
    reg.add("lazy", "bench.no_such_module:Nothing", dist="x")  # not imported at registration
    with pytest.raises(BenchError, match="detector 'lazy' from x: cannot import .*ModuleNotFoundError"):
        reg.get("lazy")
    reg.add("wrong", "bench.records:Sample", dist="x")
    with pytest.raises(BenchError, match="not a subclass of Detector"):
        reg.get("wrong")
    reg.add("mismatch", "bench.detectors.dummy:Dummy", dist="x", config="bench.detectors.configs:XceptionConfig")
    with pytest.raises(BenchError, match="its config_class is DummyConfig"):
        reg.get("mismatch")


def test_duplicate_name_fails_naming_both_distributions(site):
    make_dist(site, "dup-plugin", "dup_plugin", """
        import bench

        @bench.hookimpl
        def bench_register_detectors(register):
            register("dummy", "bench.detectors.dummy:Dummy", "clash")
    """)
    plugins = load_plugins(external=True)  # loading never merges and never stops: the clash is recorded
    assert plugins.detectors.entry("dummy").dist == BUILTIN_DIST and plugins.info["dup-plugin"].status == "clash"
    with pytest.raises(BenchError, match=r"detector name 'dummy' is registered by forgerybench and again by dup-plugin"):
        plugins.check()


def test_broken_plugin_warns_with_distribution_and_rest_works(site):
    make_dist(site, "broken-plugin", "broken_plugin", "raise ImportError('needs a GPU library')\n")
    make_dist(site, "good-plugin", "good_plugin", """
        import bench

        @bench.hookimpl
        def bench_register_detectors(register):
            register("good_one", "bench.detectors.dummy:Dummy", "fine")
    """)
    with pytest.warns(PluginWarning, match=r"broken-plugin.*ImportError: needs a GPU library"):
        plugins = load_plugins(external=True)
    assert "good_one" in plugins.detectors and plugins.detectors.entry("good_one").dist == "good-plugin"
    assert "broken-plugin" in plugins.failed
    assert "dummy" in plugins.detectors


def test_raising_hook_is_a_warning_not_a_crash(site):
    make_dist(site, "raising-plugin", "raising_plugin", """
        import bench

        @bench.hookimpl
        def bench_register_datasets(register):
            raise RuntimeError("bad registry call")
    """)
    with pytest.warns(PluginWarning, match="raising-plugin.*bad registry call"):
        plugins = load_plugins(external=True)
    assert "synthetic" in plugins.datasets


def test_disable_switch_loads_builtins_only(site, monkeypatch):
    make_dist(site, "extra-plugin", "extra_plugin", """
        import bench

        @bench.hookimpl
        def bench_register_detectors(register):
            register("extra", "bench.detectors.dummy:Dummy")
    """)
    assert "extra" in load_plugins().detectors
    monkeypatch.setenv("BENCH_DISABLE_PLUGINS", "1")
    assert "extra" not in load_plugins().detectors
