"""The inventory UI on Kubernetes (deploy/k8s/ui.yaml, the shared image): what can be checked without a
cluster, like tests/test_deploy.py does for the code location.

- the Deployment runs the image's `tenantatlas ui` on 0.0.0.0 with a token from the Secret (so the
  command's bind rule accepts it) and the database URL of an analyst-only login from the same Secret;
- the Service, the container port, the probes and the command's --port agree;
- the pod runs as the image's non-root uid with a read-only root filesystem;
- the image carries what the UI reads at run time: its templates and stylesheet inside the installed
  package, and docs/error-codes.md where TENANTATLAS_ERROR_CODES_DOC says.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tenantatlas_pipelines.cli_ui import ui as ui_command
from tenantatlas_pipelines.error_docs import parse
from tenantatlas_pipelines.errors import TenantAtlasError
from tenantatlas_pipelines.ui.security import TOKEN_ENV, check_bind
from tests.test_deploy import (
    DOCKERFILE,
    MIGRATE_JOB,
    ROOT,
    Dockerfile,
    _secret_refs,
    emulate_build,
    install_package,
    load_yaml,
)

UI_MANIFEST = ROOT / "deploy" / "k8s" / "ui.yaml"


def documents() -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(UI_MANIFEST.read_text())}


def container() -> dict[str, Any]:
    return documents()["Deployment"]["spec"]["template"]["spec"]["containers"][0]


def _option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_deployment_runs_tenantatlas_ui_with_the_token_and_an_analyst_login_from_the_secret() -> None:
    c = container()
    args = c["args"]
    assert args[:2] == ["tenantatlas", "ui"] and "command" not in c
    # The arguments parse as the real command's options.
    ctx = ui_command.make_context("ui", list(args[2:]))
    host, port = ctx.params["host"], ctx.params["port"]
    assert host == "0.0.0.0"
    refs = _secret_refs(c["env"])
    assert refs[TOKEN_ENV] == ("tenantatlas-secrets", "TENANTATLAS_UI_TOKEN")
    assert refs["TENANTATLAS_DATABASE_URL"] == ("tenantatlas-secrets", "TENANTATLAS_UI_DATABASE_URL")
    # Same Secret as the migrate job and the code location, but not the migrating owner's URL.
    migrate = _secret_refs(load_yaml(MIGRATE_JOB)["spec"]["template"]["spec"]["containers"][0]["env"])
    assert refs["TENANTATLAS_DATABASE_URL"][0] == migrate["TENANTATLAS_DATABASE_URL"][0]
    assert refs["TENANTATLAS_DATABASE_URL"][1] != migrate["TENANTATLAS_DATABASE_URL"][1]
    # With the token the bind is accepted; without it the command refuses to start.
    check_bind(host, "x" * 32)
    with pytest.raises(TenantAtlasError):
        check_bind(host, None)
    assert port == 8080


def test_ports_probes_and_service_agree() -> None:
    c = container()
    port = int(_option(c["args"], "--port"))
    (declared,) = c["ports"]
    assert declared["containerPort"] == port and declared["name"] == "http"
    for probe in ("readinessProbe", "livenessProbe"):
        assert c[probe]["tcpSocket"]["port"] in ("http", port)  # HTTP probes would need the token
    service = documents()["Service"]
    assert service["spec"]["ports"][0]["targetPort"] in ("http", port)
    assert service["spec"]["type"] == "ClusterIP"  # exposed through the operator's ingress, not directly
    labels = documents()["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert (
        service["spec"]["selector"] == labels == documents()["Deployment"]["spec"]["selector"]["matchLabels"]
    )


def test_pod_runs_as_the_images_non_root_user_with_a_read_only_root() -> None:
    pod = documents()["Deployment"]["spec"]["template"]["spec"]
    uid = Dockerfile.parse(DOCKERFILE).final.user
    assert uid is not None and pod["securityContext"]["runAsUser"] == int(uid.split(":")[0])
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["automountServiceAccountToken"] is False
    sc = container()["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert (
        container()["image"] == load_yaml(MIGRATE_JOB)["spec"]["template"]["spec"]["containers"][0]["image"]
    )


def test_image_carries_the_templates_and_the_error_code_table(tmp_path: Path) -> None:
    dockerfile, _ = emulate_build(tmp_path)
    final = dockerfile.final
    assert final.root is not None
    docs = final.root / final.env["TENANTATLAS_ERROR_CODES_DOC"].lstrip("/")
    assert parse(docs.read_text()) == parse((ROOT / "docs" / "error-codes.md").read_text())
    build = next(s for s in dockerfile.stages for r in s.runs if "pip install ." in r[0])
    assert build.root is not None
    files, _ = install_package(build.root / "src", tmp_path / "site", tmp_path)
    package_ui = ROOT / "tenantatlas_pipelines" / "ui"
    wanted = {
        p.relative_to(ROOT).as_posix()
        for p in [*package_ui.glob("templates/*.html"), *package_ui.glob("static/*")]
    }
    assert wanted and wanted <= files, sorted(wanted - files)
