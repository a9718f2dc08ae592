"""The ``analyze`` report: build the problem, run the enabled sections, write the page.

:func:`~lossgeometry.app.report.build.build_report` assembles ``index.html``,
``results.json`` and the figures from the sections of :mod:`lossgeometry.app.sections`.
"""

from lossgeometry.app.report.build import build_report

__all__ = ["build_report"]
