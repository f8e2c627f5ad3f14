"""How leaky_kernel fits the machine it runs on: every CPU-dependent choice.

The choices (the kernel's `Tuning` fields, _kernels.pxi):

- ``stream_out_min_bytes``: a call into a caller's ``out=`` that moves at
  least this many bytes (its inputs and its output: twice the output's bytes
  for the forward, three times for the backward) writes them with streaming
  (non-temporal) stores. Whether the operands still fit in the caches is what
  decides, hence the bytes moved rather than the output's;
- ``stream_fresh_min_bytes``: the same for a result the call allocates. Fresh
  pages are zeroed by the OS into the cache just before the kernel writes
  them, so the answer differs from ``out=``'s, and between CPUs;
- ``stream_pages_min_bytes``: a streamed forward that moves at least this
  many bytes walks four pages at a time with their lines interleaved, as
  glibc's memcpy does, instead of line by line with the software prefetch.
  Far beyond the caches this keeps more reads in flight on some CPUs and
  loses on others. The backward, with twice the read streams, gained nothing
  from it on either instruction set measured (bench/NOTES.md section 31), so
  it always goes line by line;
- ``prefetch`` (``none``, ``t0`` or ``nta``) and ``prefetch_bytes``: software
  prefetch of the inputs in the streaming loops;
- ``min_thread_elements``: a thread takes at least this many elements, so a
  call runs serially below twice that.

No choice changes a computed bit; each changes only speed, and which is
fastest differs between CPUs by up to 2.5x (bench/NOTES.md). So they are
measured on the running machine rather than read off a cache size, which a
virtual machine may misreport. Where each choice comes from, first match
first:

1. ``set_tuning(...)``, or the environment variable LEAKY_KERNEL_TUNING, as
   ``name=value`` pairs separated by commas (``default`` ignores the wisdom);
2. wisdom: what ``python -m leaky_kernel tune`` (or `tune`) measured on this
   machine, kept in the user's cache directory per CPU model, instruction
   set, usable CPUs and package version, as FFTW keeps its wisdom;
3. the defaults below, a rule that holds on every CPU measured so far.
"""
import datetime
import json
import os
import time
import warnings

import numpy as np

from ._dispatch import LEVELS, kernels, load
from ._threads import THREAD_CAP
from ._version import __version__

MIB = 1 << 20
NEVER = np.iinfo(np.intp).max
# A measured choice replaces the simpler one only when it is this much
# faster: on a shared machine, smaller differences are noise.
MARGIN = 0.97
# At the caches' edge a wrong choice loses far more than a right one gains:
# streaming an output the caches still hold took up to 1.2x as long, and two
# threads where one would do, when both take microseconds and the other core
# may be busy, up to 1.07x, where the right choice there gained a few
# percent (bench/NOTES.md section 31). So streaming into out= and going
# parallel start only at sizes where they won by this much.
EDGE_MARGIN = 0.90

# Lose at most a few percent to ordinary stores, and never lose by going
# parallel, on every CPU measured (bench/NOTES.md section 25): streaming
# into a large out= pays on both the Zen 1 and the Xeon measured, streaming
# into fresh pages only on Zen 1; prefetchnta ruins streaming on the Xeon;
# two threads win from 2^15 elements on Zen 1 but only from 2^16 on the Xeon.
# (Streaming from 64 MiB moved is section 25's 32 MiB forward output.)
# Walking pages was measured on the Xeon only (section 31), so by default
# streaming goes line by line, as it did on both.
DEFAULTS = {
    "stream_out_min_bytes": 64 * MIB,
    "stream_fresh_min_bytes": NEVER,
    "stream_pages_min_bytes": NEVER,
    "prefetch": "none",
    "prefetch_bytes": 1024,
    "min_thread_elements": 1 << 15,
}
PREFETCH_KINDS = tuple(kernels.PREFETCH_KINDS)
# The paged loop is measured at these multiples of tune's size: it pays, if
# at all, far beyond the caches.
PAGED_SIZES = (1, 2, 4)
# Choices that force each kind of store, for any output.
STREAM_ALWAYS = {"stream_out_min_bytes": 0, "stream_fresh_min_bytes": 0,
                 "stream_pages_min_bytes": NEVER}
STREAM_PAGES = {**STREAM_ALWAYS, "stream_pages_min_bytes": 0}
STREAM_NEVER = {"stream_out_min_bytes": NEVER, "stream_fresh_min_bytes": NEVER}
ENVIRONMENT_VARIABLE = "LEAKY_KERNEL_TUNING"
# Raised whenever a choice's meaning changes, so that wisdom measured for the
# old meaning is not read with the new one.
WISDOM_FORMAT = 2

# Why each current choice was made: {name: text}.
_reasons: dict = {}


def cpu_model():
    """The CPU's model name (Linux /proc/cpuinfo), else what platform says."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine() or "unknown"


def machine_key():
    """What a wisdom entry is valid for."""
    return (f"{cpu_model()} | {kernels.SIMD} | {THREAD_CAP} CPUs | leaky_kernel {__version__}"
            f" | wisdom {WISDOM_FORMAT}")


def wisdom_path():
    """The wisdom file: $LEAKY_KERNEL_CACHE_DIR, else the user's cache directory."""
    directory = os.environ.get("LEAKY_KERNEL_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "leaky_kernel",
    )
    return os.path.join(directory, "wisdom.json")


def check_choices(choices):
    """`choices` as the kernel takes them; TypeError or ValueError naming the choice."""
    checked = {}
    for name, value in choices.items():
        if name not in DEFAULTS:
            raise TypeError(f"unknown tuning choice {name!r}; known: {', '.join(DEFAULTS)}")
        if name == "prefetch":
            if value not in PREFETCH_KINDS:
                raise ValueError(f"prefetch must be one of {PREFETCH_KINDS}, got {value!r}")
            checked[name] = value
            continue
        _require_int(name, value)
        if not 0 <= value <= NEVER or (name == "min_thread_elements" and value < 1):
            raise ValueError(f"{name} must be an int from {int(name == 'min_thread_elements')} "
                             f"to {NEVER}, got {value}")
        checked[name] = int(value)
    return checked


def _require_int(name, value):
    """TypeError naming `name` unless value is an int (bool is not)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")


def parse_choices(text):
    """LEAKY_KERNEL_TUNING's ``name=value,...`` as a dict of checked choices."""
    choices = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"expected name=value, got {pair!r}")
        name, value = name.strip(), value.strip()
        choices[name] = value if name == "prefetch" else _parse_int(name, value)
    return check_choices(choices)


def _parse_int(name, value):
    if value == "never":
        return NEVER
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be an int or 'never', got {value!r}") from None


def read_wisdom(path=None):
    """This machine's entry of the wisdom file as {"choices", "measured", ...}, or None."""
    try:
        with open(path or wisdom_path()) as f:
            entry = json.load(f).get(machine_key())
        if entry is not None:
            entry["choices"] = check_choices(entry["choices"])
        return entry
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def write_wisdom(entry, path=None):
    """Store `entry` as this machine's wisdom, keeping other machines' entries."""
    path = path or wisdom_path()
    try:
        with open(path) as f:
            wisdom = json.load(f)
        if not isinstance(wisdom, dict):
            wisdom = {}
    except (OSError, ValueError):
        wisdom = {}
    wisdom[machine_key()] = entry
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w") as f:
        json.dump(wisdom, f, indent=1, sort_keys=True)
    os.replace(temporary, path)  # readers never see half a file


def apply(overrides=None):
    """Configure the kernels: overrides, else the environment, else wisdom, else defaults."""
    choices = dict(DEFAULTS)
    reasons = {name: "default (no wisdom for this machine)" for name in DEFAULTS}
    use_wisdom, from_environment = _environment()
    wisdom = read_wisdom() if use_wisdom else None
    if wisdom is not None:
        choices.update(wisdom["choices"])
        when = wisdom.get("date", "?")
        for name in wisdom["choices"]:
            why = wisdom.get("why", {}).get(name, "")
            reasons[name] = f"measured by `tune` on {when}" + (f": {why}" if why else "")
    for source, given in (
        (f"set by {ENVIRONMENT_VARIABLE}", from_environment),
        ("set by set_tuning()", overrides or {}),
    ):
        choices.update(given)
        reasons.update(dict.fromkeys(given, source))
    for level in LEVELS:  # the self-check and the tests call every level's module
        load(level).configure(**choices)
    _reasons.clear()
    _reasons.update(reasons)
    return choices


def _environment():
    """(whether to read the wisdom, the choices LEAKY_KERNEL_TUNING sets)."""
    text = os.environ.get(ENVIRONMENT_VARIABLE, "").strip()
    if text == "default":
        return False, {}
    try:
        return True, parse_choices(text)
    except (TypeError, ValueError) as exc:
        warnings.warn(f"{ENVIRONMENT_VARIABLE} ignored: {exc}", RuntimeWarning, stacklevel=3)
        return True, {}


_overrides: dict = {}


def set_tuning(**choices):
    """Override tuning choices for this process (none: back to wisdom and defaults).

    No choice changes a computed bit, only speed.

    Parameters
    ----------
    **choices
        Any of the choices `get_tuning` lists, by name: byte thresholds
        and ``min_thread_elements`` as ints, ``prefetch`` as ``"none"``,
        ``"t0"`` or ``"nta"``. Called with none, drops every override.

    Returns
    -------
    None

    Raises
    ------
    TypeError
        For an unknown choice, or a value of the wrong type.
    ValueError
        For a value out of range.

    See Also
    --------
    get_tuning : The choices in force and why.
    tune : Measure them on this machine.

    Examples
    --------
    >>> import leaky_kernel as lk
    >>> lk.set_tuning(prefetch="t0", min_thread_elements=65536)
    >>> lk.get_tuning()["prefetch"]
    ('t0', 'set by set_tuning()')
    >>> lk.set_tuning()  # back to the wisdom and the defaults
    """
    checked = check_choices(choices)
    if not choices:
        _overrides.clear()
    _overrides.update(checked)
    apply(_overrides)


def get_tuning():
    """The tuning choices as the kernels use them now, and why.

    Returns
    -------
    choices : dict
        ``{name: (value, why)}`` for every choice: ``why`` says whether the
        value came from `set_tuning`, the environment variable
        ``LEAKY_KERNEL_TUNING``, the wisdom `tune` stored, or the defaults.

    See Also
    --------
    set_tuning : Override choices for this process.
    tune : Measure them on this machine.

    Examples
    --------
    >>> import leaky_kernel as lk
    >>> sorted(lk.get_tuning())  # doctest: +NORMALIZE_WHITESPACE
    ['min_thread_elements', 'prefetch', 'prefetch_bytes', 'stream_fresh_min_bytes',
     'stream_out_min_bytes', 'stream_pages_min_bytes']
    """
    current = kernels.get_configuration()
    return {name: (current[name], _reasons.get(name, "")) for name in DEFAULTS}


# ----------------------------------------------------------------------------
# Measuring: which choice is fastest here
# ----------------------------------------------------------------------------


def _fastest(calls, rounds):
    """{name: fastest seconds} of each zero-argument call, interleaved round by
    round: noise only ever slows a call, so the fastest is the robust figure."""
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(rounds):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def _with(choices, call):
    """`call` run under these kernel choices, the previous ones restored after."""

    def run():
        previous = kernels.configure(**choices)
        try:
            call()
        finally:
            kernels.configure(**previous)

    return run


def _prefetch_variants():
    variants = {"none": {"prefetch": "none"}}
    for kind in ("t0", "nta"):
        for distance in (512, 1024, 2048):
            variants[f"{kind} {distance} B"] = {"prefetch": kind, "prefetch_bytes": distance}
    return variants


def tune(rounds=9, size_mib=64, progress=print):
    """Measure every choice on this machine, apply the fastest and store it as
    wisdom. Takes a few seconds and about 9 x size_mib MiB of memory: the
    paged loop is measured up to 4 x size_mib.

    Run it on an idle machine: ``python -m leaky_kernel tune`` does the same.

    Parameters
    ----------
    rounds : int, default 9
        Interleaved timing rounds per choice; the fastest round counts.
    size_mib : int, default 64
        Size of the float32 operands measured, in MiB.
    progress : callable or None, default print
        Called with a line of text per step; None for silence.

    Returns
    -------
    wisdom : dict
        The entry stored: ``"choices"`` (``{name: value}``, now applied),
        ``"why"`` and ``"measured"`` (the ratios behind each choice),
        ``"date"`` and ``"machine"``.

    Raises
    ------
    TypeError
        When rounds or size_mib is not an int.
    ValueError
        When rounds or size_mib is below 1.

    See Also
    --------
    get_tuning : The choices in force and why.
    set_tuning : Override them for this process.

    Examples
    --------
    >>> import leaky_kernel as lk
    >>> chosen = lk.tune(progress=None)  # doctest: +SKIP
    """
    from ._api import leaky_relu, leaky_relu_backward

    for name, value in (("rounds", rounds), ("size_mib", size_mib)):
        _require_int(name, value)
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    progress = progress or (lambda *args: None)
    rng = np.random.default_rng(0)
    n = size_mib * MIB // 4
    # Operands of 4 x size_mib for the paged loop; the other choices use their
    # first size_mib. Tiled: only the sizes matter for speed, not the values.
    x_large, out_large = (np.empty(PAGED_SIZES[-1] * n, np.float32) for _ in range(2))
    x_large.reshape(-1, n)[:] = rng.standard_normal(n, dtype=np.float32)
    out_large.fill(0)
    x, out = x_large[:n], out_large[:n]
    g = rng.standard_normal(n, dtype=np.float32)
    why = {}
    measured = {}

    # 1. Prefetch, in the streaming loop that uses it: forward and backward out=.
    progress(f"prefetch: streaming {size_mib} MiB float32 forward and backward, out=")
    totals = {}
    for op, call in (("forward", lambda: leaky_relu(x, 0.01, out=out)),
                     ("backward", lambda: leaky_relu_backward(g, x, 0.01, out=out))):
        calls = {name: _with({**STREAM_ALWAYS, **v}, call)
                 for name, v in _prefetch_variants().items()}
        calls["ordinary stores"] = _with(STREAM_NEVER, call)
        times = _fastest(calls, rounds)
        measured[f"{op} out= {size_mib} MiB (ms)"] = _milliseconds(times)
        for name, t in times.items():
            totals[name] = totals.get(name, 0.0) + t
    ordinary = totals.pop("ordinary stores")
    best = min(totals, key=totals.get)
    if totals[best] > MARGIN * totals["none"]:
        best = "none"
    prefetch = _prefetch_variants()[best]
    why["prefetch"] = (f"{best} of {len(totals)} variants (forward + backward "
                       f"{totals[best] * 1e3:.2f} ms, none {totals['none'] * 1e3:.2f} ms, "
                       f"fastest {min(totals, key=totals.get)})")
    why["prefetch_bytes"] = why["prefetch"]
    choices = {"prefetch": prefetch["prefetch"],
               "prefetch_bytes": prefetch.get("prefetch_bytes", DEFAULTS["prefetch_bytes"])}

    # 2. Streaming into a caller's out=, by bytes moved: the cutoff from which it wins.
    sizes = [s for s in (1, 2, 4, 8, 16, 32, 64) if s <= size_mib]
    progress(f"streaming cutoff for out=: forward and backward, {sizes[0]} to "
             f"{sizes[-1]} MiB outputs")
    wins = _ratios_by_bytes_moved(x, g, out, sizes, {**STREAM_ALWAYS, **choices},
                                  STREAM_NEVER, rounds)
    measured["out= stream / ordinary time, by MiB moved"] = _rounded(wins)
    choices["stream_out_min_bytes"] = _cutoff(wins, EDGE_MARGIN)
    why["stream_out_min_bytes"] = "stream / ordinary " + _cutoff_reason(wins)

    # 3. Streaming line by line or several pages at once, by bytes moved: the
    # paged loop against the line-by-line one as tuned, forward only.
    sizes = [k * size_mib for k in PAGED_SIZES]
    progress(f"paged streaming: forward, {', '.join(map(str, sizes))} MiB outputs")
    wins = _ratios_by_bytes_moved(x_large, None, out_large, sizes, STREAM_PAGES,
                                  {**STREAM_ALWAYS, **choices}, rounds)
    measured["paged / line-by-line streaming time, by MiB moved"] = _rounded(wins)
    choices["stream_pages_min_bytes"] = _cutoff(wins, MARGIN)
    why["stream_pages_min_bytes"] = "paged / line-by-line " + _cutoff_reason(wins)

    # 4. Streaming into fresh pages: the allocating forward, at the largest size.
    progress(f"streaming into fresh pages: allocating {size_mib} MiB forward")
    call = (lambda: leaky_relu(x, 0.01))
    times = _fastest({"stream": _with({**STREAM_ALWAYS, **choices}, call),
                      "ordinary": _with(STREAM_NEVER, call)}, rounds)
    fresh = times["stream"] / times["ordinary"]
    measured[f"allocating {size_mib} MiB stream / ordinary time"] = round(fresh, 3)
    choices["stream_fresh_min_bytes"] = (
        max(choices["stream_out_min_bytes"], 2 * size_mib * MIB) if fresh < MARGIN else NEVER
    )
    why["stream_fresh_min_bytes"] = f"streaming took {fresh:.2f} of ordinary stores' time"

    # 5. Serial or parallel, by size.
    progress(f"serial/parallel cutoff: 2^12 to 2^19 elements, 1 and {THREAD_CAP} threads")
    choices["min_thread_elements"], why["min_thread_elements"], measured[
        "parallel / serial time, by log2 elements"] = _parallel_cutoff(x, out, rounds)

    entry = {
        "choices": choices,
        "why": why,
        "measured": measured,
        "ordinary stores, forward + backward (ms)": round(ordinary * 1e3, 3),
        "date": datetime.date.today().isoformat(),
        "machine": machine_key(),
    }
    write_wisdom(entry)
    apply(_overrides)
    return entry


def _milliseconds(times):
    return {name: round(t * 1e3, 3) for name, t in times.items()}


def _rounded(ratios):
    return {size: round(ratio, 3) for size, ratio in ratios.items()}


def _ratios_by_bytes_moved(x, g, out, sizes, choices, other_choices, rounds):
    """{MiB moved: time under `choices` / under `other_choices`} of the
    forward (MiB moved: twice the output's) and, unless g is None, the
    backward (three times) into out= of each size in MiB."""
    from ._api import leaky_relu, leaky_relu_backward

    ratios = {}
    for size in sizes:
        m = size * MIB // 4
        calls = [(1, lambda: leaky_relu(x[:m], 0.01, out=out[:m]))]
        if g is not None:
            calls.append((2, lambda: leaky_relu_backward(g[:m], x[:m], 0.01, out=out[:m])))
        for inputs, call in calls:
            times = _fastest({"one": _with(choices, call), "other": _with(other_choices, call)},
                             rounds)
            ratios[size * (inputs + 1)] = times["one"] / times["other"]
    return dict(sorted(ratios.items()))


def _smallest_winner(ratios, margin):
    """The smallest size from which the first choice won by `margin` at every
    size measured, or None: {size: time with it / time without} keys sizes."""
    smallest = None
    for size in sorted(ratios, reverse=True):
        if ratios[size] >= margin:
            break
        smallest = size
    return smallest


def _cutoff(ratios, margin):
    """_smallest_winner of ratios keyed by MiB, in bytes (NEVER if none)."""
    smallest = _smallest_winner(ratios, margin)
    return NEVER if smallest is None else smallest * MIB


def _cutoff_reason(ratios):
    text = ", ".join(f"{s} MiB {r:.2f}" for s, r in sorted(ratios.items()))
    return f"time, by MiB moved: {text}"


def _parallel_cutoff(x, out, rounds):
    """(min_thread_elements, why, ratios): two threads from the smallest size
    from which parallel calls won by EDGE_MARGIN at every size measured."""
    from ._api import leaky_relu

    if THREAD_CAP < 2:
        return DEFAULTS["min_thread_elements"], "one usable CPU", {}
    previous = kernels.configure(min_thread_elements=1)
    try:
        ratios = {}
        for log2 in range(12, 20):
            n = 1 << log2
            repeat = max(1, (1 << 20) // n)

            def calls(threads, n=n, repeat=repeat):
                def run():
                    for _ in range(repeat):
                        leaky_relu(x[:n], 0.01, out=out[:n], num_threads=threads)
                return run

            times = _fastest({1: calls(1), THREAD_CAP: calls(THREAD_CAP)}, rounds)
            ratios[log2] = round(times[THREAD_CAP] / times[1], 3)
    finally:
        kernels.configure(**previous)
    smallest = _smallest_winner(ratios, EDGE_MARGIN)
    if smallest is None:
        smallest = 20  # parallel from 2^20 elements, past every size measured
    text = ", ".join(f"2^{k} {r:.2f}" for k, r in ratios.items())
    return (1 << smallest) // 2, f"parallel / serial time: {text}", ratios


apply()
