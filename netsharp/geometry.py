"""Convolution, pooling and normalization geometry (LANGUAGE.md 5.3), one dimension at a time.

Everything here is pure integer arithmetic on tuples; the checker turns violations into errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod


@dataclass(frozen=True)
class Axis:
    """One dimension of a kernel's sweep over its input."""

    size: int        # I: input cells
    kernel: int      # K
    stride: int      # S
    positions: int   # N: kernel positions (output cells per map)
    origin: int      # input cell under the first cell of kernel 0 (negative in the low padding)
    padding: str     # 'none' | 'auto' | 'explicit'

    def window(self, position: int) -> range:
        """The input cells kernel `position` covers, padding cells (outside 0..I-1) included."""
        start = self.origin + position * self.stride
        return range(start, start + self.kernel)

    def real_cells(self, position: int) -> range:
        """The cells of `window(position)` that exist in the input."""
        window = self.window(position)
        return range(max(window.start, 0), min(window.stop, self.size))

    @property
    def lower_pad(self) -> int:
        return max(0, -self.origin)

    @property
    def upper_pad(self) -> int:
        return max(0, self.window(self.positions - 1).stop - self.size)

    @property
    def real_connections(self) -> int:
        """Real input cells summed over every kernel position.

        Only windows near the two ends can reach into padding, so just those are visited:
        the cost is bounded by the kernel, not by the (possibly huge) number of positions.
        """
        missing, p = 0, 0
        while p < self.positions and self.window(p).start < 0:
            missing += -self.window(p).start
            p += 1
        q = self.positions - 1
        while q >= 0 and self.window(q).stop > self.size:
            missing += self.window(q).stop - self.size
            q -= 1
        return self.positions * self.kernel - missing


def unpadded_axis(size: int, kernel: int, stride: int) -> Axis:
    """No padding: the cells no kernel reaches are split between the ends, the low end
    getting the smaller half."""
    positions = (size - kernel) // stride + 1
    extra = size - ((positions - 1) * stride + kernel)
    return Axis(size, kernel, stride, positions, extra // 2, "none")


def auto_padded_axis(size: int, kernel: int, stride: int) -> Axis:
    """`Padding = true`: kernel centres spread over the input like unpadded kernels of size 1."""
    positions = (size - 1) // stride + 1
    first_centre = (size - ((positions - 1) * stride + 1)) // 2
    return Axis(size, kernel, stride, positions, first_centre - (kernel - 1) // 2, "auto")


def explicit_padded_axis(size: int, kernel: int, stride: int, lower: int, upper: int) -> Axis:
    """`LowerPad`/`UpperPad`: the kernels must tile the padded input exactly (checked by caller)."""
    positions = (size + lower + upper - kernel) // stride + 1
    return Axis(size, kernel, stride, positions, -lower, "explicit")


def tiles_exactly(size: int, kernel: int, stride: int, lower: int, upper: int) -> bool:
    positions = (size + lower + upper - kernel) // stride + 1
    return (positions - 1) * stride + kernel == size + lower + upper


@dataclass(frozen=True)
class Geometry:
    """A kernel's sweep over a (reshaped) source layer, in every dimension."""

    axes: tuple[Axis, ...]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(a.size for a in self.axes)

    @property
    def kernel_shape(self) -> tuple[int, ...]:
        return tuple(a.kernel for a in self.axes)

    @property
    def stride(self) -> tuple[int, ...]:
        return tuple(a.stride for a in self.axes)

    @property
    def positions(self) -> tuple[int, ...]:
        return tuple(a.positions for a in self.axes)

    @property
    def lower_pad(self) -> tuple[int, ...]:
        return tuple(a.lower_pad for a in self.axes)

    @property
    def upper_pad(self) -> tuple[int, ...]:
        return tuple(a.upper_pad for a in self.axes)

    @property
    def origin(self) -> tuple[int, ...]:
        return tuple(a.origin for a in self.axes)

    @property
    def kernel_size(self) -> int:
        return prod(self.kernel_shape)

    @property
    def is_padded(self) -> bool:
        return any(self.lower_pad) or any(self.upper_pad)

    @property
    def real_connections(self) -> int:
        """Real input cells summed over every kernel position of one map."""
        return prod(a.real_connections for a in self.axes)

    def covered(self, position: tuple[int, ...]) -> tuple[range, ...]:
        """Per dimension, the input cells (padding included) the kernel at `position` covers."""
        return tuple(a.window(p) for a, p in zip(self.axes, position))
