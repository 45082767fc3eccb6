"""Facts about the images and the model's shape that params are checked against; no I/O.

MNIST digits are 28x28 with one channel and ten classes; the model's two max-pools
halve the first layer's map twice. Every module that needs one of these numbers
imports it from here.
"""

from dataclasses import dataclass

IMAGE_SIDE = 28
NUM_CLASSES = 10
POOL = 2
# The recovery probe trains a single 3x3 Conv2D; a kernel of another size could never match exactly.
RECOVERY_SHAPE = (3, 3)


def conv1_side(kernel_size: int, stride: int, image_side: int = IMAGE_SIDE) -> int:
    """Side of the first layer's 'valid' feature map; 0 when the kernel does not fit."""
    return max(0, (image_side - kernel_size) // stride + 1)


def final_side(kernel_size: int, stride: int, image_side: int = IMAGE_SIDE) -> int:
    """Side after conv1, its max-pool, and the second block's 'same' conv and max-pool."""
    return conv1_side(kernel_size, stride, image_side) // POOL // POOL


@dataclass(frozen=True)
class VariantSpec:
    """One cell of the training grid: what the first convolution layer looks like."""

    filters: int
    kernel_size: int
    stride: int

    @property
    def name(self) -> str:
        """`f<filters>_k<kernel_size>_s<stride>`: the folder, metrics file and MLflow run name of the variant."""
        return f"f{self.filters}_k{self.kernel_size}_s{self.stride}"

    def stage_name(self, stage: str) -> str:
        """`train@8-3-1` for `stage` "train": the dvc stage of the grid's matrix that builds this variant's files."""
        return f"{stage}@{self.filters}-{self.kernel_size}-{self.stride}"
