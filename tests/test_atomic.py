"""filterlab.core.atomic: the all-or-nothing folder swap the download stage lands data/raw through.

The file writers (`landing`, `replacing`, `write_json`, `save_figure`) are tested where each kind of file is written:
test_dataset.py, test_prepare.py, test_download.py (a full disk included) and test_explorer.py.
"""

import os
import stat

import pytest

from filterlab.core import atomic


def test_landing_folder_replaces_the_old_folder_whole_and_only_on_success(tmp_path):
    target = tmp_path / "raw"
    target.mkdir()
    (target / "stale.gz").write_text("from an earlier run")
    with atomic.landing_folder(target) as staging:
        (staging / "fresh.gz").write_text("new")
        assert [path.name for path in target.iterdir()] == ["stale.gz"]  # nothing replaced mid-way
    assert sorted(path.name for path in tmp_path.iterdir()) == ["raw"]
    assert [path.name for path in target.iterdir()] == ["fresh.gz"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o777 & ~umask
    with pytest.raises(RuntimeError), atomic.landing_folder(target) as staging:
        (staging / "half.gz").write_text("cut off")
        raise RuntimeError("a failing source")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["raw"]
    assert [path.name for path in target.iterdir()] == ["fresh.gz"]
