"""Reports: method labels and colours, matplotlib figures, the self-contained HTML evaluation report."""

from deepgami.report.html import write_report

__all__ = ["write_report"]
