"""The common case of the sign-mask functions (contiguous float32 and
float64 ndarrays, one float slope), which a compiled fast path serves, and
every case around it, through the public functions: the oracle's bits where
a call is valid, and where it is not, an error with nothing written."""
import numpy as np
import pytest

from leaky_kernel import _mask, reference
from leaky_kernel._dispatch import kernels
from leaky_kernel._mask import (
    forward_mask_into,
    leaky_relu_backward_mask,
    leaky_relu_forward_mask,
)
from leaky_kernel._testing import (
    STREAM_ALWAYS,
    STREAM_NEVER,
    bits_equal,
    kernel_choices,
    random_operand,
)

P = kernels.PARALLEL_MIN_SIZE
# Both sides of the parallel cutoff, and sizes that end in a partial mask byte.
SIZES = [1, 7, 9, 1000, P - 1, P, P + 9, 3 * P + 5]
DTYPES = [np.float32, np.float64]
SLOPES = [0.01, 0.0, -0.5, 3.0, 1e-42]


def forward(x, slope=0.25, out=None, num_threads=None):
    return leaky_relu_forward_mask(x, slope, out=out, num_threads=num_threads)


def backward(g, mask, slope=0.25, out=None, num_threads=None):
    return leaky_relu_backward_mask(g, mask, slope, out=out, num_threads=num_threads)


@pytest.fixture(params=["stored", "streamed"])
def stores(request):
    """Ordinary stores, then streaming stores wherever the kernel may use them."""
    choices = STREAM_NEVER if request.param == "stored" else STREAM_ALWAYS
    with kernel_choices(kernels, **choices):
        yield


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("num_threads", [None, 1, 2])
def test_forward_and_backward_equal_the_oracle(stores, dtype, size, num_threads):
    rng = np.random.default_rng(size)
    x = random_operand(rng, size, dtype)
    g = random_operand(rng, size, dtype)
    for slope in SLOPES:
        want_y, want_mask = reference.leaky_relu_forward_mask(x, slope)
        y, mask = forward(x, slope, num_threads=num_threads)
        assert bits_equal(y, want_y) and bits_equal(mask, want_mask)
        want_dx = reference.leaky_relu_backward_mask(g, want_mask, slope)
        assert bits_equal(backward(g, mask, slope, num_threads=num_threads), want_dx)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [9, P + 9])
def test_out_in_place_and_a_reused_mask(stores, dtype, size):
    rng = np.random.default_rng(size)
    x = random_operand(rng, (size, 3), dtype)
    g = random_operand(rng, (size, 3), dtype)
    want_y, want_mask = reference.leaky_relu_forward_mask(x, 0.25)
    want_dx = reference.leaky_relu_backward_mask(g, want_mask, 0.25)

    out, mask = np.empty_like(x), np.full_like(want_mask, 0xA5)
    y, got_mask = forward_mask_into(mask, x, 0.25, None, out, None)
    assert y is out and got_mask is mask
    assert bits_equal(out, want_y) and bits_equal(mask, want_mask)
    assert backward(g, mask, out=out) is out
    assert bits_equal(out, want_dx)

    x_in_place, g_in_place = x.copy(), g.copy()
    y, mask = forward(x_in_place, out=x_in_place)
    assert y is x_in_place and bits_equal(x_in_place, want_y)
    assert backward(g_in_place, mask, out=g_in_place) is g_in_place
    assert bits_equal(g_in_place, want_dx)


def test_a_mask_of_another_size_is_not_reused():
    x = random_operand(np.random.default_rng(4), (40, 30), np.float32)
    small = np.zeros(3, np.uint8)
    y, mask = forward_mask_into(small, x, 0.25, None, None, None)
    want_y, want_mask = reference.leaky_relu_forward_mask(x, 0.25)
    assert mask is not small and not small.any()
    assert bits_equal(y, want_y) and bits_equal(mask, want_mask)


def test_results_are_new_c_ordered_arrays_of_the_input_shape():
    x = random_operand(np.random.default_rng(0), (4, 5, 6), np.float32)
    y, mask = forward(x)
    assert y.shape == x.shape and y.flags.c_contiguous and y.flags.owndata
    assert bits_equal(mask, reference.leaky_relu_forward_mask(x)[1])
    dx = backward(x, mask)
    assert dx.shape == x.shape and dx.flags.c_contiguous and not np.shares_memory(dx, x)


def test_the_common_case_needs_no_plan(monkeypatch):
    """Contiguous float32 with one float slope runs on the fast path alone."""
    def planned(*args):
        raise AssertionError("the call was planned and executed in Python")

    monkeypatch.setattr(_mask, "execute", planned)
    x = random_operand(np.random.default_rng(1), (3, 100), np.float32)
    y, mask = leaky_relu_forward_mask(x, 0.5, num_threads=2)
    dx = leaky_relu_backward_mask(x, mask, 0.5, out=np.empty_like(x))
    want_y, want_mask = reference.leaky_relu_forward_mask(x, 0.5)
    assert bits_equal(y, want_y) and bits_equal(mask, want_mask)
    assert bits_equal(dx, reference.leaky_relu_backward_mask(x, want_mask, 0.5))


class TestAroundTheCommonCase:
    """Every other valid call gives the oracle's bits; every invalid one
    raises and writes nothing."""

    def setup_method(self):
        rng = np.random.default_rng(2)
        self.x = random_operand(rng, (40, 30), np.float32)
        self.g = random_operand(rng, (40, 30), np.float32)
        self.mask = reference.leaky_relu_forward_mask(self.x)[1]

    @pytest.mark.parametrize(
        "case",
        ["fortran", "strided", "float16", "int", "swapped", "list", "zero_d", "empty",
         "subclass", "unaligned"],
    )
    def test_other_operands(self, case):
        x = np.random.default_rng(0).standard_normal((40, 30)).astype(np.float32)  # castable
        value = {
            "fortran": lambda: np.asfortranarray(x),
            "strided": lambda: x[:, ::2],
            "float16": lambda: x.astype(np.float16),
            "int": lambda: x.astype(np.int32),
            "swapped": lambda: x.astype(">f4"),
            "list": lambda: x.tolist(),
            "zero_d": lambda: np.ones((), np.float32),
            "empty": lambda: np.ones((0, 3), np.float32),
            "subclass": lambda: x.view(np.recarray),
            "unaligned": lambda: np.frombuffer(b"\0" + x.tobytes(), np.float32, x.size, 1),
        }[case]()
        before = np.array(value, copy=True)
        want_y, want_mask = reference.leaky_relu_forward_mask(value, 0.25)
        y, mask = forward(value)
        assert bits_equal(y, want_y) and bits_equal(mask, want_mask)
        want_dx = reference.leaky_relu_backward_mask(value, want_mask, 0.25)
        assert bits_equal(backward(value, mask), want_dx)
        assert bits_equal(np.asarray(value), before) and bits_equal(mask, want_mask)

    @pytest.mark.parametrize("slope", [np.float32(0.5), 1, -0.5, 1e-42])
    def test_other_valid_slopes(self, slope):
        want_y, want_mask = reference.leaky_relu_forward_mask(self.x, slope)
        y, mask = forward(self.x, slope)
        assert bits_equal(y, want_y) and bits_equal(mask, want_mask)
        want_dx = reference.leaky_relu_backward_mask(self.g, self.mask, slope)
        assert bits_equal(backward(self.g, self.mask, slope), want_dx)

    @pytest.mark.parametrize(
        "slope, error",
        [(float("nan"), ValueError), (float("inf"), ValueError), (1e39, ValueError),
         ("0.5", TypeError), (None, TypeError)],
    )
    def test_invalid_slopes_write_nothing(self, slope, error):
        out = np.zeros_like(self.x)
        with pytest.raises(error, match="negative_slope"):
            forward(self.x, slope, out=out)
        with pytest.raises(error, match="negative_slope"):
            backward(self.g, self.mask, slope, out=out)
        assert not out.any()

    def test_a_slope_float64_holds_is_taken_for_float64(self):
        x = self.x.astype(np.float64)
        y, mask = forward(x, 1e39)
        want_y, want_mask = reference.leaky_relu_forward_mask(x, 1e39)
        assert bits_equal(y, want_y) and bits_equal(mask, want_mask)

    @pytest.mark.parametrize(
        "num_threads, error",
        [(0, ValueError), (-1, ValueError), (2.0, TypeError), (True, TypeError),
         ("2", TypeError), (2**31, ValueError)],
    )
    def test_invalid_thread_counts_write_nothing(self, num_threads, error):
        out = np.zeros_like(self.x)
        with pytest.raises(error, match="num_threads"):
            forward(self.x, out=out, num_threads=num_threads)
        with pytest.raises(error, match="num_threads"):
            backward(self.g, self.mask, out=out, num_threads=num_threads)
        assert not out.any()

    def test_a_thread_count_above_the_cpus_is_taken(self):
        y, mask = forward(self.x, num_threads=2**31 - 1)
        want_y, want_mask = reference.leaky_relu_forward_mask(self.x, 0.25)
        assert bits_equal(y, want_y) and bits_equal(mask, want_mask)

    def invalid_outs(self):
        readonly = np.zeros_like(self.x)
        readonly.flags.writeable = False
        return [
            (np.zeros((30, 40), np.float32), ValueError),      # shape
            (np.zeros_like(self.x, dtype=np.int32), TypeError),  # a dtype of another kind
            (readonly, ValueError),
            ([[0.0] * 30] * 40, TypeError),                    # not an array
        ]

    def test_invalid_out_writes_nothing(self):
        for out, error in self.invalid_outs():
            before = np.array(out, copy=True)
            with pytest.raises(error, match="out"):
                forward(self.x, out=out)
            with pytest.raises(error, match="out"):
                backward(self.g, self.mask, out=out)
            assert bits_equal(np.asarray(out), before)

    @pytest.mark.parametrize(
        "make_out",
        [
            lambda x: np.zeros_like(x, dtype=np.float64),   # a wider dtype
            lambda x: np.asfortranarray(np.zeros_like(x)),  # another order
            lambda x: np.zeros_like(x).view(np.recarray),   # a subclass
        ],
    )
    def test_other_valid_outs(self, make_out):
        want_y, want_mask = reference.leaky_relu_forward_mask(self.x, 0.25)
        out = make_out(self.x)
        y, mask = forward(self.x, out=out)
        assert y is out and bits_equal(mask, want_mask)
        assert bits_equal(np.asarray(out), want_y.astype(out.dtype))
        out = make_out(self.x)
        assert backward(self.g, mask, out=out) is out
        want_dx = reference.leaky_relu_backward_mask(self.g, want_mask, 0.25)
        assert bits_equal(np.asarray(out), want_dx.astype(out.dtype))

    def test_out_overlapping_an_input(self):
        base = random_operand(np.random.default_rng(3), self.x.size + 1, np.float32)
        value = base[:-1].reshape(self.x.shape).copy()
        want_y, want_mask = reference.leaky_relu_forward_mask(value, 0.25)
        want_dx = reference.leaky_relu_backward_mask(value, self.mask, 0.25)
        shifted = base.copy()
        shifted[:-1] = value.reshape(-1)
        y, mask = forward(shifted[:-1].reshape(self.x.shape), out=shifted[1:].reshape(self.x.shape))
        assert bits_equal(y, want_y) and bits_equal(mask, want_mask)
        shifted[:-1] = value.reshape(-1)
        dx = backward(shifted[:-1].reshape(self.x.shape), self.mask,
                      out=shifted[1:].reshape(self.x.shape))
        assert bits_equal(dx, want_dx)

    def test_out_overlapping_the_mask(self):
        g = self.g.reshape(-1)[:64]
        storage = np.zeros(64, np.float32)
        mask = storage.view(np.uint8)[:8]
        mask[:] = reference.leaky_relu_forward_mask(g)[1]
        want_dx = reference.leaky_relu_backward_mask(g, mask.copy(), 0.25)
        assert backward(g, mask, out=storage) is storage
        assert bits_equal(storage, want_dx)

    @pytest.mark.parametrize(
        "case, error",
        [("size", ValueError), ("dtype", TypeError), ("2d", ValueError), ("list", TypeError)],
    )
    def test_invalid_masks_write_nothing(self, case, error):
        mask = {
            "size": lambda: self.mask[:-1],
            "dtype": lambda: self.mask.astype(np.int8),
            "2d": lambda: self.mask.reshape(1, -1),
            "list": lambda: self.mask.tolist(),  # Python ints are not uint8
        }[case]()
        out = np.zeros_like(self.x)
        with pytest.raises(error, match="mask"):
            backward(self.g, mask, out=out)
        assert not out.any()

    @pytest.mark.parametrize("case", ["strided", "subclass", "read_only"])
    def test_other_valid_masks(self, case):
        mask = {
            "strided": lambda: np.repeat(self.mask, 2)[::2],
            "subclass": lambda: self.mask.view(np.recarray),
            "read_only": lambda: np.require(self.mask.copy(), requirements="C"),
        }[case]()
        if case == "read_only":
            mask.flags.writeable = False
        want_dx = reference.leaky_relu_backward_mask(self.g, self.mask, 0.25)
        assert bits_equal(backward(self.g, mask), want_dx)

    def test_a_read_only_input_is_read(self):
        x = self.x.copy()
        x.flags.writeable = False
        y, mask = forward(x)
        assert bits_equal(y, reference.leaky_relu(self.x, 0.25))
        assert bits_equal(backward(x, mask), reference.leaky_relu_backward_mask(x, mask, 0.25))
        with pytest.raises(ValueError, match="out"):
            forward(x, out=x)
