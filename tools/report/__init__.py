"""``RUN/report.html``: one self-contained page per run (headline and ladder, curves, IoU, config)."""

from tools.report.html_report import write_run_report

__all__ = ["write_run_report"]
