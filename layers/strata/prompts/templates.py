"""The built-in RAG prompt. Prompt versions per tenant come with the prompt-management issue."""

SYSTEM_PROMPT = (
    "You are a helpful assistant. Answer the user's question using only the numbered sources below. "
    "Cite the sources you use like [1]. If the sources do not contain the answer, say that you do not know.\n\n"
    "Sources:\n{sources}"
)
SOURCE_TEMPLATE = "[{number}] {title}\n{text}"
NO_SOURCES = "(no sources found)"
