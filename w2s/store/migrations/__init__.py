"""Alembic migrations of the store (`w2s db upgrade`, `w2s db current`); see w2s/store/schema.py."""
