"""Build the compiled kernels: OpenMP when the compiler has it, and one
kernel module per instruction-set level (see src/leaky_kernel/_dispatch.py).

Environment:
  LEAKY_KERNEL_NO_OPENMP=1   build serially even if OpenMP is available.
"""
import importlib.util
import os
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import warnings

import numpy
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

PACKAGE_DIR = os.path.join("src", "leaky_kernel")

OPENMP_PROBE = textwrap.dedent(
    """
    #include <omp.h>
    #include <stdio.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n) num_threads(2)
        n += 1;
        printf("%d\\n", n);
        return n == 2 ? 0 : 1;
    }
    """
)

# Extra flags of each kernel module beyond the baseline, by compiler type.
# The baseline is the platform's default target (SSE2 on x86-64), never -march=native.
# The target's machine, not the host's: sysconfig follows a cross-compile
# (cibuildwheel builds macOS x86-64 wheels on arm64), platform.machine() does not.
TARGET_MACHINE = sysconfig.get_platform().rpartition("-")[2].lower()
KERNEL_LEVELS = {"baseline": {"unix": [], "msvc": []}}
if TARGET_MACHINE in ("x86_64", "amd64"):
    KERNEL_LEVELS["avx2"] = {"unix": ["-mavx2"], "msvc": ["/arch:AVX2"]}
    KERNEL_LEVELS["avx512"] = {
        "unix": ["-mavx512f", "-mavx512dq", "-mavx512bw", "-mavx512vl",
                 "-mprefer-vector-width=512"],
        "msvc": ["/arch:AVX512"],
    }

# -fno-trapping-math lets GCC if-convert the select so that the loops
# vectorise; it changes no computed value, only lets the compiler assume that
# floating-point operations do not trap. No -ffast-math.
KERNEL_FLAGS = {"unix": ["-O3", "-fno-trapping-math"], "msvc": ["/O2"]}

# Debug information made up most of a kernel module's size.
# --strip-debug keeps the symbol table, so profilers and backtraces still name
# functions. macOS's linker leaves DWARF in the object files and MSVC emits none
# without /Zi, so only Linux (GNU ld, gold and lld alike) needs it.
STRIP_FLAGS = ["-Wl,--strip-debug"] if sys.platform.startswith("linux") else []


def openmp_flags(compiler):
    """Compile, link and run a probe; return the flags if it worked, else None."""
    if os.environ.get("LEAKY_KERNEL_NO_OPENMP", "") not in ("", "0"):
        return None
    flag = "/openmp" if compiler.compiler_type == "msvc" else "-fopenmp"
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "probe.c")
        with open(source, "w") as f:
            f.write(OPENMP_PROBE)
        try:
            objects = compiler.compile([source], output_dir=tmp, extra_postargs=[flag])
            exe = os.path.join(tmp, "probe")
            compiler.link_executable(objects, exe, extra_postargs=[flag])
            subprocess.run([exe], check=True, capture_output=True, timeout=60)
        except Exception as exc:  # compile, link or run failure all mean "no OpenMP"
            warnings.warn(
                f"OpenMP is not available ({type(exc).__name__}: {exc}); "
                "building leaky_kernel serially. Set CC to a compiler with OpenMP "
                "(e.g. gcc, or clang with libomp) for parallel kernels.",
                stacklevel=1,
            )
            return None
    return [flag]


class BuildExt(build_ext):
    def finalize_options(self):
        super().finalize_options()
        # The flags depend on the environment (LEAKY_KERNEL_NO_OPENMP, the
        # compiler), which setuptools' up-to-date check cannot see: always rebuild.
        self.force = True

    def build_extensions(self):
        kind = "msvc" if self.compiler.compiler_type == "msvc" else "unix"
        omp = openmp_flags(self.compiler) or []
        for ext in self.extensions:
            level = ext.name.rpartition("_kernels_")[2] if "_kernels_" in ext.name else None
            if level:
                ext.extra_compile_args += KERNEL_FLAGS[kind] + KERNEL_LEVELS[level][kind]
            ext.extra_compile_args += omp
            ext.extra_link_args += omp + STRIP_FLAGS
        super().build_extensions()


def generate_sources():
    """Expand the kernel templates (tools/generate_kernels.py) before Cython runs."""
    spec = importlib.util.spec_from_file_location(
        "generate_kernels", os.path.join("tools", "generate_kernels.py"))
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    generator.generate(PACKAGE_DIR)


def extensions():
    from Cython.Build import cythonize

    generate_sources()

    common = dict(
        include_dirs=[numpy.get_include(), PACKAGE_DIR],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
    modules = ["_openmp"] + [f"_kernels_{level}" for level in KERNEL_LEVELS]
    exts = [
        Extension(f"leaky_kernel.{name}", [os.path.join(PACKAGE_DIR, f"{name}.pyx")], **common)
        for name in modules
    ]
    return cythonize(exts, compiler_directives={"language_level": 3})


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})
