"""Shared entry point for the `pipeline/` stage modules; reads and writes nothing.

Every stage module exposes `main(argv) -> int` and runs its work inside `run`, which
turns our own errors into one line on stderr and an exit code, so DVC logs show the
cause and not a traceback, and tests call stages in-process the same way DVC does.
Under `entry` (how DVC runs a stage) SIGTERM cleans up and prints one line, and the
stage dies with the dvc that started it (`filterlab.core.parent_death`).
A stage's first call is `filterlab.config.sections.open_params`, which pins the CPU numeric path.
"""

import signal
import sys
from collections.abc import Callable

from filterlab.core.errors import (
    DiskFull,
    FilterlabError,
    ParamError,
    Terminated,
    filled_path,
    is_disk_full,
    raise_terminated,
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_PARAMS = 2


def run(body: Callable[[], None]) -> int:
    """Call `body`; 0 on success, 2 on a parameter error, 1 on any other filterlab error."""
    try:
        body()
    except ParamError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_PARAMS
    except FilterlabError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as error:
        # The write boundaries (atomic, mirrors, tracking) name what filled; this catches the rest,
        # however a library wrapped the ENOSPC (Keras saving a model, h5py, sqlite).
        if not is_disk_full(error):
            raise
        print(f"error: {DiskFull(filled_path(error) or 'a file this stage writes')}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 128 + 2
    except Terminated as error:
        # The stage's `finally` blocks have removed its temp files; what it had not replaced is untouched.
        print(f"stopped: {error}; temp files removed, outputs not replaced", file=sys.stderr)
        return 128 + error.signum
    return EXIT_OK


def entry(main: Callable[[list[str] | None], int]) -> None:
    """A stage script's `__main__`: TensorFlow's C++ noise filtered out, SIGTERM turned into
    `Terminated` (so `finally` blocks clean up and `run` prints one line), the process tied
    to the dvc that started it; then exit with main's code."""
    from filterlab.core import parent_death, tf_log_filter

    block_unused_imports()
    tf_log_filter.install()
    signal.signal(signal.SIGTERM, raise_terminated)
    parent_death.install(signal.SIGTERM)
    code = main(None)
    # Nothing is left to clean up once main returns: a SIGTERM during interpreter shutdown ends the process
    # quietly instead of raising Terminated inside a library's atexit callback (MLflow ends runs there).
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    sys.exit(code)


# Imported by a dependency at load time and never used by a stage: `import keras` pulls in
# scikit-learn for its `keras.wrappers` (a noticeable part of every training stage's start), and keras
# falls back cleanly when it is missing. MLflow needs it only for sklearn models, never logged here.
UNUSED_IMPORTS = ("sklearn",)


def block_unused_imports() -> None:
    """Make `import sklearn` fail fast in a stage process (None in sys.modules: Python's own way to do it)."""
    for name in UNUSED_IMPORTS:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # typeshed allows modules only
