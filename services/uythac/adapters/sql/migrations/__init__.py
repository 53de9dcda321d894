"""Alembic's scripts for the store's layouts (`uythac.adapters.sql.layout` runs them; `versions/`: one per layout)."""
