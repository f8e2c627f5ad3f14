"""Shared test configuration: the hypothesis profile, memory layouts, fixtures.

Test modules are imported with --import-mode=importlib, so they cannot import
each other or this file; everything shared is handed out through fixtures.
"""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# The suite runs with the default tuning, whatever wisdom this machine's user
# cache holds; tests that need another choice set it themselves.
os.environ.setdefault("LEAKY_KERNEL_TUNING", "default")

import leaky_kernel as lk  # noqa: E402
from leaky_kernel._testing import random_operand  # noqa: E402

# No deadline: the first call of a kernel and the occasional large example
# are slow for reasons unrelated to correctness.
settings.register_profile(
    "leaky_kernel",
    deadline=None,
    max_examples=100,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("leaky_kernel")


class Layout:
    """A memory layout: calling it on an array returns a new array with the
    same dtype, shape and values, laid out in memory that way."""

    def __init__(self, name, make):
        self.name = name
        self._make = make

    def __call__(self, a):
        return self._make(np.asarray(a))

    def __repr__(self):
        return self.name


def _permuted(a):
    # First axis stored innermost: neither C nor F order from 3 dimensions on.
    if a.ndim == 0:
        return a.copy()
    return np.moveaxis(np.moveaxis(a, 0, -1).copy(), -1, 0)


def _stepped(a):
    # Every axis a step-2 slice of a larger buffer: from 3 dimensions on the
    # axes merge into no fewer than 3, which sends the kernel through C order.
    big = np.zeros(tuple(2 * n + 1 for n in a.shape), a.dtype)
    view = big[(...,) + (slice(1, None, 2),) * a.ndim]
    view[...] = a
    return view


def _reversed(a):
    # Negative steps on every axis.
    flip = (...,) + (slice(None, None, -1),) * a.ndim
    return a[flip].copy()[flip]


def _misaligned(a):
    # Data one byte past an allocation boundary: unaligned for itemsize > 1.
    buffer = np.empty(a.nbytes + 1, np.uint8)
    view = buffer[1:].view(a.dtype).reshape(a.shape)
    view[...] = a
    return view


def _read_only(a):
    a = a.copy()
    a.flags.writeable = False
    return a


LAYOUTS = [
    Layout("C", lambda a: a.copy(order="C")),
    Layout("F", lambda a: a.copy(order="F")),
    Layout("permuted", _permuted),
    Layout("stepped", _stepped),
    Layout("reversed", _reversed),
    Layout("misaligned", _misaligned),
    Layout("read_only", _read_only),
]


@pytest.fixture(params=LAYOUTS, ids=repr)
def layout(request):
    """Each input layout in turn."""
    return request.param


@pytest.fixture(scope="session")
def layouts():
    """All input layouts, for hypothesis to draw from."""
    return LAYOUTS


@pytest.fixture(params=[layout for layout in LAYOUTS if layout.name != "read_only"], ids=repr)
def writeable_layout(request):
    """Each input layout that can also serve as `out`."""
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(20240517)


@pytest.fixture
def make_operand(rng):
    """make_operand(shape, dtype): floats over many magnitudes with ~5% special
    values (signed zeros, NaN, infinities, subnormals, huge); bools and
    integers with both signs where the dtype has them."""

    def make(shape, dtype):
        dtype = np.dtype(dtype)
        if dtype.kind == "f":
            return random_operand(rng, shape, dtype.newbyteorder("=")).astype(dtype)
        return rng.integers(-100, 100, shape).astype(dtype)

    return make


@pytest.fixture(autouse=True)
def _restore_default_num_threads():
    """No test leaks a package default thread count into the next one."""
    yield
    lk.set_num_threads(None)


@pytest.fixture(scope="session")
def run_python(tmp_path_factory):
    """Run a fresh interpreter with these arguments (e.g. "-c", source).

    A hang fails the test instead of stalling the suite: after `timeout`
    seconds the interpreter and everything it started (forked children
    included, they share its new session) are killed.
    """
    cwd = tmp_path_factory.mktemp("subprocess")  # not the source tree

    def run(*args, env=None, timeout=60):
        command = [sys.executable, *args]
        with subprocess.Popen(
            command,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        ) as process:
            try:
                stdout, stderr = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                if hasattr(os, "killpg"):
                    os.killpg(process.pid, signal.SIGKILL)
                else:
                    process.kill()
                stdout, stderr = process.communicate()
                pytest.fail(f"{command} did not finish within {timeout} s:\n{stdout}\n{stderr}")
        return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)

    return run
