"""Setup for the pytest-benchmark suite in bench/ (run: python -m pytest bench/)."""

import os
import sys

# The project's pytest options use --import-mode=importlib, which leaves test
# directories off sys.path; the benchmarks import the shared bench/harness.py.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
