"""Names shared by the CDK app, the local simulation and the tests."""

from __future__ import annotations

from pathlib import Path

from avmon.detectors import NAMES

ROOT = Path(__file__).resolve().parent.parent
ASL_FILE = ROOT / "statemachine" / "pipeline.asl.json"
LAMBDA_REQUIREMENTS = ROOT / "functions" / "requirements.txt"
STACK_NAME = "AvmonPipeline"
RUNTIME = "python3.12"

# detector name -> the part of its logical id, ASL placeholder and branch (FreezeFunctionArn,
# DetectFreeze): derived from the registry, so a new detector gets its function and a test
# insists on its ASL branch
DETECTOR_IDS = {name: "".join(p.title() for p in name.split("_")) for name in NAMES}
HANDLERS = {
    "Ingest": "functions.ingest.handler",
    "Converter": "functions.converter.handler",
    "Aggregator": "functions.aggregator.handler",
    **{f"{d}Detector": "functions.detector.handler" for d in DETECTOR_IDS.values()},
}
