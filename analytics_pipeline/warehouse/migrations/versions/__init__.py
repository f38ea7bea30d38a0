"""Alembic revisions of the warehouse schema (Alembic skips this file; it makes setuptools ship
the revisions as part of the package)."""
