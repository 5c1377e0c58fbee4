"""cgcalc fit: gradients that change inputs (the book's optimizers and Newton's method on a graph)."""

from .optimizers import NAMES as OPTIMIZERS
from .result import Diverged, FitResult
from .train import fit

__all__ = ["OPTIMIZERS", "Diverged", "FitResult", "fit"]
