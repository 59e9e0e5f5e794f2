"""Framework adapters over the m2-tools core.

Each adapter is its own module and imports its framework only when imported:

- :mod:`integrations.langchain`: ``M2ReasoningToolkit`` and the two LangChain tools.
"""

__all__: list[str] = []
