"""deploy/compose.yaml and its host-network override keep the promises the docs make.

``make compose-test`` runs the stack for real (minutes, so not part of ``make test``); these
checks read the files and catch what would break it quietly: a secret moved into a plain
environment variable, a lost health condition, a MinIO node outside the erasure set, a service
on the host network listening beyond loopback.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
REGISTRY = ("metadata-1", "metadata-2", "artifacts-1", "artifacts-2")
MINIO = ("minio1", "minio2", "minio3", "minio4")
# Variable names that carry secrets; each must be the *_FILE form, naming a mounted file.
SECRET_NAME = re.compile(r"(PASSWORD|SECRET|TOKEN|DATABASE_URL|ACCESS_KEY|ROOT_USER)")


def _load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load((DEPLOY / name).read_text(), Loader=_ComposeLoader)  # noqa: S506 - a SafeLoader subclass
    return loaded


class _ComposeLoader(yaml.SafeLoader):
    """SafeLoader that accepts compose's ``!reset`` and ``!override`` merge tags."""


def _construct_tagged(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node)
    return None


for _tag in ("!reset", "!override"):
    _ComposeLoader.add_constructor(_tag, _construct_tagged)


def test_the_stack_has_its_services_and_every_image_is_overridable() -> None:
    services = _load("compose.yaml")["services"]
    assert set(services) == {"postgres", *MINIO, *REGISTRY, "otel-collector"}
    for name, service in services.items():
        assert re.fullmatch(r"\$\{[A-Z_]+_IMAGE:-[^}]+\}", service["image"]), name


def test_secrets_reach_the_services_only_as_files_that_compose_secrets_writes() -> None:
    compose = _load("compose.yaml")
    written = set(
        re.findall(r"^write ([a-z-]+) ", (DEPLOY / "compose-secrets.sh").read_text(), re.M)
    )
    for name, service in compose["services"].items():
        for key in service.get("environment", {}):
            if SECRET_NAME.search(key):
                assert key.endswith("_FILE"), f"{name}: {key} must come from a file"
        for secret in service.get("secrets", []):
            assert secret in compose["secrets"], (name, secret)
    files = {spec["file"].removeprefix("./secrets/") for spec in compose["secrets"].values()}
    assert files <= written
    override_files = {
        s["file"].removeprefix("./secrets/")
        for s in _load("compose.host-network.yaml")["secrets"].values()
    }
    assert override_files <= written


def test_start_order_follows_health_and_minio_is_one_erasure_set_with_volumes() -> None:
    services = _load("compose.yaml")["services"]
    for name in REGISTRY:
        depends = services[name]["depends_on"]
        for dependency in ("postgres", *MINIO):
            assert depends[dependency] == {"condition": "service_healthy"}, (name, dependency)
    for name in ("artifacts-1", "artifacts-2"):
        for metadata in ("metadata-1", "metadata-2"):
            assert services[name]["depends_on"][metadata] == {"condition": "service_healthy"}
    for name in ("postgres", *MINIO):
        assert services[name]["healthcheck"]["test"], name
        assert services[name]["volumes"], name
    for name in MINIO:
        assert "http://minio{1...4}:9000/data" in services[name]["command"]


def test_the_host_network_override_keeps_every_listener_on_loopback_and_distinct() -> None:
    override = _load("compose.host-network.yaml")["services"]
    ports: list[str] = []
    for name, service in override.items():
        assert service["network_mode"] == "host", name
        if "otel" in service.get("profiles", []):
            continue  # not started here
        command = service.get("command", [])
        text = command if isinstance(command, str) else " ".join(command)
        listen = service.get("environment", {}).get("MODELREGISTRY_LISTEN")
        addresses = re.findall(r"--(?:console-)?address (\S+)", text)
        addresses += [listen] if listen else []
        postgres = re.search(r"listen_addresses=(\S+) -c port=(\d+)", text)
        addresses += [f"{postgres[1]}:{postgres[2]}"] if postgres else []
        assert addresses, name
        for address in addresses:
            assert address.startswith("127.0.0.1:"), (name, address)
        ports += [address.rpartition(":")[2] for address in addresses]
    assert len(ports) == len(set(ports)), sorted(ports)
