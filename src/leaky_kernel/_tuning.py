"""How leaky_kernel fits the machine it runs on: every CPU-dependent choice.

Design
------
No choice changes a computed bit; each changes only speed, and which is
fastest differs between CPUs by 2x and more, and flips within one power of
two near the caches' sizes. So the running machine decides, as FFTW's wisdom
and ``torch.backends.cudnn.benchmark`` do, and every decision it makes by
measuring is checked by measuring again before it is trusted.

The choices (the kernel's ``configure``, _kernels.pxi.tp):

- ``plans``: for each route (forward or backward, into a caller's out= or a
  fresh result, serial or parallel), bands of bytes moved (inputs plus
  output), each with a store variant of VARIANTS: ordinary stores, or
  streaming (non-temporal) stores with or without software prefetch, or
  streaming four pages at a time (forward only);
- ``min_thread_elements``: a thread takes at least this many elements, so a
  call runs serially below twice that.

Where they come from, first match first:

1. ``set_tuning(...)``, or the environment variable LEAKY_KERNEL_TUNING, as
   ``name=value`` pairs separated by commas, in the simple form of RULE
   (``default`` alone: the default rule, no wisdom and no fitting);
2. wisdom: what was measured on this machine, kept in the user's cache
   directory per CPU model, instruction set, usable CPUs and package version,
   by ``python -m leaky_kernel tune`` (thorough) or by fitting (quick);
3. fitting: the first call that moves FIT_MIN_BYTES or more, on a route mode
   (serial or parallel) with no wisdom, first measures this machine for a few
   seconds (`fit`) and stores what it found as wisdom;
4. RULE, the default rule, where nothing was measured.

Measuring (`_measure`) times each variant in its own steady state, as a
user's loop calls it: a warm-up call, then a block of repeated calls, the
fastest block of several rounds, variants interleaved round by round. Timing
single calls of each variant in turn on the same buffers would time each in
the cache state the other left. `_choose` and `_bands` turn the times into
plans; `_check` then times the plans against every variant at every size and
at the bands' edges, mends any size whose regret (plan time over the fastest
variant's) is above REGRET_LIMIT, and gives the regret table stored with the
wisdom. A machine too busy to measure (`_busy`) stores nothing.
"""
import contextlib
import datetime
import json
import math
import os
import threading
import time

import numpy as np

from ._dispatch import LEVELS, kernels, load
from ._rules import THREAD_CAP
from ._threads import get_num_threads
from ._version import __version__
from ._warn import warn_user

MIB = 1 << 20
NEVER = np.iinfo(np.intp).max
ROUTES = tuple(kernels.ROUTES)
PREFETCH_KINDS = tuple(kernels.PREFETCH_KINDS)
ENVIRONMENT_VARIABLE = "LEAKY_KERNEL_TUNING"
# Raised whenever a choice's meaning changes, so that wisdom measured for the
# old meaning is not read with the new one.
WISDOM_FORMAT = 3

# The store variants a band may choose: (stores, prefetch, prefetch bytes),
# simplest first: a faster variant replaces a simpler one only when it wins
# by more than MARGIN.
VARIANTS = {
    "ordinary": ("ordinary", "none", 0),
    "stream": ("lines", "none", 0),
    "stream t0": ("lines", "t0", 1024),
    "stream nta": ("lines", "nta", 1024),
    "pages": ("pages", "none", 0),
}
MARGIN = 1.03
# Threads must win by more: where both take microseconds, a second thread's
# wake-up and a busy other core cost far more than the few percent it gains,
# and near the cutoff what two threads gain changes from one measurement to
# the next (a virtual machine's CPUs move on the host), where one thread's
# time does not.
THREAD_MARGIN = 1.25
# A plan may lose this much to the fastest variant at any size measured.
REGRET_LIMIT = 1.05
# Rounds whose fastest two blocks differ by more than this, in the median
# cell, mean the machine is too busy to measure.
NOISE_LIMIT = 1.10
# Other tasks, on average, beyond the CPUs the measuring threads leave
# free, that make the machine too busy to measure.
BUSY_TASKS = 0.5

# The default rule, where nothing was measured: ordinary stores, streaming
# into an out= only far beyond any cache measured, parallel from 2^16
# elements. Its simple form is what set_tuning and LEAKY_KERNEL_TUNING take.
RULE = {
    "stream_out_min_bytes": 64 * MIB,
    "stream_fresh_min_bytes": NEVER,
    "stream_pages_min_bytes": NEVER,
    "prefetch": "none",
    "prefetch_bytes": 1024,
    "min_thread_elements": 1 << 15,
}
STORE_CHOICES = ("stream_out_min_bytes", "stream_fresh_min_bytes", "stream_pages_min_bytes",
                 "prefetch", "prefetch_bytes")
# Rules that force each kind of store, for the self-check and the tests.
STREAM_ALWAYS = {"stream_out_min_bytes": 0, "stream_fresh_min_bytes": 0,
                 "stream_pages_min_bytes": NEVER}
STREAM_PAGES = {**STREAM_ALWAYS, "stream_pages_min_bytes": 0}
STREAM_NEVER = {"stream_out_min_bytes": NEVER, "stream_fresh_min_bytes": NEVER}

# Fitting: calls that move this many bytes are the first whose best stores
# can differ from ordinary ones on any CPU (they leave the first caches).
FIT_MIN_BYTES = 1 * MIB
# Fitting measures calls into out= on float32 operands of 2^FIT_LOG2[0] to
# 2^FIT_LOG2[1] elements, and on, up to 2^FIT_MOST_LOG2, while the winner at
# the largest size still differs from the one before it. Results the call
# allocates keep the default rule: their pages are new and faulted in by the
# call, which the stores hardly change, and measuring them costs most.
FIT_LOG2 = (16, 24)
FIT_MOST_LOG2 = 25
# `tune` measures both kinds of result, with half steps, up to its size_mib.
TUNE_LOG2 = (16, 26)


# ----------------------------------------------------------------------------
# Choices and where they come from
# ----------------------------------------------------------------------------

def route(op, output, mode):
    return f"{op} {output} {mode}"


def route_mode(name):
    """'serial' or 'parallel': the route's thread mode."""
    return name.rpartition(" ")[2]


def current_mode():
    return "parallel" if get_num_threads() > 1 else "serial"


def plans_from_rule(rule):
    """{route: [(min_bytes, variant)]} of a simple rule (RULE's keys)."""
    streamed = {"none": "stream", "t0": "stream t0", "nta": "stream nta"}[rule["prefetch"]]
    plans = {}
    for name in ROUTES:
        op, output, _ = name.split()
        start = rule["stream_out_min_bytes" if output == "out" else "stream_fresh_min_bytes"]
        bands = [(0, "ordinary")]
        if start < NEVER:
            bands = [(0, streamed)] if start == 0 else bands + [(start, streamed)]
        pages = rule["stream_pages_min_bytes"]
        if op == "forward" and pages < NEVER:
            pages = max(pages, start)
            bands = [b for b in bands if b[0] < pages] + [(pages, "pages")]
        plans[name] = bands
    return plans


def kernel_plans(plans, prefetch_bytes=None):
    """Plans as the kernel's configure takes them: bands of (min_bytes,
    stores, prefetch, prefetch_bytes)."""
    def band(min_bytes, variant):
        stores, prefetch, distance = VARIANTS[variant]
        if prefetch_bytes is not None and prefetch != "none":
            distance = prefetch_bytes
        return (min_bytes, stores, prefetch, distance)

    return {name: [band(*b) for b in bands] for name, bands in plans.items()}


def kernel_configuration(choices):
    """configure's keywords for a dict of simple choices (any of RULE's keys)."""
    checked = check_choices(choices)
    configuration = {}
    if set(checked) & set(STORE_CHOICES):
        rule = {**RULE, **checked}
        configuration["plans"] = kernel_plans(plans_from_rule(rule), rule["prefetch_bytes"])
    if "min_thread_elements" in checked:
        configuration["min_thread_elements"] = checked["min_thread_elements"]
    return configuration


def check_choices(choices):
    """Simple choices as the rule takes them; TypeError or ValueError naming
    the choice. Sizes may be given as ints or as LEAKY_KERNEL_TUNING's text
    ("never", or a whole number)."""
    checked = {}
    for name, value in choices.items():
        if name not in RULE:
            raise TypeError(f"unknown tuning choice {name!r}; known: {', '.join(RULE)}")
        if name == "prefetch":
            if value not in PREFETCH_KINDS:
                raise ValueError(f"prefetch must be one of {PREFETCH_KINDS}, got {value!r}")
            checked[name] = value
            continue
        if isinstance(value, str):
            value = _parse_int(name, value.strip())
        _require_int(name, value)
        low = int(name == "min_thread_elements")
        if not low <= value <= NEVER:
            raise ValueError(f"{name} must be an int from {low} to {NEVER} or 'never', "
                             f"got {value}")
        checked[name] = int(value)
    return checked


def _require_int(name, value):
    """TypeError naming `name` unless value is an int (bool is not)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")


def _parse_int(name, value):
    if value == "never":
        return NEVER
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be an int or 'never', got {value!r}") from None


def parse_choices(text):
    """LEAKY_KERNEL_TUNING's ``name=value,...`` as a dict of checked choices."""
    choices = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"expected name=value, got {pair!r}")
        choices[name.strip()] = value.strip()
    return check_choices(choices)


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


def check_plans(plans):
    """Measured plans as stored, checked: {route: [(min_bytes, variant)]}
    with known routes and variants, at most the kernel's bands, the first
    from 0 and min_bytes increasing. ValueError or TypeError otherwise."""
    if not isinstance(plans, dict):
        raise TypeError("plans must be a dict")
    checked = {}
    for name, bands in plans.items():
        if name not in ROUTES or not isinstance(bands, list) or not 1 <= len(bands) <= 8:
            raise ValueError(f"bad plan for route {name!r}")
        pairs = []
        for band in bands:
            min_bytes, variant = band
            _require_int("min_bytes", min_bytes)
            if variant not in VARIANTS or (pairs and min_bytes <= pairs[-1][0]):
                raise ValueError(f"bad band in route {name!r}")
            pairs.append((int(min_bytes), variant))
        if pairs[0][0] != 0:
            raise ValueError(f"route {name!r} must start at 0 bytes")
        checked[name] = pairs
    return checked


def read_wisdom(path=None):
    """This machine's entry of the wisdom file, checked, or None. A file
    that cannot be read or holds no valid entry is the same as none."""
    try:
        with open(path or wisdom_path()) as f:
            entry = json.load(f).get(machine_key())
        if entry is None:
            return None
        checked = {"plans": check_plans(entry.get("plans", {}))}
        if "min_thread_elements" in entry:
            checked.update(check_choices({"min_thread_elements": entry["min_thread_elements"]}))
        for key in ("date", "by"):
            checked[key] = str(entry.get(key, "?"))
        checked["regret"] = entry.get("regret", {})
        return checked
    except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return None


def writable_directory(path):
    """OSError with one line unless the wisdom file's directory can be made
    and written."""
    directory = os.path.dirname(path)
    try:
        os.makedirs(directory, exist_ok=True)
        probe = os.path.join(directory, f".probe.{os.getpid()}")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as exc:
        raise OSError(f"cannot write wisdom in {directory}: {exc.strerror or exc}") from None


def write_wisdom(entry, path=None):
    """Store `entry` as this machine's wisdom, merging its plans into the
    entry already there and keeping other machines' entries."""
    path = path or wisdom_path()
    try:
        with open(path) as f:
            wisdom = json.load(f)
        if not isinstance(wisdom, dict):
            wisdom = {}
    except (OSError, ValueError, RecursionError):
        wisdom = {}
    old = read_wisdom(path) or {}
    # One thread mode's fit leaves the other's choices, the thread cutoff
    # included, as they were.
    merged = {**old, **entry}
    merged["plans"] = {**old.get("plans", {}), **entry["plans"]}
    merged["regret"] = {**old.get("regret", {}), **entry.get("regret", {})}
    wisdom[machine_key()] = merged
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w") as f:
        json.dump(wisdom, f, indent=1, sort_keys=True)
    os.replace(temporary, path)  # readers never see half a file


# The configuration in force: {"plans": {route: [(min_bytes, variant)]},
# "min_thread_elements": int}, and why each part was chosen.
_state: dict = {}
_reasons: dict = {}
# Thread modes whose first large call fits the machine first.
_fit_pending: set = set()
# Thread modes whose fitting is skipped in this process, and why: {mode: why}.
_fit_skipped: dict = {}
_fit_lock = threading.Lock()
# What fitting measured in this process: {"plans", "min_thread_elements",
# "note"}, in force even where it could not be stored.
_fitted: dict = {}
_overrides: dict = {}


def apply(overrides=None):
    """Configure the kernels: overrides, else the environment, else what was
    measured here (wisdom, or fitting in this process), else the default
    rule; a thread mode with none of these waits for fitting."""
    plans = plans_from_rule(RULE)
    reasons = dict.fromkeys(ROUTES, "default rule")
    min_thread = (RULE["min_thread_elements"], "default rule")
    use_measured, from_environment = _environment()
    given = {**from_environment, **(overrides or {})}
    for found in (read_wisdom() if use_measured else None, _fitted if use_measured else None):
        if not found:
            continue
        why = f"measured by {found['by']} on {found['date']}" + found.get("note", "")
        plans.update(found["plans"])
        reasons.update(dict.fromkeys(found["plans"], why))
        if "min_thread_elements" in found:
            min_thread = (found["min_thread_elements"], why)
    source = "set by set_tuning()" if overrides else f"set by {ENVIRONMENT_VARIABLE}"
    stores_given = bool(set(given) & set(STORE_CHOICES))
    if stores_given:
        plans = plans_from_rule({**RULE, **given})
        reasons = dict.fromkeys(ROUTES, source)
    if "min_thread_elements" in given:
        min_thread = (given["min_thread_elements"], source)
    _fit_pending.clear()
    if use_measured and not stores_given:
        for mode in ("serial", "parallel"):
            fitted = [name for name in ROUTES if route_mode(name) == mode and " out " in name]
            if not all(reasons[name] == "default rule" for name in fitted):
                continue
            if mode in _fit_skipped:
                why = f"default rule (fitting skipped: {_fit_skipped[mode]})"
            else:
                _fit_pending.add(mode)
                why = (f"default rule until the first call that moves "
                       f"{FIT_MIN_BYTES // MIB} MiB fits this machine")
            reasons.update(dict.fromkeys(fitted, why))
    configuration = {
        "plans": kernel_plans(plans, given.get("prefetch_bytes")),
        "min_thread_elements": min_thread[0],
        # The fast paths count an operand's bytes: a call moves at least two.
        "fit_min_bytes": {mode: FIT_MIN_BYTES // 2 if mode in _fit_pending else NEVER
                          for mode in ("serial", "parallel")},
    }
    for level in LEVELS:  # the self-check and the tests call every level's module
        load(level).configure(**configuration)
    _state.clear()
    _state.update(plans=plans, min_thread_elements=min_thread[0])
    _reasons.clear()
    _reasons.update(plans=reasons, min_thread_elements=min_thread[1])
    return dict(_state)


def _environment():
    """(whether to use what was measured and fit, the choices
    LEAKY_KERNEL_TUNING sets)."""
    text = os.environ.get(ENVIRONMENT_VARIABLE, "").strip()
    if text == "default":
        return False, {}
    try:
        return True, parse_choices(text)
    except (TypeError, ValueError) as exc:
        warn_user(f"{ENVIRONMENT_VARIABLE} ignored: {exc}", RuntimeWarning)
        return True, {}


def set_tuning(**choices):
    """Override tuning choices for this process (none: back to what was
    measured and the default rule).

    No choice changes a computed bit, only speed. The choices take the
    simple form of the default rule: any store choice given replaces every
    measured plan with that rule.

    Parameters
    ----------
    **choices
        ``stream_out_min_bytes``, ``stream_fresh_min_bytes`` and
        ``stream_pages_min_bytes`` (bytes a call moves, inputs and output,
        from which it streams into out=, into a fresh result, or by pages),
        ``prefetch`` (``"none"``, ``"t0"`` or ``"nta"``), ``prefetch_bytes``
        and ``min_thread_elements``: ints, or text as the environment
        variable ``LEAKY_KERNEL_TUNING`` takes it (``"never"``, ``"4096"``).
        Called with none, drops every override.

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
    >>> lk.set_tuning(stream_out_min_bytes="never", min_thread_elements=65536)
    >>> plans, why = lk.get_tuning()["plans"]
    >>> plans["forward out parallel"], why["forward out parallel"]
    ([(0, 'ordinary')], 'set by set_tuning()')
    >>> lk.set_tuning()  # back to what was measured and the default rule
    """
    checked = check_choices(choices)
    if not choices:
        _overrides.clear()
    _overrides.update(checked)
    apply(_overrides)


def get_tuning():
    """The tuning as the kernels use it now, and why.

    Returns
    -------
    tuning : dict
        ``"plans"``: ``({route: bands}, {route: why})``, where a route is
        ``"forward out parallel"`` and the like (forward or backward, into
        out= or a fresh result, serial or parallel) and its bands are
        ``(min_bytes, variant)`` pairs: calls that move at least min_bytes
        (inputs and output) use that store variant (``"ordinary"``,
        ``"stream"``, ``"stream t0"``, ``"stream nta"`` or ``"pages"``).
        ``"min_thread_elements"``: ``(value, why)``. Each ``why`` says
        whether it came from `set_tuning`, ``LEAKY_KERNEL_TUNING``, wisdom
        measured by `tune` or by fitting, or the default rule.

    See Also
    --------
    set_tuning : Override choices for this process.
    tune : Measure them on this machine.

    Examples
    --------
    >>> import leaky_kernel as lk
    >>> sorted(lk.get_tuning())
    ['min_thread_elements', 'plans']
    >>> plans, why = lk.get_tuning()["plans"]
    >>> plans["forward out parallel"][0]
    (0, 'ordinary')
    """
    return {"plans": (dict(_state["plans"]), dict(_reasons["plans"])),
            "min_thread_elements": (_state["min_thread_elements"],
                                    _reasons["min_thread_elements"])}


def reasons():
    """Why each part of the tuning in force was chosen, as a list of texts."""
    return [*_reasons["plans"].values(), _reasons["min_thread_elements"]]


def fit_before(size, itemsize, num_threads):
    """Fit this machine first if a call on `size` elements of `itemsize`
    bytes (num_threads as checked) is the first large one of a thread mode
    that waits for it: the kernel says so, as its fast paths decline it."""
    if not _fit_pending:
        return
    mode = kernels.waiting_mode(size, itemsize, num_threads)
    if mode is not None:
        with _fit_lock:
            if mode in _fit_pending:
                _fit_mode(mode)


@contextlib.contextmanager
def fitting_paused():
    """No call fits the machine inside this block (the self-check's calls
    are large enough to, and must not take seconds and memory for it)."""
    skipped = dict(_fit_skipped)
    _fit_skipped.update(dict.fromkeys(("serial", "parallel"), "paused"))
    apply(_overrides)
    try:
        yield
    finally:
        _fit_skipped.clear()
        _fit_skipped.update(skipped)
        apply(_overrides)


def _fit_mode(mode):
    """Measure one thread mode's plans, store them as wisdom and apply them;
    on a busy machine keep the default rule for this process."""
    try:
        entry = fit(mode)
    except MachineBusy as exc:
        _fit_skipped[mode] = str(exc)
        apply(_overrides)
        return
    try:
        write_wisdom(entry)
    except OSError as exc:
        entry["note"] = f" (not stored: {exc.strerror or exc})"
    _fitted.setdefault("plans", {}).update(entry["plans"])
    _fitted.update({k: v for k, v in entry.items() if k != "plans"})
    apply(_overrides)


if hasattr(os, "register_at_fork"):
    # A child forked while another thread held the lock would wait forever.
    os.register_at_fork(after_in_child=lambda: globals().update(_fit_lock=threading.Lock()))


# ----------------------------------------------------------------------------
# Measuring
# ----------------------------------------------------------------------------

class MachineBusy(RuntimeError):
    """The machine is too busy for its timings to mean anything."""


def steady_seconds(call, block_seconds, clock=time.perf_counter):
    """Seconds per call of `call` in its own steady state: a warm-up call,
    then a block of repeated calls lasting block_seconds (at least two)."""
    call()
    calls = 0
    start = clock()
    while True:
        call()
        calls += 1
        elapsed = clock() - start
        if calls >= 2 and elapsed >= block_seconds:
            return elapsed / calls


def _measure(cells, rounds, timer):
    """{key: [seconds per call, one per round]} of cells {key: (configuration,
    call)}: every cell once a round, the order rotated round by round, each
    timed by `timer(configuration, call)`."""
    keys = list(cells)
    times = {key: [] for key in keys}
    for r in range(rounds):
        shift = r * len(keys) // max(rounds, 1)
        for key in keys[shift:] + keys[:shift]:
            times[key].append(timer(*cells[key]))
    return times


def _kernel_timer(block_seconds):
    """A timer for _measure that runs each cell under its kernel configuration."""
    def timer(configuration, call):
        previous = kernels.configure(**configuration)
        try:
            return steady_seconds(call, block_seconds)
        finally:
            kernels.configure(**previous)
    return timer


def noise(times):
    """The median, over cells, of the second-fastest round over the fastest."""
    spreads = sorted(sorted(t)[1] / sorted(t)[0] for t in times.values() if len(t) > 1)
    return spreads[len(spreads) // 2] if spreads else 1.0


def other_runnable_tasks(samples=10, interval=0.02):
    """Tasks other than this one that were runnable, on average (Linux
    /proc/loadavg), or None where that cannot be read."""
    counts = []
    for _ in range(samples):
        try:
            with open("/proc/loadavg") as f:
                counts.append(int(f.read().split()[3].partition("/")[0]) - 1)
        except (OSError, ValueError, IndexError):
            return None
        time.sleep(interval)
    return sum(counts) / len(counts)


class CpuShare:
    """CPUs that other tasks kept busy, on average, from its making until
    `others()`: the busy time of the CPUs this process may run on (Linux
    /proc/stat, time stolen by a hypervisor included) less this process's
    own CPU time, over the wall time. None where that cannot be read."""

    def __init__(self, read=None):
        self.read = read or _cpu_seconds
        self.start = self.read()

    def others(self):
        end = self.read()
        if self.start is None or end is None:
            return None
        (busy, own, wall), (busy_end, own_end, wall_end) = self.start, end
        return max(0.0, (busy_end - busy) - (own_end - own)) / max(wall_end - wall, 1e-9)


def _cpu_seconds():
    """(busy seconds of the CPUs this process may run on, this process's CPU
    seconds, wall seconds), or None."""
    try:
        cpus = {f"cpu{i}" for i in os.sched_getaffinity(0)}
        busy_ticks = 0
        with open("/proc/stat") as f:
            for line in f:
                name, *ticks = line.split()
                if name in cpus:
                    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, ticks[:8])
                    busy_ticks += user + nice + system + irq + softirq + steal
        busy = busy_ticks / os.sysconf("SC_CLK_TCK")
    except (AttributeError, OSError, ValueError):
        return None
    return busy, time.process_time(), time.monotonic()


def _busy(times=None, runnable=None, spare=0, others=None):
    """Why the machine is too busy to measure, or None. `runnable`: other
    tasks runnable before measuring; `others`: CPUs other tasks kept busy
    while measuring; `spare`: CPUs the measuring threads leave free."""
    if runnable is not None and runnable > spare + BUSY_TASKS:
        return f"{runnable:.1f} other tasks were runnable"
    if others is not None and others > spare + BUSY_TASKS:
        return f"other tasks kept {others:.1f} CPUs busy while measuring"
    if times is not None and noise(times) > NOISE_LIMIT:
        return f"rounds of one measurement differed by {100 * (noise(times) - 1):.0f}%"
    return None


def _choose(times_by_variant, previous=None):
    """The variant to use at one size, from {variant: seconds}: `previous`
    (the choice at the size below) if it is within MARGIN of the fastest,
    else the simplest that is. Near-ties then do not split a band."""
    fastest = min(times_by_variant.values())
    close = [v for v in VARIANTS
             if v in times_by_variant and times_by_variant[v] <= MARGIN * fastest]
    if not close:
        raise ValueError("no known variant was measured")
    return previous if previous in close else close[0]


def _choose_all(fastest):
    """{bytes moved: variant} from {bytes moved: {variant: seconds}}, smallest
    size first, each choice kept on where it stays within MARGIN."""
    chosen, previous = {}, None
    for size in sorted(fastest):
        chosen[size] = previous = _choose(fastest[size], previous)
    return chosen


def _bands(chosen):
    """Bands [(min_bytes, variant)] from {bytes moved: variant}: a new band
    from each size measured whose choice differs from the size before it; at
    most 8, the kernel's limit, the narrowest bands merged into the band
    before them."""
    sizes = sorted(chosen)
    bands = [(0, chosen[sizes[0]])]
    for size in sizes[1:]:
        if chosen[size] != bands[-1][1]:
            bands.append((size, chosen[size]))
    while len(bands) > 8:
        widths = [bands[i + 1][0] / bands[i][0] for i in range(1, len(bands) - 1)]
        del bands[1 + widths.index(min(widths))]
        bands = [b for i, b in enumerate(bands) if i == 0 or b[1] != bands[i - 1][1]]
    return bands


def variant_at(bands, moved):
    """The variant a plan uses for a call moving `moved` bytes."""
    variant = bands[0][1]
    for min_bytes, v in bands:
        if min_bytes <= moved:
            variant = v
    return variant


def _mean_regrets(passes):
    """{variant: its time over the fastest variant's, averaged over passes}
    from passes [{variant: seconds}], each measured on operands of its own."""
    return {v: sum(p[v] / min(p.values()) for p in passes) / len(passes) for v in passes[0]}


def _regrets(plan_times, variant_times):
    """{size: plan time / fastest variant's time}."""
    return {size: plan_times[size] / min(min(variant_times[size].values()), plan_times[size])
            for size in plan_times}


class _Bench:
    """Operands and calls for measuring one route at many sizes."""

    def __init__(self):
        self.renew()

    def ensure(self, n):
        """Operands of at least n elements; only sizes matter for speed, so
        the values are one random block, repeated."""
        if n > self.x.size:
            block = np.random.default_rng(0).standard_normal(1 << 16, np.float32)
            self.x = np.resize(block, n)
            self.g = np.resize(block[::-1].copy(), n)
            self.out = np.zeros(n, np.float32)

    def renew(self):
        """Drop the operands, so that the next ones are allocated anew."""
        self.x = self.g = self.out = np.empty(0, np.float32)

    def call(self, name, n, threads):
        """A call of route `name` on n elements and `threads` threads, through
        the kernel's contiguous entry point, as the public functions call it."""
        op, output, _ = name.split()
        x, g = self.x[:n], self.g[:n]
        value = x if op == "forward" else g
        out = self.out[:n] if output == "out" else None
        return lambda: kernels.select_contiguous(value, x, 0.01, out, threads)


def moved_bytes(name, n, itemsize=4):
    """Bytes a call on route `name` of n elements moves: inputs and output."""
    return n * itemsize * (2 if name.startswith("forward") else 3)


def variants_of(name):
    return [v for v in VARIANTS if v != "pages" or name.startswith("forward")]


# While measuring, every call of a route runs on the threads it is given
# and none declines to wait for fitting.
_MEASURING = {"min_thread_elements": 1, "fit_min_bytes": {"serial": NEVER, "parallel": NEVER}}


def _route_configuration(name, variant):
    return {"plans": kernel_plans({name: [(0, variant)]}), **_MEASURING}


def _plan_configuration(name, bands):
    return {"plans": kernel_plans({name: bands}), **_MEASURING}


def measure_route(name, sizes, bench, rounds, timer, threads):
    """{bytes moved: {variant: [seconds per round]}} of one route."""
    bench.ensure(max(sizes))
    cells = {(n, v): (_route_configuration(name, v), bench.call(name, n, threads))
             for n in sizes for v in variants_of(name)}
    times = _measure(cells, rounds, timer)
    table = {}
    for (n, v), t in times.items():
        table.setdefault(moved_bytes(name, n), {})[v] = t
    return table


def plan_route(name, sizes, bench, rounds, timer, threads, most, cache, edge_steps=3):
    """(bands, {bytes moved: {variant: fastest seconds}}, rounds' times) of one
    route. Measures on past `sizes`, up to `most` elements, while the winner
    at the largest size still changes or the calls move less than 4 x
    `cache` bytes; then halves, `edge_steps` times, the gap (in log size)
    around each size where the winner changes."""
    sizes = list(sizes)
    table = measure_route(name, sizes, bench, rounds, timer, threads)

    def chosen():
        return _choose_all({b: {v: min(t) for v, t in row.items()} for b, row in table.items()})

    while sizes[-1] * 2 <= most:
        winners = chosen()
        last, before = sorted(winners)[-1], sorted(winners)[-2]
        if winners[last] == winners[before] and last >= 4 * cache:
            break
        sizes.append(sizes[-1] * 2)
        table.update(measure_route(name, sizes[-1:], bench, rounds, timer, threads))
    for _ in range(edge_steps):
        winners = chosen()
        moved = sorted(winners)
        between = [_elements_moving(name, int(math.sqrt(a * b)))
                   for a, b in zip(moved, moved[1:]) if winners[a] != winners[b]]
        between = [n for n in between if moved_bytes(name, n) not in table]
        if not between:
            break
        table.update(measure_route(name, between, bench, rounds, timer, threads))
    fastest = {b: {v: min(t) for v, t in row.items()} for b, row in table.items()}
    bands = _bands(_choose_all(fastest))
    return bands, fastest, {(b, v): t for b, row in table.items() for v, t in row.items()}


def check_route(name, bands, fastest, bench, rounds, timer, threads, mend=True):
    """Time the plan against every variant at every size of `fastest` (which
    holds the sizes where the bands begin). With `mend`, a size whose regret
    is above REGRET_LIMIT is measured a third time, on operands allocated
    anew, and gets the variant whose regret averaged over the three
    measurements is least, and the check runs once more. Returns
    (bands, {bytes moved: regret}, rounds' times)."""
    for attempt in range(2 if mend else 1):
        elements = [_elements_moving(name, b) for b in sorted(fastest)]
        bench.ensure(max(elements))
        cells = {}
        for n in elements:
            moved = moved_bytes(name, n)
            call = bench.call(name, n, threads)
            cells[(moved, "plan")] = (_plan_configuration(name, bands), call)
            for v in variants_of(name):
                cells[(moved, v)] = (_route_configuration(name, v), call)
        times = _measure(cells, rounds, timer)
        plan_times = {b: min(t) for (b, v), t in times.items() if v == "plan"}
        variant_times = {}
        for (b, v), t in times.items():
            if v != "plan":
                variant_times.setdefault(b, {})[v] = min(t)
        regrets = _regrets(plan_times, variant_times)
        worst = [b for b, r in regrets.items() if r > REGRET_LIMIT]
        if not worst or not mend or attempt:
            return bands, regrets, times
        # The two measurements disagree there: a third, on operands
        # allocated anew, decides by each variant's regret averaged over the
        # three. Where an array's pages land can move every variant's time
        # together, by more than the variants differ, and some variants more
        # than others: so variants are compared within each allocation, and
        # every allocation counts. A disturbance in one measurement weighs a
        # third; so, near the caches' edges, where a call's time depends on
        # what the caches held before, does a lucky one.
        bench.renew()
        third = measure_route(name, [_elements_moving(name, b) for b in worst], bench,
                              rounds, timer, threads)
        chosen = {b: variant_at(bands, b) for b in fastest}
        for b in worst:
            third_times = {v: min(t) for v, t in third[b].items()}
            chosen[b] = _choose(_mean_regrets([fastest[b], variant_times[b], third_times]))
        bands = _bands(chosen)


def reported_cache_bytes():
    """The largest cache the system reports (Linux sysfs), or 0."""
    sizes = [0]
    root = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for index in os.listdir(root):
            with open(os.path.join(root, index, "size")) as f:
                text = f.read().strip().upper()
            units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
            sizes.append(int(text.rstrip("KMG")) * units.get(text[-1:], 1))
    except (OSError, ValueError):
        pass
    return max(sizes)


def _elements_moving(name, moved):
    """Float32 elements of a call on `name` that moves about `moved` bytes,
    a multiple of 64."""
    return max(64, moved // moved_bytes(name, 1) // 64 * 64)


def fit(mode=None, outputs=("out",), log2_range=FIT_LOG2, most_log2=FIT_MOST_LOG2, rounds=2,
        block_seconds=0.002, half_steps=False, progress=None, timer=None, bench=None,
        runnable=None, cpu_share=None, last_level_cache=None):
    """Measure the plans of one thread mode ('serial' or 'parallel', default
    the one calls use now) on this machine, for results into `outputs`
    ('out' and 'fresh'), and check them; returns a wisdom entry. MachineBusy
    when the machine is too busy to measure.

    Measuring goes on past 2^log2_range[1] elements, up to 2^most_log2,
    while the winner still changes at the largest size, or while the calls
    move less than four times `last_level_cache` (default: the largest cache
    the system reports, which a virtual machine may misreport: hence both).

    The machine counts as busy, and nothing is returned, when other tasks
    were runnable before measuring, or kept CPUs busy while measuring, beyond
    the CPUs the measuring threads leave free; or when rounds disagree.

    `timer`, `bench`, `runnable` and `cpu_share` replace the kernel timer,
    the operands and the two busy probes (a number of tasks, a CpuShare), so
    that the decisions can be tested with injected timings."""
    mode = mode or current_mode()
    progress = progress or (lambda *args: None)
    threads = 1 if mode == "serial" else get_num_threads()
    spare = THREAD_CAP - threads
    if runnable is None and timer is None:
        runnable = other_runnable_tasks()
    reason = _busy(runnable=runnable, spare=spare)
    if reason:
        raise MachineBusy(reason)
    if cpu_share is None and timer is None:
        cpu_share = CpuShare()
    start = time.perf_counter()
    exponents = np.arange(log2_range[0], log2_range[1] + 0.25, 0.5 if half_steps else 1.0)
    sizes = sorted({int(2 ** e) // 64 * 64 for e in exponents})
    most = 1 << most_log2
    bench = bench or _Bench()
    timer = timer or _kernel_timer(block_seconds)
    entry = {"plans": {}, "regret": {}, "by": "fitting", "date": datetime.date.today().isoformat(),
             "machine": machine_key()}
    all_times = {}
    for name in ROUTES:
        if route_mode(name) != mode or name.split()[1] not in outputs:
            continue
        progress(f"{name}: {len(variants_of(name))} variants, 2^{log2_range[0]} to "
                 f"2^{log2_range[1]} elements and on while the winner changes")
        cache = reported_cache_bytes() if last_level_cache is None else last_level_cache
        bench.renew()
        bands, fastest, times = plan_route(name, sizes, bench, rounds, timer, threads, most, cache)
        # The check times operands of its own: where the pages of an array
        # land moves some variants' speed.
        bench.renew()
        bands, regrets, check_times = check_route(name, bands, fastest, bench, rounds, timer,
                                                  threads)
        all_times.update({(name,) + k: t for k, t in times.items()})
        all_times.update({(name, "check") + k: t for k, t in check_times.items()})
        entry["plans"][name] = bands
        entry["regret"][name] = {str(b): round(r, 3) for b, r in sorted(regrets.items())}
    if mode == "parallel":
        progress("serial or parallel: 2^12 to 2^19 elements")
        bench.renew()
        entry["min_thread_elements"], threads_times = _parallel_cutoff(bench, rounds, timer,
                                                                       threads)
        all_times.update(threads_times)
    reason = _busy(times=all_times, spare=spare,
                   others=None if cpu_share is None else cpu_share.others())
    if reason:
        raise MachineBusy(reason)
    entry["seconds"] = round(time.perf_counter() - start, 2)
    return entry


def _parallel_cutoff(bench, rounds, timer, threads):
    """(min_thread_elements, rounds' times): `threads` threads from the
    smallest size from which they won by THREAD_MARGIN at every size measured."""
    routes = [route("forward", "out", mode) for mode in ("serial", "parallel")]
    configuration = {"plans": kernel_plans({name: [(0, "ordinary")] for name in routes}),
                     **_MEASURING}
    bench.ensure(1 << 19)
    cells = {(log2, t): (configuration, bench.call(routes[1], 1 << log2, t))
             for log2 in range(12, 20) for t in (1, threads)}
    times = _measure(cells, rounds, timer)
    smallest = 20  # past every size measured
    for log2 in range(19, 11, -1):
        if min(times[(log2, threads)]) * THREAD_MARGIN >= min(times[(log2, 1)]):
            break
        smallest = log2
    return (1 << smallest) // 2, {("threads",) + k: t for k, t in times.items()}


# tune's largest operands, in MiB, and the memory it takes: three operands
# and a result it allocates.
TUNE_SIZE_MIB = 256
TUNE_MEMORY_MIB = 4 * TUNE_SIZE_MIB


def tune(rounds=5, size_mib=TUNE_SIZE_MIB, progress=print):
    """Measure this machine thoroughly and check the result; apply it and
    store it as wisdom.

    Both thread modes, calls into out= and into fresh results, forward and
    backward, float32 operands from 2^16 elements up to `size_mib` MiB, with
    half steps; each variant timed in its own steady state, then the plans
    timed against every variant at every size (the regret table). It takes
    several minutes and about 4 x size_mib MiB of memory: run it on an idle
    machine. ``python -m leaky_kernel tune`` does the same.

    Parameters
    ----------
    rounds : int, default 5
        Interleaved timing rounds per measurement; the fastest counts.
    size_mib : int, default 256
        Size of the largest float32 operands measured, in MiB.
    progress : callable or None, default print
        Called with a line of text per step; None for silence.

    Returns
    -------
    wisdom : dict
        The entry stored: ``"plans"`` (now applied), ``"regret"`` (``{route:
        {bytes moved: time of the plan / time of the fastest variant}}``),
        ``"min_thread_elements"``, ``"by"``, ``"date"`` and ``"machine"``.

    Raises
    ------
    TypeError
        When rounds or size_mib is not an int.
    ValueError
        When rounds or size_mib is below 1.
    MachineBusy
        A RuntimeError: other tasks ran, or the rounds disagreed; nothing is
        stored or applied.
    OSError
        Before measuring, when the wisdom file's directory cannot be written;
        after measuring, if storing fails, with the choices applied to this
        process.

    See Also
    --------
    get_tuning : The choices in force and why.
    set_tuning : Override them for this process.

    Examples
    --------
    >>> import leaky_kernel as lk
    >>> wisdom = lk.tune(progress=None)  # doctest: +SKIP
    >>> max(max(r.values()) for r in wisdom["regret"].values()) <= 1.05  # doctest: +SKIP
    True
    """
    for name, value in (("rounds", rounds), ("size_mib", size_mib)):
        _require_int(name, value)
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    writable_directory(wisdom_path())
    progress = progress or (lambda *args: None)
    most_log2 = max(FIT_LOG2[0] + 1, int(math.log2(size_mib * MIB // 4)))
    entry = {"plans": {}, "regret": {}}
    modes = ["parallel", "serial"] if THREAD_CAP > 1 else ["serial"]
    for mode in modes:
        found = fit(mode, ("out", "fresh"), (TUNE_LOG2[0], most_log2), most_log2, rounds, 0.005,
                    True, progress)
        for key in ("plans", "regret"):
            entry[key].update(found[key])
        if "min_thread_elements" in found:
            entry["min_thread_elements"] = found["min_thread_elements"]
    entry.update(by="tune", date=datetime.date.today().isoformat(), machine=machine_key())
    _fitted.clear()
    _fitted.update(entry)
    try:
        write_wisdom(entry)
    except OSError as exc:
        _fitted["note"] = " (not stored)"
        raise OSError(f"wisdom not stored ({exc.strerror or exc}); "
                      "the measured choices apply to this process") from None
    finally:
        apply(_overrides)
    return entry


def verify(rounds=3, size_mib=TUNE_SIZE_MIB, progress=print):
    """{route: {bytes moved: regret}} of the plans in force for the thread
    mode calls use now, timed again against every variant; stores nothing."""
    most_log2 = max(TUNE_LOG2[0], int(math.log2(size_mib * MIB // 4)))
    bench = _Bench()
    timer = _kernel_timer(0.005)
    mode = current_mode()
    threads = 1 if mode == "serial" else get_num_threads()
    table = {}
    for name in ROUTES:
        if route_mode(name) != mode:
            continue
        progress(name)
        sizes = {moved_bytes(name, 1 << k): {} for k in range(TUNE_LOG2[0], most_log2 + 1)}
        _, table[name], _ = check_route(name, _state["plans"][name], sizes, bench, rounds,
                                        timer, threads, mend=False)
    return table


apply()
