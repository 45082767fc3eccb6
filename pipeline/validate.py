"""Stage `validate`: reads the whole params.yaml (a file dep, so DVC sees every byte); writes a fixed stamp.

Runs first: every other stage lists the stamp as a dep, so DVC orders this stage
before them and stops `dvc repro` here, before it removes any other stage's outputs,
when params.yaml holds anything a stage would refuse: a wrong type (`epochs: true`,
which DVC's own params comparison takes for 1), an unknown section, a duplicate key,
bytes that are not UTF-8. The stamp's bytes do not depend on the values
(`filterlab.validate.stamp`), so a valid edit re-runs only the stages it concerns.
"""

import argparse
from pathlib import Path

from filterlab.config.sections import open_params
from filterlab.core import atomic, stage


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", required=True, help="params.yaml")
    parser.add_argument("--out", required=True, type=Path, help="the stamp (data/params.checked)")
    return parser.parse_args(argv)


def check_params(args: argparse.Namespace) -> None:
    params = open_params(args.params)
    from filterlab import validate

    validate.check_all(params)
    atomic.write_text(args.out, validate.stamp())
    print(f"{args.params}: every section valid")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return stage.run(lambda: check_params(args))


if __name__ == "__main__":
    stage.entry(main)
