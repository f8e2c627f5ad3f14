"""_cpu.h's AVX2 detection.

The MSVC branch (__cpuidex and _xgetbv) cannot be compiled with MSVC here, so
it is compiled with GCC, with _MSC_VER defined and the two intrinsics given by
stand-in headers that execute the same CPUID and XGETBV instructions. Its
answer must be GCC's own __builtin_cpu_supports("avx2") on this machine. That
checks the leaves, registers and bits it reads, not MSVC itself.
"""
import platform
import shutil
import subprocess
from pathlib import Path

import pytest

CPU_H = Path(__file__).resolve().parents[1] / "src" / "leaky_kernel" / "_cpu.h"

pytestmark = [
    pytest.mark.skipif(not CPU_H.exists(), reason="needs the source tree"),
    pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc"),
    pytest.mark.skipif(
        platform.machine().lower() not in ("x86_64", "amd64"), reason="x86-64 CPUID"
    ),
]

# MSVC's two intrinsics, as the CPUID and XGETBV instructions they execute.
INTRIN_H = """
static inline void __cpuidex(int regs[4], int leaf, int subleaf) {
    __asm__ volatile ("cpuid"
                      : "=a"(regs[0]), "=b"(regs[1]), "=c"(regs[2]), "=d"(regs[3])
                      : "a"(leaf), "c"(subleaf));
}
"""
IMMINTRIN_H = """
static inline unsigned long long _xgetbv(unsigned int xcr) {
    unsigned int lo, hi;
    __asm__ volatile (".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(xcr));
    return ((unsigned long long)hi << 32) | lo;
}
"""
# No libc header: those need __GNUC__, which the MSVC run undefines.
PROGRAM = """
#include "_cpu.h"
int main(void) { return LEAKY_KERNEL_CPU_HAS_AVX2() ? 11 : 10; }
"""


# Compiles _cpu.h as MSVC would see it, in its MSVC branch.
MSVC_DEFINES = ["-D_MSC_VER=1930", "-D_M_X64=100", "-U__GNUC__"]


def gcc(tmp_path, name, defines, *args):
    shims = tmp_path / "shims"
    shims.mkdir(exist_ok=True)
    (shims / "intrin.h").write_text(INTRIN_H)
    (shims / "immintrin.h").write_text(IMMINTRIN_H)
    source = tmp_path / f"{name}.c"
    source.write_text(PROGRAM)
    command = ["gcc", *defines, f"-I{shims}", f"-I{CPU_H.parent}", str(source), *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def run_detection(tmp_path, name, defines):
    """Whether _cpu.h, compiled with these defines, says this CPU runs AVX2."""
    exe = tmp_path / name
    gcc(tmp_path, name, defines, "-o", str(exe))
    status = subprocess.run([str(exe)]).returncode
    assert status in (10, 11), f"{name} detection crashed or failed: exit status {status}"
    return status == 11


def test_msvc_defines_select_the_cpuid_branch(tmp_path):
    # Else the next test could compare the builtin, or the constant 0, with itself.
    preprocessed = gcc(tmp_path, "msvc", MSVC_DEFINES, "-E")
    main = preprocessed[preprocessed.index("int main(void)"):]
    assert "leaky_kernel_msvc_cpu_has_avx2()" in main


def test_msvc_branch_agrees_with_gcc_builtin(tmp_path):
    assert run_detection(tmp_path, "msvc", MSVC_DEFINES) == run_detection(tmp_path, "gcc", [])


def test_builtin_agrees_with_the_package(tmp_path):
    # The compiled modules ask the same header: avx2 is a runnable level
    # exactly when GCC's builtin says this CPU has it.
    import leaky_kernel._dispatch as dispatch

    if not dispatch._built("avx2"):
        pytest.skip("this build has no AVX2 module")
    assert ("avx2" in dispatch.LEVELS) == run_detection(tmp_path, "gcc", [])
