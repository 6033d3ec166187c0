"""Post-mortem timeline export (issue 6): incidents as Markdown, JSON, HTML and CSV, built from
the recorded decision events only. See docs/export.md."""

from router.export.model import TimelineNotFound, TimelineRequestError, build, summarize
from router.export.render import CONTENT_TYPES, FORMATS, render, render_timeline

__all__ = [
    "CONTENT_TYPES",
    "FORMATS",
    "TimelineNotFound",
    "TimelineRequestError",
    "build",
    "render",
    "render_timeline",
    "summarize",
]
