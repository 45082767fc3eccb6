"""One frozen dataclass per params.yaml section, and `open_params`: a stage's first call, which reads params.yaml.

`filterlab.config.params.load_section` fills these and runs each `validate(prefix)` for
the checks that span several keys (a grid that leaves no feature map). Kernel names are
checked against the bank by the stages that use them (`filterlab.kernels.bank.select`),
so that this module, which every stage imports, does not depend on the bank.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from filterlab.config.geometry import IMAGE_SIDE, POOL, VariantSpec, conv1_side, final_side
from filterlab.config.params import load_numerics, read_params, spec
from filterlab.core import numerics
from filterlab.core.errors import ParamError


def _positive_ints(upper: int) -> Callable[[tuple[int, ...]], bool]:
    return lambda values: len(values) > 0 and len(set(values)) == len(values) and all(1 <= v <= upper for v in values)


@dataclass(frozen=True)
class DataParams:
    source: Literal["auto", "remote", "pypi", "bundled"]
    mirrors: tuple[str, ...] = spec(
        "a non-empty list of http://, https:// or file:// URLs",
        lambda urls: len(urls) > 0 and all(url.startswith(("http://", "https://", "file://")) for url in urls),
    )
    timeout_seconds: float = spec("a number of seconds in (0, 600]", lambda v: 0 < v <= 600)
    retries: int = spec("an integer in [0, 10]", lambda v: 0 <= v <= 10)
    min_bytes_per_second: float = spec("a number of bytes per second in (0, 1e9]", lambda v: 0 < v <= 1e9)


@dataclass(frozen=True)
class PrepareParams:
    val_fraction: float = spec("a number in (0, 0.5]", lambda v: 0 < v <= 0.5)
    bundled_test_fraction: float = spec("a number in (0, 0.5]", lambda v: 0 < v <= 0.5)


@dataclass(frozen=True)
class GridParams:
    filters: tuple[int, ...] = spec("a non-empty list of distinct integers in [1, 512]", _positive_ints(512))
    kernel_size: tuple[int, ...] = spec(
        f"a non-empty list of distinct integers in [1, {IMAGE_SIDE}]", _positive_ints(IMAGE_SIDE)
    )
    stride: tuple[int, ...] = spec(
        f"a non-empty list of distinct integers in [1, {IMAGE_SIDE}]", _positive_ints(IMAGE_SIDE)
    )

    def variants(self) -> list[VariantSpec]:
        """Every combination, in the order dvc.yaml's matrix expands them."""
        return [VariantSpec(f, k, s) for f in self.filters for k in self.kernel_size for s in self.stride]

    def validate(self, prefix: str) -> None:
        for kernel_size in self.kernel_size:
            for stride in self.stride:
                if final_side(kernel_size, stride) < 1:
                    raise ParamError(
                        prefix,
                        f"kernel_size {kernel_size} with stride {stride} leaves a "
                        f"{conv1_side(kernel_size, stride)}x{conv1_side(kernel_size, stride)} map, "
                        f"nothing after two {POOL}x{POOL} max-pools; allowed: "
                        f"({IMAGE_SIDE} - kernel_size) // stride + 1 >= {POOL * POOL}",
                    )


@dataclass(frozen=True)
class TrainParams:
    grid: GridParams
    epochs: int = spec("an integer in [1, 1000]", lambda v: 1 <= v <= 1000)
    batch_size: int = spec("an integer in [1, 65536]", lambda v: 1 <= v <= 65536)
    learning_rate: float = spec("a number in (0, 1]", lambda v: 0 < v <= 1)
    block2_filters: int = spec("an integer in [1, 1024]", lambda v: 1 <= v <= 1024)
    dropout: float = spec("a number in [0, 1)", lambda v: 0 <= v < 1)
    threads: int = spec("an integer in [0, 256]; 0 lets TensorFlow choose", lambda v: 0 <= v <= 256)
    seeds: int = spec("an integer in [1, 20]: how many seeds train each variant", lambda v: 1 <= v <= 20)


@dataclass(frozen=True)
class BaselinesParams:
    kernels: tuple[str, ...] = spec(
        "a non-empty list of kernel names from filterlab.kernels.bank", lambda v: len(v) > 0
    )
    random_std: float = spec("a number in (0, 10]", lambda v: 0 < v <= 10)


@dataclass(frozen=True)
class FiguresParams:
    """Shared by every stage that draws: one colormap for signed weights and maps, one resolution."""

    colormap: str = spec("a diverging matplotlib colormap name, e.g. RdBu_r", lambda v: len(v) > 0)
    dpi: int = spec("an integer in [50, 600]", lambda v: 50 <= v <= 600)


@dataclass(frozen=True)
class FiltersParams:
    gif_frame_ms: int = spec("an integer number of milliseconds in [20, 10000]", lambda v: 20 <= v <= 10000)


@dataclass(frozen=True)
class SingleImageProbe:
    digit: int = spec("an integer digit in [0, 9]", lambda v: 0 <= v <= 9)
    n_filters: int = spec("an integer in [1, 64]", lambda v: 1 <= v <= 64)
    epochs: int = spec("an integer in [1, 10000]", lambda v: 1 <= v <= 10000)
    learning_rate: float = spec("a number in (0, 1]", lambda v: 0 < v <= 1)
    l2: float = spec("a number in [0, 1]: L2 penalty on the filters", lambda v: 0 <= v <= 1)


@dataclass(frozen=True)
class PeakProbe:
    vector: tuple[float, ...] = spec("a list of at least 3 numbers", lambda v: len(v) >= 3)
    n_sequences: int = spec("an integer in [10, 1000000]", lambda v: 10 <= v <= 1_000_000)
    sequence_length: int = spec("an integer in [3, 1000]", lambda v: 3 <= v <= 1000)
    epochs: int = spec("an integer in [1, 10000]", lambda v: 1 <= v <= 10000)
    learning_rate: float = spec("a number in (0, 1]", lambda v: 0 < v <= 1)
    batch_size: int = spec("an integer in [1, 65536]", lambda v: 1 <= v <= 65536)
    restarts: int = spec("an integer in [1, 64]: detectors trained side by side, the best kept", lambda v: 1 <= v <= 64)
    margin: float = spec("a number in [0, 1): labels skip responses within ±margin of 0", lambda v: 0 <= v < 1)


@dataclass(frozen=True)
class RecoveryProbe:
    kernels: tuple[str, ...] = spec(
        "a non-empty list of 3x3 kernel names from filterlab.kernels.bank", lambda v: len(v) > 0
    )
    n_images: int = spec("an integer in [1, 60000]", lambda v: 1 <= v <= 60000)
    epochs: int = spec("an integer in [1, 10000]", lambda v: 1 <= v <= 10000)
    learning_rate: float = spec("a number in (0, 1]", lambda v: 0 < v <= 1)


@dataclass(frozen=True)
class ProbesParams:
    single_image: SingleImageProbe
    peak: PeakProbe
    recovery: RecoveryProbe


@dataclass(frozen=True)
class ReportParams:
    title: str = spec("a non-empty string", lambda v: len(v.strip()) > 0)


# Every top-level key of params.yaml: anything else (a typo such as `trian:`) is rejected.
TOP_LEVEL = ("seed", "numerics", "data", "prepare", "train", "baselines", "figures", "filters", "probes", "report")


def open_params(path: str) -> dict[str, Any]:
    """params.yaml as a mapping, checked for unknown sections, with the CPU numeric path pinned."""
    params = read_params(path)
    unknown = sorted(set(params) - set(TOP_LEVEL), key=str)
    if unknown:
        raise ParamError(str(unknown[0]), f"unknown top-level section; allowed: {', '.join(TOP_LEVEL)}")
    numerics.pin(load_numerics(params))
    return params
