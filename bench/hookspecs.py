"""Hook specifications of the `bench` plugin system (pluggy).

A plugin is any module registered under the entry-point group ``bench``; it implements some of these hooks with
``@bench.hookimpl``. Built-in detectors and datasets register through the very same hooks. Every hook here is
documented in ``docs/plugins.md`` (a test enforces it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from bench.plugins import ConfigRegistrar, Registrar

PROJECT = "bench"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def bench_register_detectors(register: Registrar) -> None:
    """Register detector classes: ``register(name, "pkg.module:Class", description, config="pkg.cfg:Config")``.

    The class subclasses ``bench.detector.Detector``; its config class becomes the Hydra config
    ``detector/<name>``, that config class's ``recipe`` the trainer defaults and its ``tiny`` the ``scale=tiny``
    variant. ``config`` (optional) names the config class in a torch-free module, so composing never imports the model.
    """


@hookspec
def bench_register_datasets(register: Registrar) -> None:
    """Register dataset adapters: ``register(name, "pkg.module:Class", description=...)``.

    The class subclasses ``bench.dataset.DatasetAdapter``; its config class becomes the node ``datasets.<name>``
    of every run config (``datasets.<name>.root=...``); protocols name the dataset in their splits.
    """


@hookspec
def bench_register_face_detectors(register: Registrar) -> None:
    """Register face detectors used by ``bench prepare``: ``register(name, "pkg.module:Class", description=...)``.

    The class subclasses ``bench.faces.FaceDetector``.
    """


@hookspec
def bench_register_configs(store: ConfigRegistrar) -> None:
    """Contribute extra Hydra configs: ``store(group, name, node)`` with a dataclass instance or a dict.

    Use it for protocols (``group="protocol"``), trainer presets or detector variants that are not a class's
    defaults.
    """


@hookspec
def bench_register_tables(register: Registrar) -> None:
    """Register leaderboard tables: ``register(name, spec)`` with a ``bench.leaderboards.spec.TableSpec`` (or a
    ``"pkg.module:SPEC"`` string naming one) whose ``name`` is ``name``; ``bench leaderboard --table <name>`` renders it.
    """
