"""A run turned into pure data, strings or Rich renderables: check, trace, tables, dot, mermaid."""
