"""The Dask row: leaky_kernel.dask against Dask's own expression, on a local cluster.

    python -m pip install ".[dask]"
    python bench/dask_row.py

A 1 GiB float32 array in 64 MiB chunks is generated on two worker processes
(one thread each) and persisted there before any timing, so the times are the
activation, not data generation. The two contenders, each reduced by the same
sum so that no array travels back to the client:

    leaky_kernel.dask.leaky_relu(x, a).sum()
    da.where(x > 0, x, a * x).sum()          # a = float32(0.01), as the kernel rounds it

Both sums are checked to be equal first (the elementwise results are
identical and so is the reduction). Timing: harness.time_interleaved, one
compute per loop, interleaved, medians of five rounds.
"""
import os
from dataclasses import dataclass

import dask.array as da
import numpy as np
from distributed import Client, LocalCluster, wait

import harness
import leaky_kernel.dask as lk_dask
from harness import SEED, SLOPE, Entry, TimingSettings

TOTAL_BYTES = 1 << 30
CHUNK_BYTES = 64 << 20
WORKERS = 2
LEAKY_KERNEL_DASK = "leaky_kernel.dask"
DASK_WHERE = "da.where"
# A compute lasts far longer than loop_seconds, so every loop is one compute.
ROUNDS = TimingSettings(min_rounds=5, max_rounds=5)


@dataclass
class DaskRow:
    total_bytes: int
    chunk_bytes: int
    workers: int
    medians_s: dict  # median seconds per compute, by contender

    @property
    def ratio(self):
        """Time of leaky_kernel.dask / time of da.where: below 1 is faster."""
        return self.medians_s[LEAKY_KERNEL_DASK] / self.medians_s[DASK_WHERE]

    def line(self):
        medians = ", ".join(f"{name} {seconds:.3f} s" for name, seconds in self.medians_s.items())
        return (
            f"Dask: {self.total_bytes >> 20} MiB float32 in {self.chunk_bytes >> 20} MiB chunks, "
            f"{self.workers} workers x 1 thread, forward + sum: {medians}; "
            f"time {LEAKY_KERNEL_DASK} / {DASK_WHERE} = {self.ratio:.2f}"
        )


def measure(settings=ROUNDS, total_bytes=TOTAL_BYTES, chunk_bytes=CHUNK_BYTES, workers=WORKERS):
    """A DaskRow measured on a new LocalCluster, closed afterwards."""
    itemsize = np.dtype(np.float32).itemsize
    with LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, Client(cluster) as client:
        x = da.random.default_rng(SEED).standard_normal(
            total_bytes // itemsize, chunks=chunk_bytes // itemsize, dtype=np.float32
        )
        x = client.persist(x)
        wait(x)
        a = np.float32(SLOPE)
        sums = {
            LEAKY_KERNEL_DASK: lk_dask.leaky_relu(x, SLOPE).sum(),
            DASK_WHERE: da.where(x > 0, x, a * x).sum(),
        }
        results = {name: client.compute(total).result() for name, total in sums.items()}
        if results[LEAKY_KERNEL_DASK] != results[DASK_WHERE]:
            raise AssertionError(f"the contenders' sums differ: {results}")
        entries = {
            name: Entry(lambda total=total: client.compute(total).result())
            for name, total in sums.items()
        }
        timings = harness.time_interleaved(entries, settings)
    medians = {name: timing.median for name, timing in timings.items()}
    return DaskRow(total_bytes, chunk_bytes, workers, medians)


if __name__ == "__main__":
    # Other processes slow both contenders, but not necessarily alike.
    print("load average at start: %.2f %.2f %.2f" % os.getloadavg())
    print(measure().line())
