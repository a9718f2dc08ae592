"""The report's sections: what a section is, the registry, and one module per section.

A section is a function ``Context -> SectionOutput`` registered with :func:`section`
(:mod:`~lossgeometry.app.sections.base`); it calls one library study function and renders its
Result (:mod:`~lossgeometry.app.sections.html` for the fragments). The registry
(:mod:`~lossgeometry.app.sections.registry`) imports the built-in sections and answers which
exist and which a config switches on. The page itself is assembled by
:mod:`lossgeometry.app.report` (which imports this package, never the other way).
"""

from lossgeometry.app.sections.base import Context, SectionOutput, section
from lossgeometry.app.sections.registry import available_sections, enabled_sections

__all__ = ["Context", "SectionOutput", "available_sections", "enabled_sections", "section"]
