"""Matchflow: batch processing of sports broadcast video corpora into Parquet tables and Zarr arrays."""

__version__ = "0.1.0"
