"""The local cloud: the synthesized CDK app deployed into moto, Lambdas run in-process, metered.

The only place that imports moto or synthesizes the CDK app."""
