"""Prefect tasks: thin wrappers that call the plain functions of matchflow.games and matchflow.pipeline."""
