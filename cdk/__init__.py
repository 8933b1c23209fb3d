"""The CDK v2 app: the original serverless pipeline as one stack (see pipeline_stack.py)."""
