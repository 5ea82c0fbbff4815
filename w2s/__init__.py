"""w2s: weak-to-strong preference annotation with principle fast-and-frugal trees."""

__version__ = "0.1.0"
