"""ROZ: benchmarking the robustness of zero-shot image classifiers.

Data flows one way: spec -> plan -> units -> executor -> store -> report.
Models take pixels in [0, 1] and normalise inside, so shifts and attacks act in pixel space.
"""

__version__ = "0.1.0"
STORE_FORMAT = 1  # bump when the on-disk layout of a run directory changes incompatibly

from roz.errors import RozError  # noqa: E402

__all__ = ["RozError", "__version__", "STORE_FORMAT"]
