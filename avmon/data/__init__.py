"""Dated data with sources: AWS prices (prices.json) and service quotas (quotas.json)."""
