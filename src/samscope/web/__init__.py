"""A local web app over samscope: drop images in a browser, watch them segment, read the tables.

``samscope serve`` starts it (``pip install 'samscope[web]'``: Starlette, uvicorn,
python-multipart). The app is a thin front-end over the library: jobs run
:func:`samscope.pipeline.segment_batch`, the tables come from :func:`samscope.analysis.analyze_image`
and :func:`samscope.analysis.analyze_results`, clicks from :func:`samscope.prompting.segment_from_prompts`.

- :mod:`~samscope.web.config`: :class:`ServerConfig` (the flags) and the loopback rule;
- :mod:`~samscope.web.store`: sessions, jobs and images in SQLite, in transactions;
- :mod:`~samscope.web.worker`: the background worker and the models it loads once;
- :mod:`~samscope.web.uploads`, :mod:`~samscope.web.jobs`: upload checks (limits, type by
  content, safe names) and job options;
- :mod:`~samscope.web.sessions`: session folders, zips and reports;
- :mod:`~samscope.web.views`, :mod:`~samscope.web.edits`: what the page shows, click edits;
- :mod:`~samscope.web.security`: token, host and origin rules;
- :mod:`~samscope.web.routes`, :mod:`~samscope.web.app`: the JSON API and :func:`create_app`;
- :mod:`~samscope.web.server`: :func:`serve` (uvicorn).

The page itself is plain HTML, JavaScript and CSS in ``samscope/data/web`` (no build step).
Importing this package imports nothing heavy; Starlette loads in :func:`create_app`.
"""

from __future__ import annotations

from samscope.web.config import ServerConfig, is_loopback

__all__ = ["ServerConfig", "create_app", "is_loopback", "serve"]


def create_app(config: ServerConfig, **kwargs):
    """The ASGI app (see :func:`samscope.web.app.create_app`)."""
    from samscope.web.app import create_app as make

    return make(config, **kwargs)


def serve(config: ServerConfig, **kwargs) -> None:
    """Run the app with uvicorn until interrupted (see :func:`samscope.web.server.serve`)."""
    from samscope.web.server import serve as run

    run(config, **kwargs)
