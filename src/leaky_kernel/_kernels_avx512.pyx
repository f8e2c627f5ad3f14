# cython: boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
# The kernels compiled for the avx512 instruction set; see _kernels.pxi.tp and _dispatch.py.
include "_kernels.pxi"
