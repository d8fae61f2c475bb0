"""Make the dataset fixture builders importable as ``natural_fixtures``."""

import sys
from pathlib import Path

_here = str(Path(__file__).resolve().parent)
if _here not in sys.path:
    sys.path.insert(0, _here)
