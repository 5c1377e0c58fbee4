"""Bytes <-> values: graph text, numbers as text, rows readers and writers, atomic output."""
