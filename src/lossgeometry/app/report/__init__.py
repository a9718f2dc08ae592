"""The report: sections registered in a registry, assembled into a self-contained HTML page."""

from lossgeometry.app.report.registry import available_sections
from lossgeometry.app.report.section import Context, SectionOutput, section

__all__ = ["Context", "SectionOutput", "available_sections", "section"]
