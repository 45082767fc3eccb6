"""filterlab.core.secrets: what `make server` prints in place of a DSN."""

import pytest

from filterlab.core import secrets


@pytest.mark.parametrize(
    "url, shown",
    [
        ("postgresql://mlflow:s3cret@db.internal:5432/mlflow", "postgresql://mlflow:***@db.internal:5432/mlflow"),
        (
            "postgresql://mlflow:p%40ss@127.0.0.1/mlflow?sslmode=require",
            "postgresql://mlflow:***@127.0.0.1/mlflow?sslmode=require",
        ),
        ("postgresql://mlflow@127.0.0.1:5432/mlflow", "postgresql://mlflow@127.0.0.1:5432/mlflow"),
        ("https://user:token@mlflow.example.org", "https://user:***@mlflow.example.org"),
        ("sqlite:////tmp/mlflow.db", "sqlite:////tmp/mlflow.db"),
    ],
)
def test_the_password_is_masked_and_nothing_else_changes(url, shown):
    assert secrets.mask_url(url) == shown


def test_mask_env_prints_the_variable_masked(monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_BACKEND_URI", "postgresql://mlflow:hunter2@db/mlflow")
    assert secrets.main(["mask-env", "MLFLOW_BACKEND_URI"]) == 0
    out = capsys.readouterr().out
    assert out == "postgresql://mlflow:***@db/mlflow\n" and "hunter2" not in out


def test_every_url_in_free_text_is_masked():
    text = (
        "API request to http://mlflow:s3cret@10.0.0.5:5001/api failed; "
        "retry with postgresql+psycopg://u:p%40ss@db/mlflow or https://public.example.org/x"
    )
    masked = secrets.mask_text(text)
    assert "s3cret" not in masked and "p%40ss" not in masked
    assert "http://mlflow:***@10.0.0.5:5001/api" in masked and "postgresql+psycopg://u:***@db/mlflow" in masked
    assert masked.endswith("https://public.example.org/x")
