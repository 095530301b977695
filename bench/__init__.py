"""ForgeryBench: train face-forgery detectors on some domains, measure how they generalise to unseen ones."""

__version__ = "0.1.0"
