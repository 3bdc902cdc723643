class InteractionsError(Exception):
    """Base error of the interactions package."""


class InvalidDateRangeError(InteractionsError, ValueError):
    """A date range whose end comes before its start."""
