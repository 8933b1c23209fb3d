"""What each design costs and where it stops scaling: prices, quotas, the Lambda duration
model, designs compared, the report."""
