"""python -m leaky_kernel: the configuration it prints and what its
self-check costs, whatever the tuning says. Each run is a child process with
a timeout, as a bad tuning value could make it allocate without bound."""

import os
import sys

import pytest

import leaky_kernel as lk
from leaky_kernel._tuning import NEVER

# The self-check, then its peak resident memory in MiB on the last line:
# VmHWM, this process's own high-water mark (ru_maxrss would include the
# parent's memory at the fork).
SELF_CHECK_WITH_PEAK_MEMORY = """
from leaky_kernel.__main__ import main
status = main([])
with open("/proc/self/status") as f:
    peak_kib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
print(status, peak_kib // 1024)
"""


linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="peak memory read from /proc/self/status"
)


def self_check(run_python, tmp_path, tuning):
    process = run_python(
        "-c", SELF_CHECK_WITH_PEAK_MEMORY,
        env={"LEAKY_KERNEL_TUNING": tuning, "LEAKY_KERNEL_CACHE_DIR": str(tmp_path)},
        timeout=120,
    )
    assert process.returncode == 0, process.stderr[-2000:]
    lines = process.stdout.splitlines()
    status, peak_mib = map(int, lines[-1].split())
    return status, peak_mib, lines[:-1]


@linux_only
def test_a_large_thread_cutoff_does_not_size_the_self_checks_arrays(run_python, tmp_path):
    # "Never parallel" spelled as a large number once made the self-check
    # allocate gigabytes.
    status, peak_mib, lines = self_check(run_python, tmp_path, "min_thread_elements=100000000")
    assert status == 0
    assert peak_mib < 256, f"the self-check peaked at {peak_mib} MiB"
    assert any("(serial below 200000000 elements; " in line for line in lines), lines


@linux_only
def test_the_configuration_shows_never_sizes_in_mib_and_the_wisdom_file(run_python, tmp_path):
    # 2^63-1 as the cutoff once printed "serial below -2 elements" and died.
    status, peak_mib, lines = self_check(
        run_python, tmp_path,
        f"min_thread_elements={NEVER},stream_out_min_bytes=67108864,stream_pages_min_bytes=never",
    )
    assert status == 0
    assert peak_mib < 256, f"the self-check peaked at {peak_mib} MiB"
    threads = next(line for line in lines if line.startswith("  threads: "))
    assert "serial at every size" in threads and "-2" not in threads
    assert "    threads: serial at every size (set by LEAKY_KERNEL_TUNING)" in lines
    at = lines.index("    forward out parallel: ordinary; stream from 64 MiB moved")
    assert lines[at + 1] == "        (set by LEAKY_KERNEL_TUNING)"
    assert not any(str(NEVER) in line for line in lines)
    wisdom = os.path.join(str(tmp_path), "wisdom.json")
    assert any(line.startswith(f"  wisdom:  {wisdom} (") for line in lines), lines


def test_version_prints_the_version_and_runs_nothing(run_python):
    process = run_python("-m", "leaky_kernel", "--version")
    assert process.returncode == 0, process.stderr
    assert process.stdout.strip() == f"leaky_kernel {lk.__version__}"
