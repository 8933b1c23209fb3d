"""Names shared by the CDK app, the local simulation and the tests."""

from __future__ import annotations

from pathlib import Path

from avmon.detectors.registry import CAMEL

ROOT = Path(__file__).resolve().parent.parent
ASL_FILE = ROOT / "statemachine" / "pipeline.asl.json"
LAMBDA_REQUIREMENTS = ROOT / "functions" / "requirements.txt"
STACK_NAME = "AvmonPipeline"
RUNTIME = "python3.12"

# detector name -> the part of its logical id and ASL placeholder (e.g. FreezeFunctionArn),
# derived from the registry
DETECTOR_IDS = dict(CAMEL)
HANDLERS = {
    "Ingest": "functions.ingest.handler",
    "Converter": "functions.converter.handler",
    "Aggregator": "functions.aggregator.handler",
    **{f"{d}Detector": "functions.detector.handler" for d in DETECTOR_IDS.values()},
}

SERVICE_STACK_NAME = "AvmonService"
SERVICE_REQUIREMENTS = ROOT / "cdk" / "service_requirements.txt"
SERVICE_EXAMPLE_STREAMS = ROOT / "cdk" / "streams.example.yaml"
SERVICE_PORT = 8080
# The stock image the service runs on when no image is built (no Docker needed to deploy).
SERVICE_BASE_IMAGE = "public.ecr.aws/docker/library/python:3.11-slim"
