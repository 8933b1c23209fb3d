"""Lambda handlers: thin adapters that parse the event, call one core function, return a dict.

The core lives in ``avmon.pipeline.steps``; the single-process design calls the same code.
Configuration comes from the environment the CDK app sets, read when a handler runs (never at
import): ``AVMON_BUCKET``, ``AVMON_PIPELINE_CONFIG`` (the typed PipelineConfig as JSON),
``AVMON_TOPIC_ARN``, ``AVMON_STATE_MACHINE_ARN`` and ``AVMON_DETECTOR``.
"""
