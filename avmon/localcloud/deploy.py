"""The local simulation: the synthesized CDK app, deployed into moto, driven like AWS.

No AWS account and no Docker. Steps, each the smallest change that makes moto behave like AWS:

1. Synthesize the CDK app (bundling skipped) and stage its assets where ``cdk deploy`` puts them:
   the bootstrap bucket ``cdk-hnb659fds-assets-<account>-<region>``, one zip per asset.
2. Create the stack with moto's CloudFormation (``CREATE_COMPLETE`` for every resource).
3. moto's Lambda runs code only in Docker, so ``LambdaFunction._invoke_lambda`` is replaced: the
   function's own handler runs in this process, with its environment, memory size and a Lambda
   context. CDK's S3-notifications custom resource is inline code in the template; it runs too,
   its response PUT delivered to moto's CloudFormation directly (the URL is not reachable).
4. moto's CloudFormation registers state machines with the Step Functions backend that does not
   execute, and ignores ``DefinitionSubstitutions``; the definition, with the substitutions
   resolved as CloudFormation resolves them, is registered again with the executing backend.
5. The input goes in through the same path as on AWS: a PutObject under ``ingest/`` fires the
   bucket notification, the ingest Lambda cuts segments and starts one execution per segment.

6. Long streams: moto would start every execution at once and keep every object, history and
   model instance; executions run at most ``max_executions`` at once (``executions.py``), a
   segment's working objects are deleted once aggregated (the lifecycle rule, emulated early:
   ``expiry.py``), and glibc is told to unmap large buffers (``heap.py``).

``moto`` is pinned (requirements.txt): steps 3, 4 and 6 use its private API, and tests check them.
Where moto's Step Functions interpreter names a Lambda API error ``Exception``, it is taught to
name it as AWS does (``Lambda.TooManyRequestsException``), so the workflow's Retry on Lambda
throttling runs locally too (``faults`` injects the throttling).

The CDK app (``cdk/``) and the handlers (``functions/``) live in the source checkout, not in the
installed ``avmon`` package: ``project.project_root`` finds the checkout, puts it on ``sys.path``.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import json
import logging
import os
import tempfile
import threading
import time
import types
import uuid
import warnings
import zipfile
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avmon.errors import ConfigError
from avmon.localcloud.alerts import AlertTap
from avmon.localcloud.executions import ExecutionPool
from avmon.localcloud.expiry import LifecycleEmulation, Observer
from avmon.localcloud.faults import Faults
from avmon.localcloud.heap import return_large_buffers
from avmon.localcloud.limits import DEFAULT_MAX_EXECUTIONS
from avmon.localcloud.meter import Meter
from avmon.localcloud.patching import MethodPatch
from avmon.localcloud.project import project_root
from avmon.pipeline import keys, ports
from avmon.pipeline.config import PipelineConfig

ACCOUNT = "123456789012"
REGION = "us-east-1"
_FAKE_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
             "AWS_SECURITY_TOKEN": "testing", "AWS_SESSION_TOKEN": "testing",
             "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
             "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
             # the handlers' Powertools: no EMF record in each invocation's log, no X-Ray
             "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_TRACE_DISABLED": "true"}


@dataclass
class LambdaContext:
    """The attributes of the Lambda runtime's context object that handlers and Powertools use."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    timeout_s: float
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    _deadline: float = field(default=0.0)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s
        self.log_group_name = f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class Invocation:
    function: str
    event: Any
    result: Any
    error: str | None
    logs: str = ""


class InProcessLambda:
    """Replaces moto's Docker-based invoke with the function's handler run in this process.

    Invocations run one at a time (an invocation's log is the process's stdout, redirected);
    Step Functions' parallel branches therefore take turns, as on a 1-vCPU box. The last
    ``RECENT`` invocations are kept (an hour's stream makes tens of thousands), and the latest
    of each function; ``observers`` are called after each invocation with the function's role,
    its event and its error (None when it succeeded).
    """

    RECENT = 256

    def __init__(self, meter: Meter, names: Callable[[str], str],
                 faults: Faults | None = None) -> None:
        self.meter = meter
        self.names = names
        self.faults = faults or Faults()
        self.invocations: deque[Invocation] = deque(maxlen=self.RECENT)
        self.latest: dict[str, Invocation] = {}  # role -> its latest invocation
        self.failures: deque[str] = deque(maxlen=self.RECENT)
        self.observers: list[Observer] = []
        # held while a handler runs with its environment in os.environ; whoever else reads
        # os.environ wholesale (botocore creating a client) takes it too
        self.lock = threading.RLock()
        self._patches: list[MethodPatch] = []

    def install(self) -> None:
        from moto.awslambda.models import LambdaFunction
        from moto.stepfunctions.parser.asl.component.state.exec.state_task import (
            state_task_lambda,
        )
        outer = self

        def invoke(fn: Any, event: Any = None) -> tuple[str, bool, str]:
            return outer.run(fn, event)

        original_from_error = state_task_lambda.StateTaskLambda._from_error

        def _from_error(state: Any, env: Any, ex: Exception) -> Any:
            return _named_as_on_aws(original_from_error(state, env, ex), ex)

        self._patches = [MethodPatch(LambdaFunction, "_invoke_lambda", invoke),
                         MethodPatch(state_task_lambda.StateTaskLambda, "_from_error", _from_error)]
        for patch in self._patches:
            patch.install()

    def uninstall(self) -> None:
        for patch in self._patches:
            patch.uninstall()

    def run(self, fn: Any, event: Any) -> tuple[str, bool, str]:
        if isinstance(event, (str, bytes)):
            event = json.loads(event or "{}")
        name = self.names(fn.function_name)
        fault = self.faults.lambda_fault(name, event)
        if fault is not None and fault.kind == "throttle":
            self.meter.throttled(name)
            raise _too_many_requests()
        context = LambdaContext(fn.function_name, int(fn.memory_size),
                                fn.function_arn, float(fn.timeout or 3))
        log = io.StringIO()  # what CloudWatch Logs would hold for this invocation
        with self.lock, _environment(fn.environment_vars), contextlib.redirect_stdout(log):
            started = time.perf_counter()
            error: str | None = None
            try:
                if fault is not None:  # the runtime died under the handler (e.g. out of memory)
                    raise _RuntimeExit(f"RequestId: {context.aws_request_id} Error: Runtime"
                                       " exited with error: signal: killed")
                handler = self._handler(fn)
                result = handler(event, context)
                payload = json.dumps(result)
            except Exception as exc:  # the Lambda runtime reports any exception this way
                error = getattr(exc, "error_type", type(exc).__name__)
                self.failures.append(f"{fn.function_name}: {error}: {exc}")
                result = None
                payload = json.dumps({"errorType": error, "errorMessage": str(exc),
                                      "stackTrace": []})
            elapsed = time.perf_counter() - started
        self.meter.invoked(name, int(fn.memory_size), elapsed, error is not None)
        invocation = Invocation(name, event, result, error, log.getvalue())
        self.invocations.append(invocation)
        self.latest[name] = invocation
        for observer in self.observers:
            observer(name, event, error)
        return payload, error is not None, log.getvalue()

    def _handler(self, fn: Any) -> Callable[[Any, Any], Any]:
        module_name, _, attr = str(fn.handler).rpartition(".")
        if module_name == "index":  # inline code (ZipFile): CDK's custom resource providers
            inline = _inline_handler(fn.code_bytes, attr)
            return lambda event, context: inline(_as_cloudformation_sends(event), context)
        import importlib
        module = importlib.import_module(module_name)
        handler: Callable[[Any, Any], Any] = getattr(module, attr)
        return handler


class _RuntimeExit(Exception):
    error_type = "Runtime.ExitError"  # what Lambda reports when the runtime process dies


def _too_many_requests_class() -> type[Exception]:
    from moto.core.exceptions import JsonRESTError

    class TooManyRequests(JsonRESTError):
        code = 429  # Lambda's throttling answer: HTTP 429, x-amzn-ErrorType header

        def __init__(self) -> None:
            super().__init__("TooManyRequestsException", "Rate Exceeded.")

    return TooManyRequests


def _too_many_requests() -> Exception:
    return _too_many_requests_class()()


def _named_as_on_aws(failure: Any, ex: Exception) -> Any:
    """A Lambda API error (a ClientError from Invoke, e.g. HTTP 429) named as Step Functions
    names it on AWS, ``Lambda.<Code>``; moto's interpreter names them all ``Exception``."""
    from botocore.exceptions import ClientError
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import (
        CustomErrorName,
    )

    if isinstance(ex, ClientError):
        error = f"Lambda.{ex.response['Error']['Code']}"
        failure.error_name = CustomErrorName(error)
        details = (failure.event_details or {}).get("lambdaFunctionFailedEventDetails")
        if details is not None:
            details["error"] = error
    return failure


@contextlib.contextmanager
def _process_environment(values: dict[str, str]) -> Iterator[None]:
    """Fake credentials and region for the whole local cloud: set once, before any thread of
    the simulation starts, and restored when it ends."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """The function's environment for this invocation only (this thread's context), as the
    handlers read it (``functions.runtime.environment``); os.environ is left alone."""
    project_root()
    from functions.runtime import ENVIRONMENT

    token = ENVIRONMENT.set({**os.environ, **{k: str(v) for k, v in values.items()}})
    try:
        yield
    finally:
        ENVIRONMENT.reset(token)


def _as_cloudformation_sends(event: Any) -> Any:
    """CloudFormation hands custom resources their properties as strings (true -> "true");
    moto passes the template's JSON types. Convert, as the real service does."""
    def strings(value: Any) -> Any:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return str(value)
        if isinstance(value, dict):
            return {k: strings(v) for k, v in value.items()}
        if isinstance(value, list):
            return [strings(v) for v in value]
        return value
    if isinstance(event, dict) and "ResourceProperties" in event:
        return {**event, "ResourceProperties": strings(event["ResourceProperties"])}
    return event


def _inline_handler(code_bytes: bytes, attr: str) -> Callable[[Any, Any], Any]:
    """Run inline template code (a CloudFormation custom resource provider) in-process."""
    with zipfile.ZipFile(io.BytesIO(code_bytes)) as z:
        source = next(z.read(n).decode() for n in z.namelist() if n.endswith(".py"))
    namespace: dict[str, Any] = {"__name__": "inline_custom_resource"}
    exec(compile(source, "index.py", "exec"), namespace)  # the template's own inline code
    import urllib.request
    namespace["urllib"] = types.SimpleNamespace(request=types.SimpleNamespace(
        Request=urllib.request.Request, urlopen=_deliver_cfn_response))
    handler: Callable[[Any, Any], Any] = namespace[attr]
    return handler


class _Reply(contextlib.AbstractContextManager["_Reply"]):
    reason = "OK"

    def read(self) -> bytes:
        return b"{}"

    def __exit__(self, *exc: object) -> None:
        return None


def _deliver_cfn_response(request: Any) -> _Reply:
    """What moto's cfnresponse endpoint does with a custom resource's response."""
    from moto.cloudformation.models import cloudformation_backends
    body = json.loads(request.data)
    stack = cloudformation_backends[ACCOUNT][REGION].get_stack(body["StackId"])
    if body["Status"] == "SUCCESS":
        stack.get_custom_resource(body["LogicalResourceId"]).set_data(body.get("Data") or {})
        stack.verify_readiness()
    else:  # what CloudFormation does when a custom resource reports failure
        stack.status = "CREATE_FAILED"
    return _Reply()


_jsii_exit_guarded = False


def _stop_jsii_quietly_at_exit() -> None:
    """Ctrl-C in a terminal reaches jsii's node process too (one process group): it exits,
    and jsii's own exit hook then writes to its closed pipe and prints a traceback after
    avmon's last line. Registered after jsii's (exit hooks run last-registered first), this
    stops the node process first, quietly (``stop`` unregisters jsii's hook)."""
    global _jsii_exit_guarded
    if _jsii_exit_guarded:
        return
    _jsii_exit_guarded = True

    def stop() -> None:
        with contextlib.suppress(Exception):  # anything jsii raises on a dead node process
            from jsii._runtime import kernel
            kernel.provider._process.stop()

    atexit.register(stop)


@dataclass
class Deployment:
    bucket: str
    state_machine_arn: str
    topic_arn: str
    functions: dict[str, str]  # physical name -> role name (Converter, FreezeDetector, ...)
    state_table: str = ""      # the streams' running state across segments (DynamoDB)


class LocalCloud:
    """A moto account with the pipeline deployed from the synthesized CDK app.

    Use as a context manager. Raises ConfigError if the stack does not deploy.
    """

    def __init__(self, config: PipelineConfig | None = None, *,
                 max_executions: int = DEFAULT_MAX_EXECUTIONS, expire: bool = True,
                 keep_histories: bool = False) -> None:
        self.config = (config or PipelineConfig()).validate()
        self.meter = Meter()
        # moto would run every execution at once and keep every history and object: bounded
        # and forgotten as AWS's quotas and lifecycle rules do (executions.py, expiry.py)
        self.executions_pool = ExecutionPool(max_executions, keep_histories)
        self.expire = expire
        self.lifecycle: LifecycleEmulation | None = None
        self.deployment: Deployment | None = None
        self._names: dict[str, str] = {}
        self.faults = Faults()
        self.invoker = InProcessLambda(self.meter, lambda n: self._names.get(n, n), self.faults)
        self._stack: contextlib.ExitStack | None = None
        self._client_session: Any = None
        self._clients: dict[str, Any] = {}
        self.deploy_log = io.StringIO()
        self._alert_tap: AlertTap | None = None

    # -- set-up --------------------------------------------------------------------------------
    def __enter__(self) -> LocalCloud:
        from moto import mock_aws

        project_root()  # the CDK app and the handlers: a clear error before anything starts
        return_large_buffers()  # or the resident set grows with the stream (heap.py)
        stack = contextlib.ExitStack()
        self._stack = stack
        # moto logs every template resource it does not model (bucket and topic policies) and
        # probes for Docker: noise here, since nothing runs in Docker
        for name in ("moto", "root"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        warnings.filterwarnings("ignore", module="moto")
        try:
            stack.enter_context(_process_environment(_FAKE_ENV))
            stack.enter_context(mock_aws(config={
                "stepfunctions": {"execute_state_machine": True},
                # not use_docker=False: that swaps in a backend with canned answers; the real
                # backend calls _invoke_lambda, which InProcessLambda replaces (no Docker used)
                "core": {"service_whitelist": None},
            }))
            self.invoker.install()
            stack.callback(self.invoker.uninstall)
            self.executions_pool.install()
            stack.callback(self.executions_pool.uninstall)
            ports.reset_session()
            stack.callback(ports.reset_session)
            self.meter.attach(ports.session())
            self.faults.attach(ports.session())
            import boto3
            self._client_session = boto3.session.Session(region_name=REGION)
            # moto prints (not logs) its probe for a Docker host while creating functions
            with contextlib.redirect_stdout(self.deploy_log):
                self.deployment = self._deploy()
            if self.expire:
                self.lifecycle = LifecycleEmulation(self.client("s3"), self.deployment.bucket)
                self.invoker.observers.append(self.lifecycle.observe)
        except BaseException:
            stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stack is not None:
            self._stack.close()

    def client(self, service: str) -> Any:
        """A client of the driver's own session (its calls are not the pipeline's usage), made
        once: making one reads os.environ, which a handler running meanwhile changes."""
        found = self._clients.get(service)
        if found is None:
            with self.invoker.lock:
                found = self._clients.setdefault(
                    service, self._client_session.client(service, region_name=REGION))
        return found

    def _deploy(self) -> Deployment:
        from cdk.app import build_app

        with tempfile.TemporaryDirectory(prefix="avmon-cdk-") as outdir:
            app = build_app(context={"aws:cdk:bundling-stacks": []}, outdir=outdir,
                            config=self.config)
            assembly = app.synth()
            _stop_jsii_quietly_at_exit()
            artifact = assembly.stacks[0]
            template = artifact.template
            self._stage_assets(Path(outdir), artifact.stack_name)
        ssm = self.client("ssm")
        ssm.put_parameter(Name="/cdk-bootstrap/hnb659fds/version", Value="30", Type="String",
                          Overwrite=True)
        cfn = self.client("cloudformation")
        cfn.create_stack(StackName=artifact.stack_name, TemplateBody=json.dumps(template),
                         Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"])
        status = self._wait_stack(cfn, artifact.stack_name)
        if status != "CREATE_COMPLETE":
            raise ConfigError(f"the stack did not deploy into moto: {status}")
        outputs = {o["OutputKey"]: o["OutputValue"] for o in
                   cfn.describe_stacks(StackName=artifact.stack_name)["Stacks"][0]["Outputs"]}
        resources = cfn.list_stack_resources(
            StackName=artifact.stack_name)["StackResourceSummaries"]
        from cdk.constants import HANDLERS
        physical: dict[str, str] = {}
        for r in resources:
            physical[r["LogicalResourceId"]] = r["PhysicalResourceId"]
            if r["ResourceType"] == "AWS::Lambda::Function":
                role = next((h for h in HANDLERS if r["LogicalResourceId"].startswith(h)),
                            r["LogicalResourceId"])
                self._names[r["PhysicalResourceId"]] = role
        machine = next(r for r in template["Resources"].values()
                       if r["Type"] == "AWS::StepFunctions::StateMachine")
        substitutions = {k: self._resolve(v, physical) for k, v in
                         machine["Properties"].get("DefinitionSubstitutions", {}).items()}
        self._register_executable_state_machine(outputs["StateMachineArn"], substitutions)
        return Deployment(outputs["BucketName"], outputs["StateMachineArn"], outputs["TopicArn"],
                          dict(self._names), outputs.get("StateTableName", ""))

    def _stage_assets(self, outdir: Path, stack_name: str) -> None:
        """Upload each asset the way ``cdk deploy`` does: to the bootstrap bucket, by hash."""
        manifest = json.loads((outdir / f"{stack_name}.assets.json").read_text())
        s3 = self.client("s3")
        for asset in manifest.get("files", {}).values():
            for dest in asset["destinations"].values():
                bucket = dest["bucketName"].replace("${AWS::AccountId}", ACCOUNT) \
                    .replace("${AWS::Region}", REGION).replace("${AWS::Partition}", "aws")
                with contextlib.suppress(Exception):
                    s3.create_bucket(Bucket=bucket)
                source = Path(asset["source"]["path"])
                if not source.is_absolute():
                    source = outdir / source
                body = _zip_dir(source) if asset["source"].get("packaging") == "zip" \
                    else source.read_bytes()
                s3.put_object(Bucket=bucket, Key=dest["objectKey"], Body=body)

    @staticmethod
    def _wait_stack(cfn: Any, name: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            status: str = cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
            if not status.endswith("IN_PROGRESS") or time.monotonic() > deadline:
                return status
            time.sleep(0.05)

    @staticmethod
    def _resolve(value: Any, physical: dict[str, str]) -> str:
        """A substitution value as CloudFormation resolves it (a function's ARN)."""
        if isinstance(value, str):
            return value
        logical, attribute = value["Fn::GetAtt"]
        if attribute != "Arn":
            raise ConfigError(f"cannot resolve {value!r} for the local simulation")
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{physical[logical]}"

    def _register_executable_state_machine(self, arn: str, substitutions: dict[str, str]) -> None:
        from moto.stepfunctions.models import stepfunctions_backends
        registered = next((sm for sm in stepfunctions_backends[ACCOUNT][REGION].state_machines
                           if sm.arn == arn), None)
        if registered is None:
            raise ConfigError(f"the stack created no state machine {arn}")
        definition = registered.definition
        for key, value in substitutions.items():
            definition = definition.replace("${" + key + "}", value)
        if "${" in definition:
            raise ConfigError("the state machine definition has an unbound placeholder")
        self.client("stepfunctions").create_state_machine(
            name=registered.name, definition=definition,
            roleArn=registered.roleArn, type=self.config.workflow_type)

    # -- running -------------------------------------------------------------------------------
    def alert_tap(self) -> AlertTap:
        """The queue subscribed to the topic: what the pipeline published (made on first use)."""
        if self._alert_tap is None:
            self._alert_tap = AlertTap(self)
        return self._alert_tap

    def upload(self, data: bytes, key: str) -> None:
        """Put an object under ingest/: the bucket notification runs the ingest Lambda."""
        assert self.deployment is not None
        self.client("s3").put_object(Bucket=self.deployment.bucket, Key=key, Body=data)

    def executions(self) -> list[dict[str, Any]]:
        assert self.deployment is not None
        sfn = self.client("stepfunctions")
        out: list[dict[str, Any]] = []
        for page in sfn.get_paginator("list_executions").paginate(
                stateMachineArn=self.deployment.state_machine_arn):
            out += page["executions"]
        return out

    def transitions(self, execution_arn: str) -> int:
        """The states an ended execution entered (counted in its history when it ended)."""
        return self.executions_pool.transitions.get(execution_arn, 0)

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        """An execution's event history: empty once it ended, unless the cloud was made with
        ``keep_histories`` (an hour's histories would not fit in memory)."""
        sfn = self.client("stepfunctions")
        events: list[dict[str, Any]] = []
        for page in sfn.get_paginator("get_execution_history").paginate(
                executionArn=execution_arn):
            events += page["events"]
        return events

    def store(self) -> ports.S3Store:
        """The media bucket, through the driver's own client (not metered)."""
        assert self.deployment is not None
        return ports.S3Store(self.deployment.bucket, self.client("s3"))

    def segment_reports(self, stream: str, run: str) -> list[dict[str, Any]]:
        store = self.store()
        return [store.get_json(k) for k in store.list(keys.reports_of(stream, run))]

    def object_keys(self, prefix: str = "") -> list[str]:
        assert self.deployment is not None
        return ports.S3Store(self.deployment.bucket, self.client("s3")).list(prefix)


def _zip_dir(folder: Path) -> bytes:
    """The asset as the Lambda bundle lays it out: the project's packages at the root (the
    pip-installed dependencies are what bundling adds; here they come from the local install)."""
    from cdk.bundling import PACKAGES
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        roots = [folder / p for p in PACKAGES if (folder / p).is_dir()] or [folder]
        for root in roots:
            for path in sorted(root.rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    z.write(path, path.relative_to(folder))
    return buf.getvalue()

