"""Exceptions that stages turn into one-line messages; reads and writes nothing.

Anything a user can cause (a bad parameter, a corrupt file, an unreachable mirror)
raises one of these, so `filterlab.stage.run` can print it without a traceback.
"""


class FilterlabError(Exception):
    """Base class: the message is complete and meant for the user as is."""


class ParamError(FilterlabError):
    """A parameter is missing, unknown, of the wrong type or out of range."""

    def __init__(self, key: str, problem: str):
        self.key = key
        super().__init__(f"params.yaml: {key}: {problem}")


class DataError(FilterlabError):
    """An input file is missing, truncated, corrupt or inconsistent."""


class DownloadError(FilterlabError):
    """No mirror delivered a verified file."""


class Terminated(BaseException):
    """SIGTERM arrived; a BaseException so that `except Exception` cannot swallow it."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"terminated by signal {signum}")
