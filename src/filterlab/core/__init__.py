"""Plumbing every stage shares: errors, atomic writes, the stage entry, the numeric pin, determinism, MLflow."""
