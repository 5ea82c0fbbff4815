"""Data package: principle libraries (principles/*.yaml) and prompt templates (templates/*.jinja)."""
