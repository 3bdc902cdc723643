from strata.prompts import ContextWindowExceededError


class ChatError(Exception):
    """Base error of the chat flow."""


__all__ = ("ChatError", "ContextWindowExceededError")
