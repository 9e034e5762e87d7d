"""The Kubernetes deployment (deploy/, .dockerignore, docs/deploy.md): what can be checked without a
cluster, Helm or a Docker engine.

- every dagster.yaml variant in the repo passes Dagster's own instance-config validation, and each
  configurable class in it (storage, run coordinator, run launcher, ...) accepts its config block;
- the run queue Dagster derives from each variant and from the Helm values is the same;
- the Helm values render (emulating the official chart's instance templates) to deploy/dagster-k8s.yaml;
- no credential is written anywhere in deploy/: secrets come from Kubernetes Secrets;
- the image's entrypoint module and code location match pyproject's [tool.dagster];
- the image's build context (deploy/Dockerfile's COPY set, filtered by .dockerignore) builds the package,
  and the installed layout imports the definitions and finds the SQL migrations where the Dockerfile's
  TENANTATLAS_SQL_DIR says.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster._config import validate_config
from dagster._core.instance.config import ConcurrencyConfig, dagster_instance_config
from dagster._core.run_coordinator.queued_run_coordinator import QueuedRunCoordinator
from dagster._serdes.config_class import ConfigurableClassData, class_from_code_pointer
from dagster._utils import convert_dagster_submodule_name

from tenantatlas_pipelines.defs.instance import TENANT_PARTITION_TAG

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
VALUES = DEPLOY / "helm" / "values.yaml"
K8S_INSTANCE = DEPLOY / "dagster-k8s.yaml"
PROJECT_INSTANCE = ROOT / "dagster.yaml"
MIGRATE_JOB = DEPLOY / "k8s" / "migrate-job.yaml"
K8S_REQUIREMENTS = DEPLOY / "requirements-k8s.txt"

# deploy/dagster-k8s.yaml is the chart's rendering for this release name and namespace (docs/deploy.md).
RELEASE = "dagster"
NAMESPACE = "tenantatlas"
# The three variables the brief requires from Kubernetes Secrets.
SECRET_ENV = ("TENANTATLAS_DATABASE_URL", "TENANTATLAS_CLIENT_ID", "TENANTATLAS_CLIENT_SECRET")

# Config keys of dagster_k8s.K8sRunLauncher in dagster-k8s 0.29.27
# (DagsterK8sJobConfig.config_type_run_launcher()); used when dagster-k8s is not installed here, and
# compared with the real schema when it is.
K8S_RUN_LAUNCHER_KEYS = frozenset(
    {
        "dagster_home", "env_config_maps", "env_secrets", "env_vars", "fail_pod_on_run_failure",
        "image_pull_policy", "image_pull_secrets", "instance_config_map", "job_image", "job_namespace",
        "k8s_api_ssl_ca_cert_file", "kubeconfig_file", "labels", "load_incluster_config",
        "only_allow_user_defined_env_vars", "only_allow_user_defined_k8s_config_fields",
        "postgres_password_secret", "resources", "run_k8s_config", "scheduler_name", "security_context",
        "service_account_name", "volume_mounts", "volumes",
    }
)  # fmt: skip
K8S_RUN_LAUNCHER_REQUIRED = frozenset({"instance_config_map"})

CONFIGURABLE_SECTIONS = (
    "scheduler", "schedule_storage", "run_storage", "event_log_storage", "run_launcher",
    "run_coordinator", "compute_logs", "local_artifact_storage",
)  # fmt: skip


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def instance_yaml_files() -> list[Path]:
    """Every dagster.yaml variant of the repo: dagster*.yaml at the root and anywhere under deploy/."""
    return sorted({*ROOT.glob("dagster*.yaml"), *DEPLOY.rglob("dagster*.yaml")})


def values() -> dict[str, Any]:
    return load_yaml(VALUES)


def user_deployment() -> dict[str, Any]:
    deployments = values()["dagster-user-deployments"]["deployments"]
    assert len(deployments) == 1, "one code location: tenantatlas"
    return deployments[0]


# --- (a) every instance configuration loads ------------------------------------------------------


def test_the_instance_yaml_variants_are_the_expected_ones() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in instance_yaml_files()}
    assert {"dagster.yaml", "deploy/dagster-k8s.yaml"} <= names


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module.split(".")[0]) is not None
    except (ImportError, ValueError):
        return False


@pytest.mark.parametrize("path", instance_yaml_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_instance_yaml_passes_dagsters_schema_and_each_class_accepts_its_config(path: Path) -> None:
    # Dagster's own loader: the same schema and cross-checks DagsterInstance.from_config applies.
    config, custom_class = dagster_instance_config(str(path.parent), path.name)
    assert custom_class is None
    for section in CONFIGURABLE_SECTIONS:
        block = config.get(section)
        if block is None:
            continue
        module = convert_dagster_submodule_name(block["module"], "private")
        if not _importable(module):
            # dagster_k8s is not a dependency of the laptop install; test_k8s_run_launcher_config covers it.
            assert (module, block["class"]) == ("dagster_k8s", "K8sRunLauncher"), f"{section}: {module}"
            continue
        klass = class_from_code_pointer(module, block["class"])
        result = validate_config(klass.config_type(), block.get("config") or {})
        assert result.success, f"{path.name} {section}: {[e.message for e in result.errors or []]}"


def test_k8s_run_launcher_config_matches_dagster_k8s() -> None:
    block = load_yaml(K8S_INSTANCE)["run_launcher"]
    assert (block["module"], block["class"]) == ("dagster_k8s", "K8sRunLauncher")
    cfg = block["config"]
    assert set(cfg) <= K8S_RUN_LAUNCHER_KEYS, set(cfg) - K8S_RUN_LAUNCHER_KEYS
    assert set(cfg) >= K8S_RUN_LAUNCHER_REQUIRED
    assert cfg["load_incluster_config"] is True
    assert cfg["postgres_password_secret"] == values()["global"]["postgresqlSecretName"]
    if _importable("dagster_k8s"):  # the real schema, when the k8s extra is installed
        from dagster_k8s import K8sRunLauncher

        assert set(K8sRunLauncher.config_type()) == K8S_RUN_LAUNCHER_KEYS
        result = validate_config(K8sRunLauncher.config_type(), cfg)
        assert result.success, [e.message for e in result.errors or []]


def test_dagster_k8s_is_pinned_with_the_other_dagster_libraries() -> None:
    deps = pyproject()["project"]["dependencies"]
    postgres_pin = next(d.split("==")[1] for d in deps if d.startswith("dagster-postgres=="))
    pins = [
        line.strip()
        for line in K8S_REQUIREMENTS.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert pins == [f"dagster-k8s=={postgres_pin}"]


def test_chart_version_in_the_instructions_is_the_projects_dagster_version() -> None:
    # The chart's webserver/daemon images and our image must run the same Dagster.
    deps = pyproject()["project"]["dependencies"]
    dagster_pin = next(d.split("==")[1] for d in deps if d.startswith("dagster=="))
    for doc in (ROOT / "docs" / "deploy.md", VALUES):
        versions = set(re.findall(r"dagster/dagster --version (\d[\w.-]*)", doc.read_text()))
        assert versions == {dagster_pin}, f"{doc.name}: {versions}"


# --- the run queue: same limits everywhere --------------------------------------------------------


def effective_run_queue(instance_config: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
    """The run queue Dagster derives from an instance config (run_coordinator config + concurrency.runs)."""
    block = instance_config["run_coordinator"]
    assert block["class"] == "QueuedRunCoordinator"
    coordinator = ConfigurableClassData(
        block["module"], block["class"], yaml.safe_dump(block.get("config") or {})
    ).rehydrate(QueuedRunCoordinator)
    queue = ConcurrencyConfig.from_concurrency_settings(
        instance_config.get("concurrency") or {}, coordinator.get_run_queue_config()
    ).run_queue_config
    assert queue is not None
    return queue.max_concurrent_runs, [dict(limit) for limit in queue.tag_concurrency_limits]


def project_run_queue() -> tuple[int, list[dict[str, Any]]]:
    return effective_run_queue(load_yaml(PROJECT_INSTANCE))


def test_project_run_queue_has_the_per_tenant_limit() -> None:
    # Guards the comparisons below from comparing two empty queues.
    max_runs, limits = project_run_queue()
    assert max_runs > 0
    assert {"key": TENANT_PARTITION_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in limits


@pytest.mark.parametrize("path", instance_yaml_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_instance_yaml_has_the_projects_run_queue(path: Path) -> None:
    assert effective_run_queue(load_yaml(path)) == project_run_queue()


def test_helm_values_have_the_projects_run_queue() -> None:
    daemon = values()["dagsterDaemon"]
    assert daemon["enabled"] is True
    coordinator = daemon["runCoordinator"]
    assert coordinator["enabled"] is True and coordinator["type"] == "QueuedRunCoordinator"
    rendered = {"run_coordinator": render_run_coordinator(values())}
    assert effective_run_queue(rendered) == project_run_queue()


def test_run_monitoring_matches_the_project() -> None:
    project = load_yaml(PROJECT_INSTANCE)["run_monitoring"]
    cluster = load_yaml(K8S_INSTANCE)["run_monitoring"]
    assert {k: cluster[k] for k in project} == project
    # A dead run pod is failed (freeing its queue slot), never resumed into a second sync.
    assert cluster["max_resume_run_attempts"] == 0


# --- the Helm values render to deploy/dagster-k8s.yaml ---------------------------------------------
# A transcription of the instance templates of the official chart (templates/configmap-instance.yaml and
# templates/helpers/instance/*.tpl) for the options these values use. Values the transcription does not
# cover fail the test instead of being ignored.


def _camel_to_snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _postgres_db(v: dict[str, Any]) -> dict[str, Any]:
    pg = v["postgresql"]
    assert pg["enabled"] is False, "external PostgreSQL only"
    db = {
        "username": pg["postgresqlUsername"],
        "password": {"env": "DAGSTER_PG_PASSWORD"},
        "hostname": pg["postgresqlHost"],
        "db_name": pg["postgresqlDatabase"],
        "port": pg["service"]["port"],
        "params": pg.get("postgresqlParams") or {},
    }
    if pg.get("postgresqlScheme"):
        db["scheme"] = pg["postgresqlScheme"]
    return {"postgres_db": db}


def render_run_coordinator(v: dict[str, Any]) -> dict[str, Any]:
    qrc = v["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    known = {
        "maxConcurrentRuns",
        "tagConcurrencyLimits",
        "dequeueIntervalSeconds",
        "dequeueUseThreads",
        "dequeueNumWorkers",
    }
    assert set(qrc) <= known, set(qrc)
    assert not (v.get("concurrency") or {}).get("enabled"), "limits live in the run coordinator config"
    config: dict[str, Any] = {"max_concurrent_runs": qrc.get("maxConcurrentRuns", -1)}
    if qrc.get("tagConcurrencyLimits"):
        config["tag_concurrency_limits"] = qrc["tagConcurrencyLimits"]
    # The chart's _run-coordinator.tpl writes each of these only when it is set (and truthy).
    for key in ("dequeueIntervalSeconds", "dequeueUseThreads", "dequeueNumWorkers"):
        if qrc.get(key):
            config[_camel_to_snake(key)] = qrc[key]
    return {"module": "dagster.core.run_coordinator", "class": "QueuedRunCoordinator", "config": config}


def render_run_launcher(v: dict[str, Any]) -> dict[str, Any]:
    assert v["runLauncher"]["type"] == "K8sRunLauncher"
    k8s = v["runLauncher"]["config"]["k8sRunLauncher"]
    passthrough = ("volumeMounts", "volumes", "labels", "resources", "securityContext", "envVars")
    supported = {"jobNamespace", "loadInclusterConfig", "kubeconfigFile", "imagePullPolicy", "envConfigMaps",
                 "envSecrets", "failPodOnRunFailure", "schedulerName", *passthrough}  # fmt: skip
    assert set(k8s) <= supported, set(k8s) - supported
    config: dict[str, Any] = {"load_incluster_config": k8s["loadInclusterConfig"]}
    if k8s.get("kubeconfigFile"):
        config["kubeconfig_file"] = k8s["kubeconfigFile"]
    config["job_namespace"] = k8s.get("jobNamespace") or NAMESPACE
    config["image_pull_policy"] = k8s["imagePullPolicy"]
    if v.get("imagePullSecrets"):
        config["image_pull_secrets"] = v["imagePullSecrets"]
    config["service_account_name"] = (v.get("serviceAccount") or {}).get("name") or RELEASE
    config["dagster_home"] = (v.get("global") or {}).get("dagsterHome") or "/opt/dagster/dagster_home"
    config["instance_config_map"] = f"{RELEASE}-instance"
    config["postgres_password_secret"] = v["global"]["postgresqlSecretName"]
    if k8s.get("envConfigMaps"):
        config["env_config_maps"] = [c["name"] for c in k8s["envConfigMaps"]]
    if k8s.get("envSecrets"):
        config["env_secrets"] = [s["name"] for s in k8s["envSecrets"]]
    for key in passthrough:
        if k8s.get(key):
            config[_camel_to_snake(key)] = k8s[key]
    if k8s.get("failPodOnRunFailure"):
        config["fail_pod_on_run_failure"] = True
    if k8s.get("schedulerName"):
        config["scheduler_name"] = k8s["schedulerName"]
    return {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": config}


def render_instance(v: dict[str, Any]) -> dict[str, Any]:
    daemon = v["dagsterDaemon"]
    assert (v.get("scheduler") or {}).get("type", "DagsterDaemonScheduler") == "DagsterDaemonScheduler"
    assert v["computeLogManager"]["type"] == "NoOpComputeLogManager"
    assert not (v.get("retention") or {}).get("enabled")
    pg = _postgres_db(v)
    out: dict[str, Any] = {
        "scheduler": {"module": "dagster.core.scheduler", "class": "DagsterDaemonScheduler"},
        "schedule_storage": {
            "module": "dagster_postgres.schedule_storage", "class": "PostgresScheduleStorage", "config": pg
        },
        "run_launcher": render_run_launcher(v),
        "run_storage": {
            "module": "dagster_postgres.run_storage", "class": "PostgresRunStorage", "config": pg
        },
        "event_log_storage": {
            "module": "dagster_postgres.event_log", "class": "PostgresEventLogStorage", "config": pg
        },
        "compute_logs": {
            "module": "dagster.core.storage.noop_compute_log_manager", "class": "NoOpComputeLogManager"
        },
    }  # fmt: skip
    if daemon["enabled"] and daemon["runCoordinator"]["enabled"]:
        out["run_coordinator"] = render_run_coordinator(v)
    if v.get("pythonLogs"):
        logs = v["pythonLogs"]
        out["python_logs"] = {
            _camel_to_snake(k): logs[k]
            for k in ("pythonLogLevel", "dagsterHandlerConfig", "managedPythonLoggers")
            if logs.get(k)
        }
    monitoring = daemon.get("runMonitoring") or {}
    if daemon["enabled"] and monitoring.get("enabled"):
        rendered = {
            "enabled": True,
            "start_timeout_seconds": monitoring["startTimeoutSeconds"],
            "poll_interval_seconds": monitoring["pollIntervalSeconds"],
            "free_slots_after_run_end_seconds": monitoring["freeSlotsAfterRunEndSeconds"],
        }
        for key in ("cancelTimeoutSeconds", "maxResumeRunAttempts"):
            if monitoring.get(key) is not None:
                rendered[_camel_to_snake(key)] = monitoring[key]
        out["run_monitoring"] = rendered
    retries = daemon.get("runRetries") or {}
    if daemon["enabled"] and retries.get("enabled"):
        out["run_retries"] = {
            "enabled": True,
            **({"max_retries": retries["maxRetries"]} if retries.get("maxRetries") else {}),
        }
    for kind in ("sensors", "schedules"):
        threads = daemon.get(kind) or {}
        if daemon["enabled"] and threads.get("useThreads"):
            out[kind] = {"use_threads": True} | {
                _camel_to_snake(k): threads[k] for k in ("numWorkers", "numSubmitWorkers") if threads.get(k)
            }
    out["telemetry"] = {"enabled": v["telemetry"]["enabled"]}
    out.update(v.get("additionalInstanceConfig") or {})
    return out


def _normalized(config: dict[str, Any]) -> dict[str, Any]:
    """Module paths in Dagster's private form (the chart writes dagster.core.*, Dagster maps it)."""
    out = {}
    for key, block in config.items():
        if isinstance(block, dict) and "module" in block:
            block = {**block, "module": convert_dagster_submodule_name(block["module"], "private")}
        out[key] = block
    return out


def test_helm_values_render_to_the_k8s_instance_yaml() -> None:
    rendered = _normalized(render_instance(values()))
    written = _normalized(load_yaml(K8S_INSTANCE))
    for key in sorted(set(rendered) | set(written)):
        assert rendered.get(key) == written.get(key), f"{key}: values render {rendered.get(key)!r}"


def test_rendered_instance_passes_dagsters_schema(tmp_path: Path) -> None:
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(render_instance(values())))
    dagster_instance_config(str(tmp_path))


def test_dagster_storage_uses_the_psycopg2_dialect() -> None:
    # SQLAlchemy 2.1 in the image maps plain postgresql:// to psycopg 3, which dagster-postgres rejects.
    assert values()["postgresql"]["postgresqlScheme"] == "postgresql+psycopg2"
    for section in ("run_storage", "event_log_storage", "schedule_storage"):
        assert load_yaml(K8S_INSTANCE)[section]["config"]["postgres_db"]["scheme"] == "postgresql+psycopg2"


# --- secrets come from Kubernetes Secrets ----------------------------------------------------------

_CREDENTIAL_KEY = re.compile(r"^(password|postgresqlpassword|clientsecret|secret|secretkey|token|apikey)$")
_SECRETISH_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|DATABASE_URL|CLIENT_ID|CERTIFICATE|API_KEY", re.I)
_URL_WITH_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@", re.I)
_GUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I)
_TOKENISH = re.compile(r"^[A-Za-z0-9+=_~.\-]{20,}$")


def _looks_like_secret(text: str) -> bool:
    if _URL_WITH_PASSWORD.search(text) or _GUID.search(text) or "-----BEGIN" in text:
        return True
    # A long unbroken mix of upper case, lower case and digits: a client secret, a key, a token.
    return bool(
        _TOKENISH.match(text)
        and re.search(r"[A-Z]", text)
        and re.search(r"[a-z]", text)
        and re.search(r"\d", text)
    )


def _walk(node: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield f"{path}.{key}", key, value
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield f"{path}[{i}]", i, value
            yield from _walk(value, f"{path}[{i}]")


def literal_secrets(doc: Any) -> list[str]:
    """Where a document writes a credential instead of referencing a Secret."""
    problems = []
    for where, key, value in _walk(doc):
        if isinstance(value, str) and _looks_like_secret(value):
            problems.append(f"{where}: value looks like a credential")
        credential_key = isinstance(key, str) and _CREDENTIAL_KEY.match(re.sub(r"[_-]", "", key.lower()))
        if credential_key and isinstance(value, str | int | float) and str(value) != "":
            problems.append(f"{where}: literal credential")
        # A container env entry with a literal value for a credential-like variable.
        env_name = value.get("name") if isinstance(value, dict) and "value" in value else None
        if isinstance(env_name, str) and _SECRETISH_NAME.search(env_name):
            problems.append(f"{where}: {env_name} must come from a Secret (valueFrom)")
    return problems


def deploy_yaml_documents() -> list[tuple[str, Any]]:
    docs = []
    for path in sorted({PROJECT_INSTANCE, *DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")}):
        for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
            docs.append((f"{path.relative_to(ROOT)}#{i}", doc))
    return docs


@pytest.mark.parametrize(
    "doc",
    [
        {"postgresql": {"postgresqlPassword": "hunter2"}},
        {"env": [{"name": "TENANTATLAS_CLIENT_SECRET", "value": "x"}]},
        {"env": {"TENANTATLAS_DATABASE_URL": "postgresql://ta:S3cret@db:5432/tenantatlas"}},
        {"client": "Xy7~Q2m8R1kP9vL3nB6tZ0wE4sAa"},
        {"tenant": "0f8fad5b-d9cb-469f-a165-70867728950e"},
        {"storage": {"postgres_db": {"password": "pw"}}},
    ],
)
def test_the_secret_check_catches_literal_credentials(doc: Any) -> None:
    assert literal_secrets(doc)


@pytest.mark.parametrize("name_doc", deploy_yaml_documents(), ids=lambda nd: nd[0])
def test_no_literal_credentials_in_deploy_files(name_doc: tuple[str, Any]) -> None:
    _, doc = name_doc
    assert literal_secrets(doc) == []


def test_no_literal_credentials_in_the_image() -> None:
    env = Dockerfile.parse(DOCKERFILE).final.env
    assert [k for k, v in env.items() if _looks_like_secret(v) or _SECRETISH_NAME.search(k)] == []


def _secret_refs(env: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    refs = {}
    for entry in env:
        ref = (entry.get("valueFrom") or {}).get("secretKeyRef")
        if ref:
            assert "value" not in entry
            refs[entry["name"]] = (ref["name"], ref["key"])
    return refs


def test_code_location_and_run_pods_get_credentials_from_a_secret() -> None:
    dep = user_deployment()
    refs = _secret_refs(dep["env"])
    assert set(SECRET_ENV) <= set(refs), f"missing secretKeyRef for {set(SECRET_ENV) - set(refs)}"
    assert len({secret for secret, _ in refs.values()}) == 1  # one Secret, tenantatlas-secrets
    # Run pods inherit the code location's env (container context) only with this on.
    assert dep["includeConfigInLaunchedRuns"]["enabled"] is True
    # Dagster's storage password: from the chart's Secret, never from the values.
    assert values()["generatePostgresqlPasswordSecret"] is False
    assert values()["global"]["postgresqlSecretName"]
    assert values()["postgresql"]["postgresqlPassword"] == ""


def test_migrate_job_uses_the_image_command_and_the_same_secret() -> None:
    job = load_yaml(MIGRATE_JOB)
    assert job["kind"] == "Job"
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["tenantatlas", "db", "migrate"] and "command" not in container
    assert (
        _secret_refs(container["env"])["TENANTATLAS_DATABASE_URL"]
        == _secret_refs(user_deployment()["env"])["TENANTATLAS_DATABASE_URL"]
    )
    assert pyproject()["project"]["scripts"]["tenantatlas"] == "tenantatlas_pipelines.cli:main"


# --- the image: Dockerfile and build context -------------------------------------------------------


@dataclass
class Stage:
    name: str | None
    base: str
    root: Path | None = None
    workdir: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    copies: list[tuple[list[str], str, str, str | None]] = field(default_factory=list)  # srcs, dest, wd, from
    runs: list[tuple[str, str]] = field(default_factory=list)  # (command, workdir)
    user: str | None = None
    cmd: list[str] | None = None
    entrypoint: str | None = None
    expose: list[str] = field(default_factory=list)


@dataclass
class Dockerfile:
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)

    @staticmethod
    def instructions(text: str) -> Iterator[tuple[str, str]]:
        logical = ""
        for raw in text.splitlines():
            line = raw.strip()
            if not logical and (not line or line.startswith("#")):
                continue
            if logical and line.startswith("#"):
                continue  # comment lines inside a continuation are dropped by Docker
            if line.endswith("\\"):
                logical += line[:-1] + " "
                continue
            logical += line
            keyword, _, rest = logical.strip().partition(" ")
            yield keyword.upper(), rest.strip()
            logical = ""

    @classmethod
    def parse(cls, path: Path) -> Dockerfile:
        stages: list[Stage] = []
        for keyword, rest in cls.instructions(path.read_text()):
            if keyword == "FROM":
                parts = rest.split()
                name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
                stages.append(Stage(name=name, base=parts[0]))
                continue
            stage = stages[-1]
            if keyword == "WORKDIR":
                stage.workdir = os.path.normpath(os.path.join(stage.workdir, rest))
            elif keyword == "ENV":
                for token in shlex.split(rest):
                    key, _, value = token.partition("=")
                    stage.env[key] = value
            elif keyword == "COPY":
                args = shlex.split(rest)
                flags = [a for a in args if a.startswith("--")]
                paths = [a for a in args if not a.startswith("--")]
                from_stage = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
                stage.copies.append((paths[:-1], paths[-1], stage.workdir, from_stage))
            elif keyword == "RUN":
                stage.runs.append((rest, stage.workdir))
            elif keyword == "USER":
                stage.user = rest
            elif keyword == "CMD":
                stage.cmd = json.loads(rest)
            elif keyword == "ENTRYPOINT":
                stage.entrypoint = rest
            elif keyword == "EXPOSE":
                stage.expose += rest.split()
        return cls(stages)


class DockerIgnore:
    """.dockerignore with Docker's semantics: patterns in order, `!` re-includes, the last match wins, and
    a pattern matching a directory matches everything below it; `*` and `?` stay within one path
    element, `**` spans any number of them."""

    def __init__(self, text: str) -> None:
        self.rules: list[tuple[re.Pattern[str], bool]] = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            exclude = not line.startswith("!")
            pattern = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
            self.rules.append((re.compile(self._regex(pattern)), exclude))

    @staticmethod
    def _regex(pattern: str) -> str:
        out, i = "^", 0
        while i < len(pattern):
            c = pattern[i]
            if pattern.startswith("**/", i):
                out, i = out + "(?:.*/)?", i + 3
                continue
            if pattern.startswith("**", i):
                out, i = out + ".*", i + 2
                continue
            if c == "*":
                out += "[^/]*"
            elif c == "?":
                out += "[^/]"
            elif c == "[":
                end = pattern.index("]", i)
                out, i = out + pattern[i : end + 1], end + 1
                continue
            elif c == "\\" and i + 1 < len(pattern):
                out, i = out + re.escape(pattern[i + 1]), i + 2
                continue
            else:
                out += re.escape(c)
            i += 1
        return out + "$"

    def ignored(self, rel_path: str) -> bool:
        parts = rel_path.split("/")
        candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        ignored = False
        for regex, exclude in self.rules:
            if any(regex.match(c) for c in candidates):
                ignored = exclude
        return ignored


def dockerignore() -> DockerIgnore:
    return DockerIgnore(DOCKERIGNORE.read_text())


@pytest.mark.parametrize(
    ("path", "sent"),
    [
        ("pyproject.toml", True),
        ("tenantatlas_pipelines/definitions.py", True),
        ("tenantatlas_pipelines/defs/assets.py", True),
        ("sql/001_core.sql", True),
        ("deploy/requirements-k8s.txt", True),
        ("tenantatlas_pipelines/__pycache__/cli.cpython-311.pyc", False),
        ("tenantatlas_pipelines.egg-info/PKG-INFO", False),
        (".tenantatlas/pgdata/postgresql.conf", False),
        (".env", False),
        (".venv/bin/python", False),
        (".git/config", False),
        ("tests/test_deploy.py", False),
        ("deploy/helm/values.yaml", False),
    ],
)
def test_dockerignore_sends_only_what_the_image_needs(path: str, sent: bool) -> None:
    assert dockerignore().ignored(path) is not sent


def test_dockerignore_matcher_follows_docker_semantics() -> None:
    rules = DockerIgnore("*.md\n!README.md\n**/tmp\ndocs/*.txt\n")
    assert rules.ignored("CHANGES.md") and not rules.ignored("README.md")
    assert not rules.ignored("docs/CHANGES.md")  # `*` does not cross `/`
    assert rules.ignored("a/b/tmp/x") and rules.ignored("tmp/x")  # `**/` spans zero or more elements
    assert rules.ignored("docs/a.txt") and not rules.ignored("docs/sub/a.txt")


def test_dockerfile_follows_the_charts_user_code_convention() -> None:
    dockerfile = Dockerfile.parse(DOCKERFILE)
    assert all(s.base == "python:3.11-slim" for s in dockerfile.stages)
    final = dockerfile.final
    # The chart and the K8sRunLauncher pass the command as container args: an ENTRYPOINT would prefix them.
    assert final.entrypoint is None
    module = pyproject()["tool"]["dagster"]["module_name"]
    assert final.cmd is not None and final.cmd[-2:] == ["-m", module]
    assert final.cmd[:3] == ["dagster", "code-server", "start"] or final.cmd[:3] == ["dagster", "api", "grpc"]
    port = final.cmd[final.cmd.index("-p") + 1]
    assert final.expose == [port] and int(port) == user_deployment()["port"]
    # Non-root, with a numeric uid Kubernetes can verify against runAsNonRoot, the same as in the values.
    assert final.user is not None
    uid = final.user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0
    assert user_deployment()["podSecurityContext"]["runAsUser"] == int(uid)
    assert user_deployment()["podSecurityContext"]["runAsNonRoot"] is True
    assert final.env["DAGSTER_HOME"] == (values().get("global") or {}).get(
        "dagsterHome", "/opt/dagster/dagster_home"
    )


def test_chart_deployment_runs_the_projects_code_location() -> None:
    tool = pyproject()["tool"]["dagster"]
    dep = user_deployment()
    assert dep["name"] == tool["code_location_name"]  # the chart names the location after the deployment
    args = dep.get("codeServerArgs") or dep["dagsterApiGrpcArgs"]
    assert args == ["-m", tool["module_name"]]
    assert values()["dagster-user-deployments"]["enabled"] is True
    assert values()["runLauncher"]["type"] == "K8sRunLauncher"


def emulate_build(tmp_path: Path) -> tuple[Dockerfile, dict[str, Path]]:
    """Lay out each stage's filesystem as the Dockerfile's COPY instructions would, from the build context
    filtered by .dockerignore; returns the parsed Dockerfile and each stage's root directory."""
    dockerfile = Dockerfile.parse(DOCKERFILE)
    ignore = dockerignore()
    roots: dict[str, Path] = {}
    for n, stage in enumerate(dockerfile.stages):
        root = tmp_path / f"stage{n}"
        root.mkdir()
        roots[stage.name or f"stage{n}"] = root
        stage.root = root
        for sources, dest, workdir, from_stage in stage.copies:
            if from_stage is not None:
                continue  # between stages; the installed venv is emulated by the package build below
            dest_abs = os.path.normpath(os.path.join(workdir, dest))
            for source in sources:
                src = ROOT / source
                assert src.exists(), f"COPY {source}: not in the build context"
                if src.is_dir():
                    files = [p for p in src.rglob("*") if p.is_file()]
                    pairs = [(p, Path(dest_abs) / p.relative_to(src)) for p in files]
                else:
                    into_dir = dest.endswith("/") or len(sources) > 1
                    pairs = [(src, Path(dest_abs) / src.name if into_dir else Path(dest_abs))]
                sent = [
                    (p, target) for p, target in pairs if not ignore.ignored(p.relative_to(ROOT).as_posix())
                ]
                assert sent, f"COPY {source}: everything is excluded by .dockerignore"
                for p, target in sent:
                    out = root / str(target).lstrip("/")
                    out.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(p, out)
    return dockerfile, roots


def _can_build_wheels() -> bool:
    try:
        from setuptools.command.bdist_wheel import bdist_wheel  # noqa: F401  setuptools >= 70.1

        return True
    except ImportError:
        return importlib.util.find_spec("wheel") is not None


def install_package(source: Path, site: Path, work: Path) -> tuple[set[str], str]:
    """`pip install .` of the copied sources into `site`: returns the installed files and the
    console-scripts section of the metadata.

    A real wheel (pip wheel --no-deps --no-build-isolation) when this environment's setuptools can build
    one; otherwise setuptools' own build_py + egg_info from the same pyproject configuration, which lays
    down the files a pure-Python wheel installs (setuptools < 70.1 needs the `wheel` package for
    bdist_wheel, and the test must not download a newer one).
    """
    if _can_build_wheels():
        out = work / "wheel"
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-cache-dir",
             "--quiet", "-w", str(out), str(source)],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        (wheel,) = out.glob("*.whl")
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(site)
        entry_points = next(site.glob("*.dist-info/entry_points.txt")).read_text()
    else:
        egg = work / "egg"
        egg.mkdir()
        subprocess.run(
            [sys.executable, "-c", "from setuptools import setup; setup()", "--quiet",
             "egg_info", "--egg-base", str(egg), "build_py", "--build-lib", str(site)],
            cwd=source, check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        entry_points = next(egg.glob("*.egg-info/entry_points.txt")).read_text()
    files = {p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file()}
    return files, entry_points


def test_image_build_context_installs_and_imports_the_project(tmp_path: Path) -> None:
    dockerfile, _ = emulate_build(tmp_path)
    # The stage that runs `pip install .`, and where: the package is built from that directory.
    build_stage, (command, workdir) = next(
        (s, r) for s in dockerfile.stages for r in s.runs if re.search(r"\bpip install \.(\s|$)", r[0])
    )
    assert build_stage.root is not None
    source = build_stage.root / workdir.lstrip("/")
    assert (source / "pyproject.toml").is_file()
    # ... together with dagster-k8s from the pinned requirements file it copied.
    req = re.search(r"-r\s+(\S+)", command)
    assert req and (source / req.group(1)).read_text() == K8S_REQUIREMENTS.read_text()
    # The runtime stage takes the installed environment from the build stage.
    final = dockerfile.final
    assert any(frm == build_stage.name for *_, frm in final.copies)

    site = tmp_path / "site"
    files, entry_points = install_package(source, site, tmp_path)
    package_sources = {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "tenantatlas_pipelines").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert package_sources <= files, sorted(package_sources - files)[:5]
    assert not any(f.startswith(("tests/", "sql/", "bench/")) for f in files)
    assert re.search(r"^tenantatlas\s*=\s*tenantatlas_pipelines\.cli:main$", entry_points, re.M)

    # The migrations are not in the package: the runtime stage copies them where TENANTATLAS_SQL_DIR says.
    sql_dir = final.env["TENANTATLAS_SQL_DIR"]
    assert final.root is not None
    image_sql = final.root / sql_dir.lstrip("/")
    expected = sorted(p.name for p in (ROOT / "sql").glob("*.sql"))
    assert expected and sorted(p.name for p in image_sql.glob("*.sql")) == expected

    # Import the definitions from the installed layout with the image's TENANTATLAS_SQL_DIR (mapped into
    # the emulated image root); dependencies come from this environment, the package only from `site`.
    probe = (
        "import json, tenantatlas_pipelines as p\n"
        "from tenantatlas_pipelines import config\n"
        "from tenantatlas_pipelines.db.migrate import migration_files\n"
        "from tenantatlas_pipelines.definitions import defs\n"
        "from tenantatlas_pipelines.cli import main\n"
        "keys = sorted(k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys())\n"
        "print(json.dumps({'file': p.__file__, 'sql_dir': str(config.sql_dir()),\n"
        "  'migrations': [f.name for f in migration_files()], 'assets': keys}))\n"
    )
    home = tmp_path / "home"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(site),
        "PYTHONDONTWRITEBYTECODE": "1",
        "TENANTATLAS_SQL_DIR": str(image_sql),
        "TENANTATLAS_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster"),
        "TENANTATLAS_DAGSTER_READ_SELECTIONS": "0",
    }
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(seen["file"]).is_relative_to(site), seen["file"]
    assert seen["sql_dir"] == str(image_sql)
    assert seen["migrations"] == expected
    assert {"inventory_sync", "missing_items"} <= set(seen["assets"])
    # Without TENANTATLAS_SQL_DIR the installed package would look next to site-packages and find nothing:
    # the ENV in the Dockerfile is load-bearing.
    assert not (site / "sql").exists()
