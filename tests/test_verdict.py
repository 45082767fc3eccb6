"""The answer at a glance (filterlab.report.verdict): per kernel size, from the fake reports of conftest."""

import json

import pytest

from filterlab.report import collected, verdict
from helpers import GRID, ROOT, loaded_metrics, make_reports


def _verdict(tmp_path):
    metrics, details, _ = make_reports(tmp_path)
    loaded = loaded_metrics(details)
    results = collected.collect("t", GRID, loaded_metrics(metrics), loaded)
    return verdict.compute(results, collected.correct_answers(GRID, loaded))


def test_each_kernel_size_gets_its_numbers_and_paired_tests(tmp_path):
    summary = _verdict(tmp_path)
    assert list(summary["kernel_sizes"]) == ["3", "7"] and summary["test_digits"] == 500
    three, seven = summary["kernel_sizes"]["3"], summary["kernel_sizes"]["7"]
    assert three["best"]["name"] == "f4_k3_s1" and three["variants"] == 2
    assert three["similarity"] == {
        "comparable_variants": 2,
        "init": 0.3,
        "learned": 0.6,
        "chance": 0.4,
        "effect_size": [2.0, 2.0],
        "above_chance_p95": 0.75,
        "nearest": [["sobel_x", 1.0]],
    }
    # 91% against the bank's 93% on the same 500 digits: the bank is right on 10 more, p = 2 / 2**10.
    assert three["vs_bank"]["name"] == "bank" and three["vs_bank"]["p_value"] == pytest.approx(2 / 2**10)
    assert three["vs_family"]["name"] == "family:sobel"
    assert "similarity" not in seven and seven["best"]["name"] == "f8_k7_s1"


def test_the_sentences_state_a_verdict_with_numbers_and_chance(tmp_path):
    three, seven = verdict.lines(_verdict(tmp_path))
    assert three.startswith("3×3 filters (2 variants, best f4_k3_s1 at 91.00%")
    assert "move towards classic kernels? yes, clearly" in three and "chance 0.40" in three
    assert "sobel_x (100%)" in three and "is beaten by the frozen classic bank (bank, 93.00%; p = 0.002)" in three
    assert seven.startswith("7×7 filters") and "no classic kernel of this size" in seven
    assert "beats the frozen classic bank" in seven  # 97% against 93%: 20 digits, all one way


@pytest.mark.parametrize(
    "effects, words",
    [
        ([2.5, 3.0], "yes, clearly"),
        ([0.7, 0.9], "only slightly"),
        ([0.1, 0.3], "no: no closer"),
        ([0.2, 0.8], "barely"),
        ([0.3, 4.0], "clearly in some variants, not in others"),
    ],
)
def test_the_shift_verdict_follows_the_effect_size(tmp_path, effects, words):
    summary = _verdict(tmp_path)
    summary["kernel_sizes"]["3"]["similarity"]["effect_size"] = effects
    assert words in verdict.lines(summary)[0]


def test_the_readme_block_is_rewritten_between_its_markers(tmp_path, capsys):
    path = tmp_path / "verdict.json"
    path.write_text(json.dumps(_verdict(tmp_path)))
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\n{verdict.README_START}\n- stale\n{verdict.README_END}\n\nrest\n")
    assert verdict.main([str(path), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "stale" not in text and text.startswith("# title\n\n") and text.endswith("\n\nrest\n")
    assert verdict.readme_block(json.loads(path.read_text())) in text
    readme.write_text("no markers\n")
    with pytest.raises(SystemExit) as leaving:
        verdict.main([str(path), "--readme", str(readme)])
    assert leaving.value.code == 1 and "no verdict block" in capsys.readouterr().err


def test_the_committed_readme_carries_the_verdict_of_the_committed_run():
    """Where this clone has the run's verdict.json (after `dvc pull` or `dvc repro`), the README's block is
    exactly its sentences; a fresh clone without the DVC cache checks that the block is there."""
    text = (ROOT / "README.md").read_text()
    start, end = text.index(verdict.README_START), text.index(verdict.README_END)
    assert text[start:end].count("\n- ") >= 2
    produced = ROOT / "reports" / "verdict.json"
    if produced.is_file():
        assert verdict.readme_block(json.loads(produced.read_text())) in text
