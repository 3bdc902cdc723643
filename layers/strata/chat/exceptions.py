class ChatError(Exception):
    """Base error of the chat flow."""


class ContextWindowExceededError(ChatError):
    """The prompt (sources, history and question) leaves no room for an answer in the model's window."""
