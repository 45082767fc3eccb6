"""Passwords never on screen: URLs and DSNs with their password masked; reads nothing, writes nothing.

`python -m filterlab.core.secrets mask-env NAME` prints the environment variable NAME with any
password masked: what `make server` shows instead of the DSN it passes on through the environment.
"""

import os
import re
import sys
import urllib.parse

MASK = "***"


def mask_url(url: str) -> str:
    """`url` with the password of its user-info replaced by ***; anything without one unchanged."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return url if "@" not in url else MASK  # unparsable and possibly holding credentials: show nothing
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))


# user:password@ inside any scheme://… in free text (an error message quoting the URL it failed on).
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<password>[^@\s]+)@")


def mask_text(text: str) -> str:
    """`text` with the password of every URL in it replaced by ***."""
    return _USERINFO.sub(lambda found: f"{found['scheme']}{found['user']}:{MASK}@", text)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "mask-env":
        print("usage: python -m filterlab.core.secrets mask-env NAME", file=sys.stderr)
        return 2
    print(mask_url(os.environ.get(args[1], "")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
