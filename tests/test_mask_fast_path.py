"""The contiguous fast paths of the mask kernels (forward_mask_contiguous,
backward_mask_contiguous): exact against the oracle where they apply, and
where they do not, None with nothing written, so that the general path
checks and reports."""
import numpy as np
import pytest

from leaky_kernel import _mask, reference
from leaky_kernel._dispatch import kernels
from leaky_kernel._mask import leaky_relu_backward_mask, leaky_relu_forward_mask
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


def forward(x, slope=0.25, out=None, mask=None, num_threads=None):
    return kernels.forward_mask_contiguous(x, slope, out, mask, num_threads)


def backward(g, mask, slope=0.25, out=None, num_threads=None):
    return kernels.backward_mask_contiguous(g, mask, slope, out, num_threads)


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
    y, got_mask = forward(x, out=out, mask=mask)
    assert y is out and got_mask is mask
    assert bits_equal(out, want_y) and bits_equal(mask, want_mask)
    assert backward(g, mask, out=out) is out
    assert bits_equal(out, want_dx)

    x_in_place, g_in_place = x.copy(), g.copy()
    y, mask = forward(x_in_place, out=x_in_place)
    assert y is x_in_place and bits_equal(x_in_place, want_y)
    assert backward(g_in_place, mask, out=g_in_place) is g_in_place
    assert bits_equal(g_in_place, want_dx)


def test_results_are_new_c_ordered_arrays_of_the_input_shape():
    x = random_operand(np.random.default_rng(0), (4, 5, 6), np.float32)
    y, mask = forward(x)
    assert y.shape == x.shape and y.flags.c_contiguous and y.flags.owndata
    assert mask.shape == ((x.size + 7) // 8,) and mask.dtype == np.uint8
    dx = backward(x, mask)
    assert dx.shape == x.shape and dx.flags.c_contiguous and not np.shares_memory(dx, x)


def test_public_functions_take_the_fast_path(monkeypatch):
    def general(*args):
        raise AssertionError("the general path ran")

    monkeypatch.setattr(_mask, "execute", general)
    x = random_operand(np.random.default_rng(1), (3, 100), np.float32)
    y, mask = leaky_relu_forward_mask(x, 0.5, num_threads=2)
    dx = leaky_relu_backward_mask(x, mask, 0.5, out=np.empty_like(x))
    want_y, want_mask = reference.leaky_relu_forward_mask(x, 0.5)
    assert bits_equal(y, want_y) and bits_equal(mask, want_mask)
    assert bits_equal(dx, reference.leaky_relu_backward_mask(x, want_mask, 0.5))


class TestDeclines:
    """Every case outside the fast path's returns None and writes nothing."""

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
        mask = reference.leaky_relu_forward_mask(np.asarray(value, np.float64))[1]
        before = mask.copy()
        assert forward(value) is None
        assert backward(value, mask) is None
        assert bits_equal(mask, before)

    @pytest.mark.parametrize(
        "slope", [np.float32(0.5), 1, float("nan"), float("inf"), "0.5", 1e39, None]
    )
    def test_other_slopes(self, slope):
        assert forward(self.x, slope) is None
        assert backward(self.g, self.mask, slope) is None

    def test_a_slope_float64_holds_is_taken_for_float64(self):
        x = self.x.astype(np.float64)
        y, mask = forward(x, 1e39)
        want_y, want_mask = reference.leaky_relu_forward_mask(x, 1e39)
        assert bits_equal(y, want_y) and bits_equal(mask, want_mask)

    @pytest.mark.parametrize("num_threads", [0, -1, 2.0, True, "2", 2**31])
    def test_other_thread_counts(self, num_threads):
        assert forward(self.x, num_threads=num_threads) is None
        assert backward(self.g, self.mask, num_threads=num_threads) is None

    def unusable_outs(self):
        readonly = np.zeros_like(self.x)
        readonly.flags.writeable = False
        return [
            np.zeros((30, 40), np.float32),              # shape
            np.zeros_like(self.x, dtype=np.float64),     # dtype
            np.asfortranarray(np.zeros_like(self.x)),    # order
            readonly,
            np.zeros_like(self.x).view(np.recarray),     # subclass
            [[0.0] * 30] * 40,                            # not an array
        ]

    def test_unusable_out_without_writing(self):
        for out in self.unusable_outs():
            before = np.array(out, copy=True)
            assert forward(self.x, out=out) is None
            assert backward(self.g, self.mask, out=out) is None
            assert bits_equal(np.asarray(out), before)

    def test_out_overlapping_an_input_without_writing(self):
        base = random_operand(np.random.default_rng(3), self.x.size + 1, np.float32)
        before = base.copy()
        value, out = base[:-1].reshape(self.x.shape), base[1:].reshape(self.x.shape)
        assert forward(value, out=out) is None
        assert backward(value, self.mask, out=out) is None
        assert bits_equal(base, before)

    def test_out_overlapping_the_mask_without_writing(self):
        g = self.g.reshape(-1)[:64]
        storage = np.zeros(64, np.float32)
        mask = storage.view(np.uint8)[:8]
        mask[:] = reference.leaky_relu_forward_mask(g)[1]
        before = storage.copy()
        assert backward(g, mask, out=storage) is None
        assert bits_equal(storage, before)

    @pytest.mark.parametrize("case", ["size", "dtype", "2d", "strided", "list", "subclass"])
    def test_other_masks(self, case):
        mask = {
            "size": lambda: self.mask[:-1],
            "dtype": lambda: self.mask.astype(np.int8),
            "2d": lambda: self.mask.reshape(1, -1),
            "strided": lambda: np.repeat(self.mask, 2)[::2],
            "list": lambda: self.mask.tolist(),
            "subclass": lambda: self.mask.view(np.recarray),
        }[case]()
        out = np.zeros_like(self.x)
        assert backward(self.g, mask, out=out) is None
        assert not out.any()
        if case == "list":
            return
        before = np.array(mask, copy=True)
        assert forward(self.x, out=out, mask=mask) is None
        assert not out.any() and bits_equal(mask, before)

    def test_a_read_only_mask_to_fill(self):
        mask = np.zeros_like(self.mask)
        mask.flags.writeable = False
        out = np.zeros_like(self.x)
        assert forward(self.x, out=out, mask=mask) is None
        assert not out.any() and not mask.any()

    def test_a_read_only_input_is_read(self):
        x = self.x.copy()
        x.flags.writeable = False
        y, mask = forward(x)
        assert bits_equal(y, reference.leaky_relu(self.x, 0.25))
        assert backward(x, mask) is not None
        assert forward(x, out=x) is None
