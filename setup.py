"""Build the compiled kernels, with OpenMP when the compiler has it.

Environment:
  LEAKY_KERNEL_NO_OPENMP=1   build serially even if OpenMP is available.
"""
import os
import subprocess
import sys
import tempfile
import textwrap
import warnings

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

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
    def build_extensions(self):
        compiler = self.compiler
        omp = openmp_flags(compiler) or []
        if compiler.compiler_type == "msvc":
            kernel_flags = ["/O2"]
        else:
            # -fno-trapping-math lets GCC if-convert the select so the loops
            # vectorise; it changes no computed value (bench/NOTES.md).
            kernel_flags = ["-O3", "-fno-trapping-math"]
        for ext in self.extensions:
            ext.extra_compile_args += omp + (kernel_flags if ext.name.endswith("_kernels") else [])
            ext.extra_link_args += omp
        super().build_extensions()


def extensions():
    from Cython.Build import cythonize

    names = ["_kernels", "_openmp"]
    exts = [
        Extension(f"leaky_kernel.{name}", [f"src/leaky_kernel/{name}.pyx"])
        for name in names
    ]
    return cythonize(exts, compiler_directives={"language_level": 3})


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})
