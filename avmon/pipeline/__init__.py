"""The original serverless design, as plain functions over ports.

``steps`` holds what each Lambda does (ingest, convert, detect, aggregate) and how a stream's
report is assembled from the segment reports; ``ports`` the S3, SNS and Step Functions adapters;
``keys`` the S3 layout that IAM policies are scoped to; ``config`` the one typed configuration
that the CDK app and the local simulation both read.
"""
