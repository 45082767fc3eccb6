"""Every variant's training history in one long table; reads the per-variant CSVs it is given.

The train stages write one history per variant (reports/plots/train/<variant>.csv); DVC
draws a folder as one plot per file, all in one colour. One long table with a `variant`
column lets a plot template colour each variant (.dvc/plots/by_variant.json).
"""

import csv
import io
from pathlib import Path

from filterlab.core.errors import DataError


def long_format(folder: Path, variants: list[str]) -> str:
    """The histories of `variants` (in grid order) as one CSV: `variant` first, then the history's columns."""
    out = io.StringIO()
    writer = None
    for name in variants:
        path = Path(folder) / f"{name}.csv"
        try:
            rows = list(csv.DictReader(path.read_text(encoding="utf-8").splitlines()))
        except FileNotFoundError:
            raise DataError(f"{path}: missing; the train stage of variant {name} has not run") from None
        for row in rows:
            if writer is None:
                writer = csv.DictWriter(out, fieldnames=["variant", *row], lineterminator="\n")
                writer.writeheader()
            writer.writerow({"variant": name, **row})
    return out.getvalue()
