"""The installed build: OpenMP present, the self-check command, the public API."""

import importlib
import importlib.metadata
import inspect
import os
import re
import sys

import pytest

import leaky_kernel as lk
from leaky_kernel import reference
from leaky_kernel._dispatch import LEVELS, kernels
from leaky_kernel._threads import THREAD_CAP

# Arrays below this many elements run serially.
PARALLEL_MIN_SIZE = kernels.PARALLEL_MIN_SIZE

SERIAL_BUILD_REQUESTED = os.environ.get("LEAKY_KERNEL_NO_OPENMP", "") not in ("", "0")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="OpenMP is only required on Linux")
@pytest.mark.skipif(SERIAL_BUILD_REQUESTED, reason="LEAKY_KERNEL_NO_OPENMP asks for a serial build")
def test_openmp_is_enabled_on_linux():
    # The build falls back to serial, with only a warning, when its OpenMP
    # probe fails; on Linux that means a broken toolchain, so fail loudly.
    assert lk.openmp_enabled() is True, (
        "leaky_kernel was built without OpenMP; set LEAKY_KERNEL_NO_OPENMP=1 if that was intended"
    )


def test_command_line_self_check_passes(run_python):
    process = run_python("-m", "leaky_kernel", timeout=120)
    assert process.returncode == 0, process.stdout + process.stderr
    lines = process.stdout.splitlines()
    assert lines[0] == f"leaky_kernel {lk.__version__}"
    openmp = "enabled" if lk.openmp_enabled() else "disabled (serial build)"
    assert f"  OpenMP:  {openmp}" in lines
    assert (
        f"  threads: {lk.get_num_threads()} (serial below {PARALLEL_MIN_SIZE} elements; "
        f"at most {THREAD_CAP})"
    ) in lines
    assert f"  SIMD:    {kernels.SIMD} (this CPU runs: {', '.join(LEVELS)})" in lines
    # Each route's plan and where it came from, and the thread cutoff.
    plans, reasons = lk.get_tuning()["plans"]
    for name in plans:
        at = lines.index(f"    {name}: " + "; ".join(
            f"{v} from {start / (1 << 20):.4g} MiB moved" if start else v
            for start, v in plans[name]))
        assert lines[at + 1] == f"        ({reasons[name]})"
    value, why = lk.get_tuning()["min_thread_elements"]
    assert f"    threads: serial below {2 * value} elements ({why})" in lines
    # Every level, store variant and the public API, each named as checked.
    for level in LEVELS:
        for variant in ("ordinary stores", "streaming stores, prefetch none",
                        "streaming stores, prefetch t0", "streaming stores, prefetch nta"):
            assert any(
                line.startswith(f"  {level} ") and variant in line and line.endswith(": ok")
                for line in lines
            ), (level, variant)
    assert lines[-1] == "self-check passed: every kernel path matches the oracle bit for bit"


def test_command_line_help_prints_usage_and_runs_nothing(run_python):
    process = run_python("-m", "leaky_kernel", "--help")
    assert process.returncode == 0, process.stderr
    assert process.stdout.startswith("usage: python -m leaky_kernel")
    assert "tune" in process.stdout
    assert "self-check passed" not in process.stdout


def test_command_line_rejects_an_unknown_command(run_python):
    process = run_python("-m", "leaky_kernel", "frobnicate")
    assert process.returncode == 2
    assert "invalid choice: 'frobnicate'" in process.stderr


LEVEL_CHECK = """
import numpy as np
import leaky_kernel as lk
from leaky_kernel import reference
from leaky_kernel._dispatch import kernels
from leaky_kernel._testing import bits_equal, random_operand

rng = np.random.default_rng(0)
for dtype in (np.float32, np.float64):
    x = random_operand(rng, (301, 233), dtype)
    for view in (x, x.T, x[::2, ::-3]):
        assert bits_equal(lk.leaky_relu(view, -0.5), reference.leaky_relu(view, -0.5))
print(kernels.__name__)
"""


@pytest.mark.parametrize("level", LEVELS)
def test_environment_picks_the_instruction_set_level(run_python, level):
    process = run_python("-c", LEVEL_CHECK, env={"LEAKY_KERNEL_SIMD": level})
    assert process.returncode == 0, process.stderr
    assert process.stdout.strip() == f"leaky_kernel._kernels_{level}"


def test_unavailable_instruction_set_level_warns_and_uses_the_widest(run_python):
    process = run_python("-c", LEVEL_CHECK, env={"LEAKY_KERNEL_SIMD": "sse9"})
    assert process.returncode == 0, process.stderr
    assert process.stdout.strip() == f"leaky_kernel._kernels_{LEVELS[-1]}"
    assert "RuntimeWarning: LEAKY_KERNEL_SIMD='sse9' is not available here" in process.stderr


def test_self_check_reports_mismatches(monkeypatch, capsys):
    # An oracle that disagrees with the kernels on the backward only: the
    # self-check must exit 1 and list exactly the backward cases.
    cli = importlib.import_module("leaky_kernel.__main__")
    backward = reference.leaky_relu_backward
    monkeypatch.setattr(reference, "leaky_relu_backward", lambda *args: -backward(*args))
    assert cli.main([]) == 1
    report = capsys.readouterr().out.splitlines()
    summary = next(i for i, line in enumerate(report) if line.startswith("self-check FAILED"))
    failures = report[summary + 1 :]
    assert report[summary] == f"self-check FAILED: {len(failures)} mismatches with the oracle"
    # Backward cases of every dtype and every kernel path, and no forward case.
    assert failures
    assert all(line.startswith("  backward ") for line in failures)
    for dtype in ("float16", "float32", "float64"):
        assert any(line.startswith(f"  backward {dtype} ") for line in failures)
    for path in ("contiguous allocating", "contiguous out=", "strided step 3", "from mask"):
        for level in LEVELS:
            assert any(path in line and f"({level}, " in line for line in failures), path


# The API of issue 2. Later issues add names; these must stay.
ISSUE_2_API = {
    "leaky_relu",
    "leaky_relu_backward",
    "get_num_threads",
    "set_num_threads",
    "openmp_enabled",
    "reference",
    "__version__",
}


def test_public_api():
    assert ISSUE_2_API <= set(lk.__all__)
    assert len(set(lk.__all__)) == len(lk.__all__)
    # Only what __all__ lists is exported, and all of it exists.
    namespace = {}
    exec("from leaky_kernel import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(lk.__all__)
    assert not [name for name in lk.__all__ if name.startswith("_") and name != "__version__"]
    assert {"leaky_relu", "leaky_relu_backward"} <= set(reference.__all__)


def test_version_is_the_installed_distribution_version():
    assert lk.__version__ == importlib.metadata.version("leaky_kernel")


@pytest.mark.parametrize("name", ["leaky_relu", "leaky_relu_backward"])
def test_reference_has_the_signature_of_the_compiled_function(name):
    # Same names, order, kinds and defaults, without out=, where=, NumPy's
    # other ufunc keywords and num_threads=.
    only_compiled = ("out", "where", "dtype", "casting", "order", "subok", "num_threads")
    compiled = inspect.signature(getattr(lk, name)).parameters.values()
    oracle = inspect.signature(getattr(reference, name)).parameters.values()
    assert list(oracle) == [p for p in compiled if p.name not in only_compiled]
    assert [p.name for p in compiled if p.name in only_compiled] == list(only_compiled)


@pytest.mark.parametrize("function", [lk.leaky_relu, lk.leaky_relu_backward])
def test_default_slope_is_0_01(function):
    assert inspect.signature(function).parameters["negative_slope"].default == 0.01
