"""Scoring exactly like the official ImageNet-S evaluator: Hungarian matching, metrics, curve, tables."""

from tools.evaluation.curve import CurveResult, threshold_curve
from tools.evaluation.hungarian import hungarian_match
from tools.evaluation.match_file import load_match_file, save_match_file
from tools.evaluation.report import print_curve_table, print_score_table
from tools.evaluation.scorer import ScoreResult, score_predictions

__all__ = [
    "CurveResult",
    "ScoreResult",
    "hungarian_match",
    "load_match_file",
    "print_curve_table",
    "print_score_table",
    "save_match_file",
    "score_predictions",
    "threshold_curve",
]
