"""The answer at a glance: per kernel size, do learned filters become classic kernels, which, and do they beat them.

`compute` turns `Results` and each model's right/wrong answers on the test digits into a
small JSON-able summary (the report stage writes it to reports/verdict.json, a DVC-cached
output); `lines` renders that summary as the sentences that head the report, the Markdown
summary and the README. Reads and writes nothing itself.
"""

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from filterlab.report.collected import Results
from filterlab.training import stats

# Effect size of the learned filters' similarity, in standard deviations of random filters' similarity.
CLEAR_SHIFT = 2.0  # at least this far above chance: the filters clearly became classic-like
SOME_SHIFT = 0.5  # below this, learned filters are no closer to classic kernels than random ones


def _paired(first: Sequence[bool] | None, second: Sequence[bool] | None) -> float | None:
    if first is None or second is None or len(first) != len(second):
        return None
    return stats.tied_with(first, second)[1]


def _model(name: str, accuracy: float, low: float, high: float) -> dict[str, Any]:
    return {"name": name, "accuracy": round(accuracy, 6), "ci95": [round(low, 4), round(high, 4)]}


def compute(results: Results, correct: Mapping[str, Sequence[bool]]) -> dict[str, Any]:
    """The verdict per kernel size of the grid; `correct` maps model names (variants, baselines) to answers."""
    frozen = {}
    for baseline in results.baselines or ():
        key = baseline.kind if baseline.kind in ("bank", "family") else None
        if key is not None and key not in frozen:  # baselines come best first: the best family
            frozen[key] = baseline
    sizes = {}
    for size in sorted({v.kernel_size for v in results.variants}):
        members = [v for v in results.variants if v.kernel_size == size]  # best first
        best = members[0]
        entry: dict[str, Any] = {
            "variants": len(members),
            "best": _model(best.name, best.test_accuracy, best.ci95_low, best.ci95_high),
        }
        reports = [results.filters[v.name] for v in members if v.name in results.filters]
        if reports:
            nearest = Counter(f["learned"]["kernel"] for r in reports for f in r["per_filter"])
            total = sum(nearest.values())
            effects = [r["shift"]["effect_size"] for r in reports]
            entry["similarity"] = {
                "comparable_variants": len(reports),
                "init": round(sum(r["similarity"]["init"]["mean"] for r in reports) / len(reports), 4),
                "learned": round(sum(r["similarity"]["learned"]["mean"] for r in reports) / len(reports), 4),
                "chance": round(sum(r["chance"]["mean"] for r in reports) / len(reports), 4),
                "effect_size": [round(min(effects), 2), round(max(effects), 2)],
                "above_chance_p95": round(sum(r["shift"]["above_chance_p95"] for r in reports) / len(reports), 4),
                "nearest": [[kernel, round(count / total, 3)] for kernel, count in nearest.most_common(3)],
            }
        for key, baseline in frozen.items():
            entry[f"vs_{key}"] = _model(
                baseline.name, baseline.test_accuracy, baseline.ci95_low, baseline.ci95_high
            ) | {"p_value": _paired(correct.get(best.name), correct.get(baseline.name))}
        sizes[str(size)] = entry
    return {
        "data_source": results.data_source,
        "test_digits": len(next(iter(correct.values()), ())),
        "kernel_sizes": sizes,
    }


def _pct(value: float) -> str:
    return f"{100 * value:.2f}%"


def _p(value: float | None) -> str:
    return "no paired test" if value is None else f"p = {value:.2g}"


def _against(best: Mapping[str, Any], other: Mapping[str, Any], label: str) -> str:
    p = other["p_value"]
    if p is None or p >= stats.ALPHA:
        relation = "is statistically tied with"
    else:
        relation = "beats" if best["accuracy"] > other["accuracy"] else "is beaten by"
    return f"{relation} {label} ({other['name']}, {_pct(other['accuracy'])}; {_p(p)})"


def _shift(similarity: Mapping[str, Any]) -> str:
    low, high = similarity["effect_size"]
    spread = f"{low:.1f}" if f"{low:.1f}" == f"{high:.1f}" else f"{low:.1f}–{high:.1f}"
    if low >= CLEAR_SHIFT:
        answer = "yes, clearly"
    elif high < SOME_SHIFT:
        answer = "no: no closer to classic kernels than random filters"
    elif high >= CLEAR_SHIFT:
        answer = "clearly in some variants, not in others"
    elif low >= SOME_SHIFT:
        answer = "only slightly: above chance, but within the spread of random filters"
    else:
        answer = "barely, and not in every variant"
    return (
        f"do they move towards classic kernels? {answer} (nearest-kernel similarity {similarity['init']:.2f} at "
        f"init → {similarity['learned']:.2f} learned, chance {similarity['chance']:.2f}; {spread} chance SDs "
        f"above it)"
    )


def lines(verdict: Mapping[str, Any]) -> list[str]:
    """One sentence per kernel size, from `compute`'s summary (or reports/verdict.json read back)."""
    result = []
    for size, entry in verdict["kernel_sizes"].items():
        best = entry["best"]
        low, high = best["ci95"]
        parts = [
            f"{size}×{size} filters ({entry['variants']} variants, best {best['name']} at "
            f"{_pct(best['accuracy'])}, 95% {100 * low:.2f}–{100 * high:.2f}%)"
        ]
        similarity = entry.get("similarity")
        if similarity is None:
            parts.append("no classic kernel of this size in the bank to compare with")
        else:
            parts.append(_shift(similarity))
            become = ", ".join(f"{kernel} ({100 * share:.0f}%)" for kernel, share in similarity["nearest"])
            parts.append(f"nearest classic kernels: {become}")
        against = [
            _against(best, entry[key], label)
            for key, label in (("vs_bank", "the frozen classic bank"), ("vs_family", "the best frozen classic family"))
            if key in entry
        ]
        if against:
            parts.append(f"the best of them {' and '.join(against)}")
        result.append("; ".join(parts) + ".")
    return result


README_START = "<!-- verdict: generated by `python -m filterlab.report.verdict --readme README.md` -->"
README_END = "<!-- verdict: end -->"


def readme_block(verdict: Mapping[str, Any]) -> str:
    """The README's verdict: one bullet per kernel size between the two markers."""
    bullets = "\n".join(f"- {line}" for line in lines(verdict))
    return f"{README_START}\n{bullets}\n{README_END}"


def replace_in_readme(text: str, verdict: Mapping[str, Any]) -> str:
    """`text` with the block between the markers rewritten; ValueError if the markers are missing."""
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"no verdict block: the README needs the lines {README_START!r} and {README_END!r}")
    return text[:start] + readme_block(verdict) + text[end + len(README_END) :]


def main(argv: Sequence[str] | None = None) -> int:
    """Print the verdict sentences from reports/verdict.json, or rewrite a README's verdict block with them."""
    import argparse
    import json
    from pathlib import Path

    from filterlab.core import atomic

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument(
        "verdict",
        nargs="?",
        type=Path,
        default=Path("reports/verdict.json"),
        help="the report stage's verdict.json (default: reports/verdict.json)",
    )
    parser.add_argument("--readme", type=Path, help="rewrite this file's verdict block instead of printing")
    args = parser.parse_args(argv)
    try:
        summary = json.loads(args.verdict.read_text(encoding="utf-8"))
    except FileNotFoundError:
        parser.exit(1, f"{args.verdict}: not found; run `dvc repro report` (or `dvc pull`) first\n")
    except ValueError as error:
        parser.exit(1, f"{args.verdict}: not valid JSON ({error})\n")
    if args.readme is None:
        print("\n".join(lines(summary)))
        return 0
    try:
        atomic.write_text(args.readme, replace_in_readme(args.readme.read_text(encoding="utf-8"), summary))
    except (OSError, ValueError) as error:
        parser.exit(1, f"{args.readme}: {error}\n")
    print(f"{args.readme}: verdict block rewritten from {args.verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
