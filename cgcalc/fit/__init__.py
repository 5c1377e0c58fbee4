"""cgcalc fit: gradients that change inputs (the book's optimizers and Newton's method on a graph)."""

from .optimizers import NAMES as OPTIMIZERS
from .train import Diverged, FitResult, fit

__all__ = ["OPTIMIZERS", "Diverged", "FitResult", "fit"]
