"""The filter explorer page: the payload (filterlab.explorer.export) and the page's own files in, one HTML string out.

The page's markup, style and script are the files page.html, page.css and page.js beside this module (dvc.yaml
lists them with it: filterlab.config.stage_deps counts a module's same-named files). The payload goes into a
JSON script element, so the page is one file that opens from disk and asks the network for nothing. Writes
nothing itself.
"""

import html
import json
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

TITLE = "filterlab: the filter explorer"
HERE = Path(__file__).resolve().parent


def asset(suffix: str) -> str:
    """page.<suffix> beside this module."""
    return (HERE / f"page.{suffix}").read_text(encoding="utf-8")


def payload_json(payload: Mapping[str, Any]) -> str:
    """Key-sorted compact JSON that cannot end its script element: every `<` is written as \\u003c."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")


def render_html(payload: Mapping[str, Any], report_href: str | None = None) -> str:
    """The whole page; `report_href` (relative to the page) links back to the report when given."""
    back = f'<p><a href="{html.escape(report_href)}">← the report</a></p>' if report_href else ""
    return string.Template(asset("html")).substitute(
        title=html.escape(TITLE),
        back_link=back,
        style=asset("css"),
        script=asset("js"),
        payload=payload_json(payload),
    )
