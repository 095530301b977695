"""ForgeryBench: train face-forgery detectors on some domains, measure how they generalise to unseen ones.

Plugins implement hooks with ``@bench.hookimpl`` (see docs/plugins.md).
"""

from bench.hookspecs import hookimpl

__all__ = ["hookimpl"]
__version__ = "0.1.0"
