"""Strata: the shared library behind every Lambda and the local stack.

One subpackage per concern; each exports its public surface from ``__init__``.
"""
