"""Dated price and quota tables, each entry with its source."""
