"""Adj-RIB-In and Adj-RIB-Out of one BGP session."""
from .adj_in import AdjRibIn
from .adj_out import AdjRibOut

__all__ = ["AdjRibIn", "AdjRibOut"]
