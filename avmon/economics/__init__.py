"""What each design costs and where it stops scaling: prices, quotas, designs compared,
the report."""
