"""Shared entry point for the `pipeline/` stage modules; reads and writes nothing itself.

A stage's `main` runs inside `run`, which turns our own errors into one line on
stderr and a non-zero exit, so DVC logs show the cause and not a traceback.
"""

import sys
from collections.abc import Callable

from filterlab.errors import FilterlabError, ParamError, Terminated

EXIT_PARAMS = 2
EXIT_FAILED = 1


def run(main: Callable[[], None]) -> None:
    """Call `main`; exit 2 on a parameter error, 1 on any other filterlab error."""
    try:
        main()
    except ParamError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(EXIT_PARAMS)
    except FilterlabError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(EXIT_FAILED)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(128 + 2)
    except Terminated as error:
        print(f"stopped: {error}", file=sys.stderr)
        sys.exit(128 + error.signum)
