"""The Helm chart (deploy/helm/modelregistry): ``helm lint`` and ``helm template`` pass for the
default values and for the example production values, every render passes the strict
validator, and values that are misspelled or of the wrong type fail before anything renders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelregistry_server.access.domain.token import token_id_of
from tests.support import helm

pytestmark = pytest.mark.timeout(120)

VALUES = Path(__file__).parent / "values"
PRODUCTION = helm.EXAMPLES / "values-production.yaml"
METADATA_HEALTH = "modelregistry.metadata.v1.MetadataService"
ARTIFACT_HEALTH = "modelregistry.artifact.v1.ArtifactService"
PROBES = ("startupProbe", "livenessProbe", "readinessProbe")


def _render(
    values: list[Path] | None = None, sets: list[str] | None = None
) -> list[dict[str, Any]]:
    linted = helm.lint(values, sets)
    assert linted.returncode == 0, linted.output
    rendered = helm.template(values, sets)
    assert rendered.returncode == 0, rendered.output
    return helm.decoded(rendered.stdout)


def _container(workload: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = workload["spec"]["template"]["spec"]["containers"][0]
    return container


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in container["env"]}


def _secret_ref(container: dict[str, Any], name: str) -> dict[str, str]:
    ref: dict[str, str] = _env(container)[name]["valueFrom"]["secretKeyRef"]
    return ref


def _kinds(objects: list[dict[str, Any]]) -> list[str]:
    return sorted(obj["kind"] for obj in objects)


def test_default_values_render_both_services_apart_with_grpc_probes_and_a_migration_hook() -> None:
    objects = _render()
    assert _kinds(objects) == sorted(
        ["Deployment"] * 2 + ["Service"] * 4 + ["PodDisruptionBudget"] * 2
        + ["NetworkPolicy"] * 2 + ["ServiceAccount", "Secret", "Job"]
    )  # fmt: skip
    metadata = helm.find(objects, "Deployment", "registry-modelregistry-metadata")
    artifacts = helm.find(objects, "Deployment", "registry-modelregistry-artifacts")
    meta_c, art_c = _container(metadata), _container(artifacts)
    assert meta_c["args"] == ["serve", "metadata"]
    assert art_c["args"] == ["serve", "artifacts"]
    # Each service finds the other through its Service, with a token from the Secret.
    assert _env(meta_c)["MODELREGISTRY_ARTIFACT_SERVICE_URL"]["value"] == (
        "registry-modelregistry-artifacts:50051"
    )
    assert _env(art_c)["MODELREGISTRY_METADATA_SERVICE_URL"]["value"] == (
        "registry-modelregistry-metadata:50051"
    )
    assert "MODELREGISTRY_S3_ENDPOINT" in _env(art_c)
    assert "MODELREGISTRY_S3_ENDPOINT" not in _env(meta_c)
    # The database URL is CloudNativePG's app Secret by default.
    assert _secret_ref(meta_c, "MODELREGISTRY_DATABASE_URL") == {
        "name": "modelregistry-db-app",
        "key": "uri",
    }
    for container, health in ((meta_c, METADATA_HEALTH), (art_c, ARTIFACT_HEALTH)):
        for probe in PROBES:
            assert container[probe]["grpc"] == {"port": 50051, "service": health}
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        assert set(container["resources"]["requests"]) == {"cpu", "memory"}
    assert metadata["spec"]["replicas"] == 2
    assert metadata["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True

    job = helm.find(objects, "Job", "registry-modelregistry-migrate")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert _container(job)["args"][:2] == ["migrate", "all"]
    # The generated admin token is one the server adopts (mr1_<16 hex>_<43 characters>).
    secret = helm.find(objects, "Secret", "registry-modelregistry")
    assert token_id_of(secret["stringData"]["admin-token"]) is not None


def test_production_values_use_existing_secrets_tls_ingress_and_autoscaled_artifacts() -> None:
    objects = _render([PRODUCTION])
    assert "Secret" not in _kinds(objects)  # every credential comes from an existing Secret
    metadata = helm.find(objects, "Deployment", "registry-modelregistry-metadata")
    artifacts = helm.find(objects, "Deployment", "registry-modelregistry-artifacts")
    # HPA on for artifacts (and then no fixed count to fight it), off for metadata.
    hpa = helm.find(objects, "HorizontalPodAutoscaler", "registry-modelregistry-artifacts")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 12)
    assert _kinds(objects).count("HorizontalPodAutoscaler") == 1
    assert "replicas" not in artifacts["spec"]
    assert metadata["spec"]["replicas"] == 3

    meta_c = _container(metadata)
    env = _env(meta_c)
    assert env["MODELREGISTRY_TLS_CERT"]["value"] == "/etc/modelregistry/tls/tls.crt"
    assert env["MODELREGISTRY_ARTIFACT_SERVICE_CA"]["value"] == "/etc/modelregistry/tls/ca.crt"
    assert "MODELREGISTRY_INSECURE" not in env
    assert _secret_ref(meta_c, "MODELREGISTRY_ARTIFACT_SERVICE_TOKEN") == {
        "name": "modelregistry-auth",
        "key": "service-token",
    }
    # Kubernetes' gRPC probe cannot speak TLS: the image's grpc_health_probe does.
    command = meta_c["readinessProbe"]["exec"]["command"]
    assert command[0] == "grpc_health_probe"
    assert f"-service={METADATA_HEALTH}" in command
    assert "-tls-server-name=registry-modelregistry-metadata" in command

    ingress = helm.find(objects, "Ingress", "registry-modelregistry")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "registry-modelregistry-metadata", "port": {"name": "http"}}
    policy = helm.find(objects, "NetworkPolicy", "registry-modelregistry-artifacts")
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    # Metrics: served on their own port, scrapable only from the monitoring namespace.
    assert env["MODELREGISTRY_METRICS"]["value"] == "prometheus"
    assert env["MODELREGISTRY_METRICS_LISTEN"]["value"] == "0.0.0.0:9464"
    annotations = metadata["spec"]["template"]["metadata"]["annotations"]
    assert (annotations["prometheus.io/port"], annotations["prometheus.io/scheme"]) == (
        "9464",
        "https",
    )
    scrape = [rule for rule in policy["spec"]["ingress"] if rule["ports"][0]["port"] == "metrics"]
    assert scrape[0]["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "observability"
    }


def test_autoscaling_both_services_drops_both_fixed_replica_counts() -> None:
    sets = ["metadata.autoscaling.enabled=true", "artifacts.autoscaling.enabled=true"]
    objects = _render(sets=sets)
    assert _kinds(objects).count("HorizontalPodAutoscaler") == 2
    for name in ("registry-modelregistry-metadata", "registry-modelregistry-artifacts"):
        assert "replicas" not in helm.find(objects, "Deployment", name)["spec"]


def test_inline_credentials_go_into_the_charts_own_secret() -> None:
    objects = _render([VALUES / "inline-secrets.yaml"])
    secret = helm.find(objects, "Secret", "registry-modelregistry")
    assert secret["stringData"]["database-url"].startswith("postgresql://registry:")
    assert secret["stringData"]["s3-secret-key"] == "s3-secret-key"
    art_c = _container(helm.find(objects, "Deployment", "registry-modelregistry-artifacts"))
    assert _secret_ref(art_c, "MODELREGISTRY_DATABASE_URL") == {
        "name": "registry-modelregistry",
        "key": "database-url",
    }
    assert _secret_ref(art_c, "MODELREGISTRY_S3_ACCESS_KEY") == {
        "name": "registry-modelregistry",
        "key": "s3-access-key",
    }
    assert _env(art_c)["MODELREGISTRY_S3_ENDPOINT"]["value"] == "s3.example:9000"


@pytest.mark.parametrize(
    ("values", "sets", "message"),
    [
        (
            [VALUES / "misspelled-resources.yaml"],
            [],
            "at '/metadata/resources/requests': additional properties 'memroy' not allowed",
        ),
        (
            [VALUES / "wrong-type.yaml"],
            [],
            "at '/artifacts/replicaCount': got string, want integer",
        ),
        ([VALUES / "wrong-type.yaml"], [], "at '/server/grpcPort': got string, want integer"),
        ([], ["metadata.autoscalling.enabled=true"], "additional properties 'autoscalling'"),
        ([], ["s3.endpoint=http://minio:9000"], "at '/s3/endpoint'"),
        (
            [],
            ["metadata.podDisruptionBudget.maxUnavailable=0"],
            "at '/metadata/podDisruptionBudget/maxUnavailable': minimum: got 0, want 1",
        ),
    ],
    ids=[
        "misspelled-resources",
        "replicas-as-text",
        "port-as-text",
        "misspelled-section",
        "endpoint-with-scheme",
        "pdb-blocking-drains",
    ],
)
def test_broken_values_fail_both_lint_and_template_naming_the_value(
    values: list[Path], sets: list[str], message: str
) -> None:
    linted = helm.lint(values, sets)
    assert linted.returncode != 0
    assert message in linted.output
    rendered = helm.template(values, sets)
    assert rendered.returncode != 0
    assert message in rendered.output
    assert rendered.stdout == ""


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["tls.enabled=true"], "tls.enabled needs tls.existingSecret"),
        (
            ["ingress.enabled=true", "metadata.http.enabled=false"],
            "ingress.enabled needs metadata.http.enabled",
        ),
        (
            ["database.existingSecret="],
            "database.url or database.existingSecret is required",
        ),
    ],
    ids=["tls-without-certificate", "ingress-without-http", "no-database"],
)
def test_settings_that_cannot_work_together_are_refused_with_a_sentence(
    sets: list[str], message: str
) -> None:
    rendered = helm.template(sets=sets)
    assert rendered.returncode != 0
    assert message in rendered.stderr


def test_the_makefile_installs_the_helm_version_the_tests_expect() -> None:
    makefile = (helm.REPO_ROOT / "Makefile").read_text()
    assert f"HELM_VERSION := {helm.HELM_VERSION}\n" in makefile
