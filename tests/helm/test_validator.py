"""The strict manifest validator (deploy/helm/validate): a rendered chart with one field
misspelled, mistyped or inconsistent fails, with a message naming the field; so do values Helm's
schema lets through because they pass Kubernetes objects on unchanged."""

from __future__ import annotations

import functools
import json
import re
from typing import Any

import pytest

from tests.support import helm

pytestmark = pytest.mark.timeout(120)


@functools.cache
def _default_render() -> str:
    rendered = helm.template()
    assert rendered.returncode == 0, rendered.output
    return rendered.stdout


def _mutate(manifests: str, pattern: str, replacement: str) -> str:
    """Replace the first match of ``pattern`` (a regular expression, multi-line)."""
    changed, count = re.subn(pattern, replacement, manifests, count=1, flags=re.MULTILINE)
    assert count == 1, f"{pattern!r} is not in the rendered chart"
    return changed


def test_the_default_render_passes() -> None:
    result = helm.validate(_default_render())
    assert result.returncode == 0, result.output
    assert re.fullmatch(r"validate: 13 document\(s\) OK\n", result.stdout)


@pytest.mark.parametrize(
    ("pattern", "replacement", "message"),
    [
        (
            r"^(\s+)readinessProbe:",
            r"\1readinesProbe:",
            'unknown field "spec.template.spec.containers[0].readinesProbe"',
        ),
        (
            r"^(\s+)replicas: 2$",
            r"\1replicas: 2\n\1replicas: 3",
            'key "replicas" already set in map',
        ),
        (
            r"^(\s+)replicas: 2$",
            r"\1replicas: two",
            "cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas",
        ),
        (r"cpu: 250m", "cpu: 250 millicores", "quantities must match the regular expression"),
        (
            r"^apiVersion: policy/v1$",
            "apiVersion: policy/v1beta1",
            'no kind "PodDisruptionBudget" is registered for version "policy/v1beta1"',
        ),
        (
            r"targetPort: grpc",
            "targetPort: grcp",
            'Service/registry-modelregistry-metadata: port "grpc" targets grcp, which no '
            "container of Deployment/registry-modelregistry-metadata declares",
        ),
        (
            r"^(\s+)mountPath: /tmp$",
            r"\1mountPath: /tmp\n\1subPathh: x",
            'unknown field "spec.template.spec.containers[0].volumeMounts[0].subPathh"',
        ),
    ],
    ids=[
        "misspelled-field",
        "duplicate-field",
        "wrong-type",
        "bad-quantity",
        "removed-api",
        "dangling-target-port",
        "misspelled-nested-field",
    ],
)
def test_a_broken_manifest_fails_naming_what_is_wrong(
    pattern: str, replacement: str, message: str
) -> None:
    result = helm.validate(_mutate(_default_render(), pattern, replacement))
    assert result.returncode == 1
    assert message in result.stdout
    assert re.search(r"validate: [1-9][0-9]* problem\(s\)", result.stdout)


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (
            ["podSecurityContext.runAsUsr=1000"],
            'unknown field "spec.template.spec.securityContext.runAsUsr"',
        ),
        (
            ["containerSecurityContext.readOnlyRootFilesystem=false"],
            'container "metadata" must set readOnlyRootFilesystem: true',
        ),
        (
            ["containerSecurityContext.capabilities.drop={NET_RAW}"],
            'container "artifacts" must drop ALL capabilities',
        ),
        (
            [
                "metadata.extraEnv[0].name=MODELREGISTRY_LOG_LEVEL",
                "metadata.extraEnv[0].value=DEBUG",
            ],
            'container "metadata" sets env MODELREGISTRY_LOG_LEVEL twice',
        ),
    ],
    ids=["typo-in-passthrough", "writable-root", "capabilities-kept", "env-set-twice"],
)
def test_values_helm_accepts_can_still_fail_validation(sets: list[str], message: str) -> None:
    # These values are Kubernetes objects the schema passes on whole (or allowed settings that
    # weaken the pod): only the typed decoding and the checks after rendering catch them.
    rendered = helm.template(sets=sets)
    assert rendered.returncode == 0, rendered.output
    result = helm.validate(rendered.stdout)
    assert result.returncode == 1
    assert message in result.stdout


def test_an_empty_render_is_a_failure_not_a_pass() -> None:
    # What a pipe delivers when `helm template` failed upstream of it.
    result = helm.validate("")
    assert result.returncode == 1
    assert "no Kubernetes documents in the input" in result.stdout


def test_custom_resources_need_to_be_allowed_by_name() -> None:
    cluster = (helm.EXAMPLES / "cloudnative-pg-cluster.yaml").read_text()
    refused = helm.validate(cluster)
    assert refused.returncode == 1
    assert 'no kind "Cluster" is registered for version "postgresql.cnpg.io/v1"' in refused.stdout
    allowed = helm.validate(cluster, allow_kinds=helm.EXAMPLE_KINDS)
    assert allowed.returncode == 0, allowed.output
    # Allowed kinds are still parsed strictly.
    doubled = _mutate(cluster, r"^(\s+)instances: 3$", r"\1instances: 3\n\1instances: 1")
    result = helm.validate(doubled, allow_kinds=helm.EXAMPLE_KINDS)
    assert result.returncode == 1
    assert 'key "instances" already set in map' in result.stdout


def _example(name: str) -> list[dict[str, Any]]:
    result = helm.validate(
        (helm.EXAMPLES / name).read_text(), allow_kinds=helm.EXAMPLE_KINDS, as_json=True
    )
    assert result.returncode == 0, result.output
    objects: list[dict[str, Any]] = json.loads(result.stdout)
    return objects


def test_the_example_database_and_object_store_are_what_the_chart_defaults_expect() -> None:
    defaults = helm.decoded(_default_render())
    artifacts = helm.find(defaults, "Deployment", "registry-modelregistry-artifacts")
    env = {e["name"]: e for e in artifacts["spec"]["template"]["spec"]["containers"][0]["env"]}

    cluster = helm.find(_example("cloudnative-pg-cluster.yaml"), "Cluster", "modelregistry-db")
    # CloudNativePG names the app Secret <cluster>-app and puts the URL under "uri".
    database = env["MODELREGISTRY_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert database == {"name": cluster["metadata"]["name"] + "-app", "key": "uri"}
    # 20 pooled connections per replica at the production example's largest scale, plus the
    # migration Job, must fit the cluster's max_connections.
    production = helm.template([helm.EXAMPLES / "values-production.yaml"])
    assert production.returncode == 0, production.output
    scaled = helm.decoded(production.stdout)
    replicas = helm.find(scaled, "Deployment", "registry-modelregistry-metadata")["spec"][
        "replicas"
    ]
    replicas += helm.find(scaled, "HorizontalPodAutoscaler", "registry-modelregistry-artifacts")[
        "spec"
    ]["maxReplicas"]
    assert int(cluster["spec"]["postgresql"]["parameters"]["max_connections"]) >= 20 * replicas + 1

    minio = _example("minio-tenant.yaml")
    tenant = helm.find(minio, "Tenant", "modelregistry-minio")
    access = env["MODELREGISTRY_S3_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]
    secret = env["MODELREGISTRY_S3_SECRET_KEY"]["valueFrom"]["secretKeyRef"]
    assert {"name": access["name"]} in tenant["spec"]["users"]
    user = helm.find(minio, "Secret", access["name"])
    assert {access["key"], secret["key"]} <= set(user["stringData"])
    assert {"name": env["MODELREGISTRY_S3_BUCKET"]["value"]} in tenant["spec"]["buckets"]
    # Without TLS the tenant's "minio" Service listens on 80: the chart's default endpoint.
    assert tenant["spec"]["requestAutoCert"] is False
    assert env["MODELREGISTRY_S3_ENDPOINT"]["value"] == "minio:80"
