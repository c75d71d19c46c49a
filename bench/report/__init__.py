"""Reports for people, read only from the record store: result tables (`tables`), the
minimal-pairs analysis on SynthSign (`minimal_pairs`) and method cards (`method_card`).
Fusion sections live beside the fusion code (`slrbench.fusion.report`).
"""

from slrbench.report.method_card import card_markdown, print_card
from slrbench.report.tables import REPORT_FORMATS, build_report

__all__ = ["REPORT_FORMATS", "build_report", "card_markdown", "print_card"]
