"""`maas.yaml`: what a deployment holds, read into typed settings with errors that name the field."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from maas.errors import ConfigError, MaasError
from maas.names import check_name

DEFAULT_CONFIG = "maas.yaml"


class _Strict(BaseModel):
    # An unknown key is almost always a typo: refuse it by name rather than ignore it.
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class Runtime(StrEnum):
    ONNX = "onnx"
    TFLITE = "tflite"


class Architecture(StrEnum):
    ARM64 = "arm64"
    X86_64 = "x86_64"


class JwtScopes(_Strict):
    """The OAuth scopes a JWT must carry per kind of route (Cognito resource-server scopes,
    say): invoking a model and administering the registry are separate grants."""

    infer: str = Field(default="maas/infer", min_length=1, description="every /v2 route")
    registry_read: str = Field(default="maas/registry.read", min_length=1, description="GET /registry/...")
    registry_write: str = Field(
        default="maas/registry.write", min_length=1, description="register, promote, retire, delete"
    )
    metrics: str = Field(default="maas/metrics.read", min_length=1, description="GET /metrics")


class JwtAuth(_Strict):
    issuer: str = Field(min_length=1)
    audience: list[str] = Field(min_length=1)
    scopes: JwtScopes = Field(default_factory=JwtScopes)


class RouteThrottling(_Strict):
    rate_limit: float = Field(default=10, gt=0, description="steady requests per second")
    burst_limit: int = Field(default=20, gt=0)


class Throttling(_Strict):
    rate_limit: float = Field(default=100, gt=0, description="steady requests per second")
    burst_limit: int = Field(default=200, gt=0)
    # Administering the registry is rare: a runaway script must not eat the serving budget.
    registry: RouteThrottling = Field(default_factory=RouteThrottling)


class ApiConfig(_Strict):
    auth: Literal["iam", "jwt"] = "iam"
    jwt: JwtAuth | None = None
    throttling: Throttling = Field(default_factory=Throttling)
    cors_origins: list[str] = Field(default_factory=list, description="empty: CORS off")

    @model_validator(mode="after")
    def _jwt_needs_issuer(self) -> ApiConfig:
        if self.auth == "jwt" and self.jwt is None:
            raise ValueError("auth 'jwt' needs a jwt section with issuer and audience")
        return self


class RegistryConfig(_Strict):
    deletion_protection: bool = True
    replica_regions: list[str] = Field(default_factory=list)
    max_upload_mb: int = Field(
        default=400,
        ge=1,
        le=10_000,
        description="the largest artifact the registry API registers from a presigned upload (its "
        "function's /tmp is sized to fit); `maas models register` against AWS has no such limit",
    )


class ConcurrencyConfig(_Strict):
    """Reserved concurrency per function, so that no function can starve the others (or the
    account) of executions. null leaves a function on the account's shared pool, which a new
    account with its limit of 10 needs: AWS keeps 10 unreserved."""

    predict: int | None = Field(default=10, ge=1, description="each model's prediction function")
    batch: int | None = Field(default=2, ge=1, description="each batch model's batch function")
    registry: int | None = Field(default=2, ge=1)
    exporter: int | None = Field(default=1, ge=1)


class StorageConfig(_Strict):
    """How long the artifact bucket keeps what is not a current model artifact. Registered
    artifacts are current objects under artifacts/ and are never expired."""

    noncurrent_version_days: int = Field(
        default=30, ge=1, description="days an overwritten or deleted object version is kept"
    )
    incomplete_upload_days: int = Field(
        default=1, ge=1, description="days before an unfinished multipart upload is aborted"
    )
    uploads_days: int = Field(default=7, ge=1, description="days an unregistered upload is kept")
    outputs_days: int | None = Field(default=None, ge=1, description="batch outputs (default: kept)")
    errors_days: int | None = Field(default=90, ge=1, description="batch error files")
    inputs_days: int | None = Field(default=None, ge=1, description="batch input files (default: kept)")
    data_capture_days: int | None = Field(default=90, ge=1, description="SageMaker data capture")


class MonitoringConfig(_Strict):
    alarm_email: str | None = Field(default=None, description="subscribed to the alarm topic (optional)")
    latency_p99_ms: float = Field(
        default=1000, gt=0, description="alarm when a model's p99 inference latency passes it"
    )
    error_rate_percent: float = Field(default=5, gt=0, le=100, description="alarm on the API's 5xx rate")


class Target(StrEnum):
    LAMBDA = "lambda"
    SAGEMAKER = "sagemaker"


class Autoscaling(_Strict):
    min_instances: int = Field(default=1, ge=1)
    max_instances: int = Field(default=2, ge=1)
    target_invocations_per_instance: int = Field(
        default=100, ge=1, description="invocations per instance per minute that target tracking holds"
    )

    @model_validator(mode="after")
    def _min_within_max(self) -> Autoscaling:
        if self.min_instances > self.max_instances:
            raise ValueError("min_instances cannot exceed max_instances")
        return self


class DataCapture(_Strict):
    enabled: bool = False
    sampling_percent: int = Field(default=10, ge=1, le=100)


class ServerlessEndpoint(_Strict):
    memory_mb: Literal[1024, 2048, 3072, 4096, 5120, 6144] = 4096
    max_concurrency: int = Field(default=5, ge=1, le=200)


class CanaryVariant(_Strict):
    version: int = Field(ge=1)
    weight: int = Field(ge=1, le=99, description="percent of traffic the canary variant takes")


class SageMakerDeployment(_Strict):
    version: int = Field(default=1, ge=1, description="the registered version the endpoint serves first")
    instance_type: str = Field(default="ml.g5.xlarge", pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
    initial_instance_count: int = Field(default=1, ge=1)
    image_uri: str | None = Field(
        default=None, description="default: SageMaker's Triton image for the region"
    )
    canary: CanaryVariant | None = None
    data_capture: DataCapture = Field(default_factory=DataCapture)
    autoscaling: Autoscaling = Field(default_factory=Autoscaling)
    serverless: ServerlessEndpoint | None = Field(
        default=None, description="a serverless (CPU) endpoint instead of GPU instances"
    )

    @model_validator(mode="after")
    def _canary_is_another_version(self) -> SageMakerDeployment:
        if self.canary is not None and self.canary.version == self.version:
            raise ValueError(f"canary.version must differ from version ({self.version})")
        return self


class ModelDeployment(_Strict):
    name: str
    alias: str = "prod"
    runtime: Runtime
    target: Target = Target.LAMBDA
    sagemaker: SageMakerDeployment | None = None
    memory_mb: int = Field(default=1024, ge=128, le=10240)
    architecture: Architecture = Architecture.ARM64
    timeout_seconds: int = Field(default=30, ge=1, le=900)
    reserved_concurrency: int | None = Field(default=None, ge=0, description="default: concurrency.predict")
    provisioned_concurrency: int = Field(default=0, ge=0)
    # SnapStart on published versions (Lambda's Python 3.12+ runtimes): restores from a snapshot
    # taken after init, model loaded and warmed. Lambda refuses it with provisioned concurrency.
    snapstart: bool = True
    batch: bool = False
    # Batch files run in a function of their own, off the API's 30 s path.
    batch_timeout_seconds: int = Field(default=900, ge=1, le=900)
    batch_memory_mb: int | None = Field(default=None, ge=128, le=10240, description="default: memory_mb")

    @field_validator("name", "alias")
    @classmethod
    def _safe(cls, value: str) -> str:
        try:
            return check_name("name", value)
        except MaasError as error:
            raise ValueError(error.message) from None

    @model_validator(mode="after")
    def _sagemaker_serves_onnx(self) -> ModelDeployment:
        if self.target is Target.SAGEMAKER:
            if self.runtime is not Runtime.ONNX:
                raise ValueError("target 'sagemaker' serves ONNX models (Triton's onnxruntime backend)")
            if self.batch:
                raise ValueError("batch files are not supported for target 'sagemaker'")
            if self.sagemaker is None:
                self.sagemaker = SageMakerDeployment()
        elif self.sagemaker is not None:
            raise ValueError("a sagemaker section needs target: sagemaker")
        return self

    @model_validator(mode="after")
    def _provisioned_within_reserved(self) -> ModelDeployment:
        if self.reserved_concurrency is not None and self.provisioned_concurrency > self.reserved_concurrency:
            raise ValueError("provisioned_concurrency cannot exceed reserved_concurrency")
        return self

    @model_validator(mode="after")
    def _snapstart_or_provisioned(self) -> ModelDeployment:
        if self.snapstart and self.provisioned_concurrency:
            raise ValueError(
                f"snapstart and provisioned_concurrency ({self.provisioned_concurrency}) cannot both be "
                "on: Lambda does not allow provisioned concurrency on a SnapStart function; set "
                "snapstart: false to keep provisioned concurrency, or provisioned_concurrency: 0"
            )
        return self


class CanaryPolicy(_Strict):
    weight: int = Field(default=10, ge=1, le=99, description="percent of prod traffic the new version takes")
    minutes: float = Field(default=10, gt=0, description="how long the alarms must stay quiet")
    poll_seconds: float = Field(default=15, gt=0, description="how often the alarms are read")


class ReleaseConfig(_Strict):
    staging_alias: str = "staging"
    production_alias: str = "prod"
    max_quality_drop: float = Field(
        default=1.0, ge=0, description="accuracy points (labels), or percent of prod's RMSE (targets)"
    )
    max_latency_ratio: float = Field(default=1.5, gt=0, description="candidate p95 / prod p95")
    batch_rows: int = Field(default=64, ge=1, description="evaluation rows per request")
    wait_seconds: float = Field(default=120, gt=0, description="how long staging may take to serve it")
    canary: CanaryPolicy | None = None
    alarm_prefix: str | None = Field(
        default=None, description="alarms watched in a canary (default: stack_name)"
    )


class MaasConfig(_Strict):
    stack_name: str = Field(default="maas", pattern=r"^[A-Za-z][A-Za-z0-9-]{0,127}$")
    region: str = "us-east-1"
    account: str | None = Field(default=None, description="pin the stack to an account (optional)")
    api: ApiConfig = Field(default_factory=ApiConfig)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    log_retention_days: int = Field(default=30, ge=1)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    concurrency: ConcurrencyConfig = Field(default_factory=ConcurrencyConfig)
    release: ReleaseConfig = Field(default_factory=ReleaseConfig)
    models: list[ModelDeployment] = Field(min_length=1)

    @field_validator("models")
    @classmethod
    def _unique_names(cls, models: list[ModelDeployment]) -> list[ModelDeployment]:
        names = [model.name for model in models]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"model names must be unique, repeated: {', '.join(duplicates)}")
        return models

    @model_validator(mode="after")
    def _provisioned_within_default_reserved(self) -> MaasConfig:
        for model in self.models:
            if model.reserved_concurrency is None and model.provisioned_concurrency:
                reserved = self.concurrency.predict
                if reserved is not None and model.provisioned_concurrency > reserved:
                    raise ValueError(
                        f"model '{model.name}': provisioned_concurrency {model.provisioned_concurrency} "
                        f"exceeds the reserved concurrency of {reserved} (concurrency.predict); raise "
                        "one or set the model's reserved_concurrency"
                    )
        return self

    def reserved_concurrency(self, model: ModelDeployment) -> int | None:
        """The reserved concurrency of `model`'s prediction function."""
        if model.reserved_concurrency is not None:
            return model.reserved_concurrency
        return self.concurrency.predict


def load_config(path: Path | str = DEFAULT_CONFIG) -> MaasConfig:
    """Read and check `maas.yaml`; raises ConfigError naming the file, the field and the problem."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror} (write one with `maas init`)") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping (stack_name, models, ...), not {type(data).__name__}")
    try:
        return MaasConfig.model_validate(data)
    except ValidationError as error:
        problems = [
            f"{'.'.join(str(part) for part in detail['loc']) or '(top level)'}: {detail['msg']}"
            for detail in error.errors(include_url=False)
        ]
        raise ConfigError(f"{path} has {len(problems)} problem(s):\n  " + "\n  ".join(problems)) from None


EXAMPLE = """\
# maas.yaml: what `cdk deploy` (or `maas deploy`) provisions. Every key is optional
# unless marked; unknown keys are refused, so a typo cannot pass silently.

stack_name: maas            # CloudFormation stack name
region: us-east-1           # where the stack goes
# account: "123456789012"   # pin to one account (default: the CLI's credentials decide)

api:
  auth: iam                 # iam (SigV4, the default) | jwt
  # jwt:                    # required when auth is jwt
  #   issuer: https://cognito-idp.us-east-1.amazonaws.com/us-east-1_example
  #   audience: [my-client-id]
  throttling:
    rate_limit: 100         # steady requests per second, whole API
    burst_limit: 200
  cors_origins: []          # empty: CORS off

registry:
  deletion_protection: true # the DynamoDB table refuses deletion
  replica_regions: []       # e.g. [eu-west-1] for a global table
  max_upload_mb: 400        # the largest artifact the registry API takes from a presigned upload

log_retention_days: 30

monitoring:
  # alarm_email: oncall@example.com   # subscribed to the alarms' SNS topic
  latency_p99_ms: 1000      # alarm when a model's p99 inference latency passes this
  error_rate_percent: 5     # alarm when more than this share of API requests are 5xx

release:                    # `maas release`: staging, gate, optional canary, prod
  staging_alias: staging
  production_alias: prod
  max_quality_drop: 1.0     # accuracy points (labels) or % of prod's RMSE (targets) allowed
  max_latency_ratio: 1.5    # candidate p95 / prod p95, through the deployed API
  # canary: {weight: 10, minutes: 10}   # then prod, unless an alarm fires (rolled back)
  # alarm_prefix: maas      # the alarms watched (default: stack_name)

models:                     # required: one prediction function per entry
  - name: digits            # required: the registry name clients use
    runtime: onnx           # required: onnx | tflite
    alias: prod             # the alias this function serves by default
    memory_mb: 1024         # 128 - 10240
    architecture: arm64     # arm64 (cheaper per ms) | x86_64
    timeout_seconds: 30     # API Gateway waits at most 30 s
    # reserved_concurrency: 10
    provisioned_concurrency: 0   # needs snapstart: false (Lambda allows one or the other)
    snapstart: true         # restore from a snapshot taken after the model loaded (Python 3.12+)
    batch: false            # true: infer on every file uploaded to inputs/<name>/
  - name: digits-tflite
    runtime: tflite
  - name: digits-large      # a larger model on a SageMaker GPU endpoint running Triton
    runtime: onnx
    target: sagemaker       # lambda (default) | sagemaker
    sagemaker:
      version: 1            # the registered version the endpoint serves first
      instance_type: ml.g5.xlarge
      initial_instance_count: 1
      # image_uri: ...      # default: SageMaker's Triton image for the region
      # canary: {version: 2, weight: 10}
      # serverless: {memory_mb: 4096, max_concurrency: 5}   # CPU, no GPU
      data_capture: {enabled: true, sampling_percent: 10}
      autoscaling: {min_instances: 1, max_instances: 4, target_invocations_per_instance: 100}
"""
