"""deploy/kubernetes/: every manifest is valid against the Kubernetes schemas
(kubernetes-validate, offline, strict), and agrees with the service: its settings, its
routes, its port, the image's user, and with itself (selectors, names, the kustomization)."""

from __future__ import annotations

import re
from typing import Any

import kubernetes_validate
import pytest
import yaml
from promql_support import REPO
from settings_support import HA_ENV, KNOWN_ENV

from service.app import create_app
from service.settings import Settings

K8S = REPO / "deploy" / "kubernetes"
KUSTOMIZATION = K8S / "kustomization.yaml"
# The oldest Kubernetes the manifests are written for (the preStop sleep action is on by
# default from 1.30); they are also checked against the newest schemas bundled.
OLDEST = (1, 30)


def _manifests() -> dict[str, dict[str, Any]]:
    """Each resource by kind, from every file but the kustomization."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path == KUSTOMIZATION:
            continue
        for document in yaml.safe_load_all(path.read_text()):
            assert document["kind"] not in found, f"two {document['kind']}s"
            found[document["kind"]] = document
    return found


def _versions() -> list[str]:
    bundled = sorted(
        {
            kubernetes_validate.utils.major_minor(v)
            for v in kubernetes_validate.utils.all_versions()
        },
        key=lambda v: tuple(int(part) for part in v.split(".")),
    )
    supported = [v for v in bundled if tuple(int(p) for p in v.split(".")) >= OLDEST]
    assert supported, f"kubernetes-validate bundles no schemas from {OLDEST} on: {bundled}"
    return sorted({supported[0], supported[-1]})


@pytest.mark.parametrize("kind", ["ConfigMap", "Secret", "Deployment", "Service",
                                  "PodDisruptionBudget", "HorizontalPodAutoscaler"])  # fmt: skip
def test_the_manifest_is_valid_against_the_kubernetes_schemas(kind: str) -> None:
    resource = _manifests()[kind]
    for version in _versions():
        kubernetes_validate.validate(resource, version, strict=True)


def test_the_schema_check_refuses_a_misspelt_field() -> None:
    """The check above can fail: strict validation refuses a field Kubernetes lacks."""
    deployment = _manifests()["Deployment"]
    probe = deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    probe["httpGet"]["paht"] = probe["httpGet"].pop("path")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, _versions()[-1], strict=True)


def test_the_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load(KUSTOMIZATION.read_text())
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {KUSTOMIZATION.name}
    (image,) = kustomization["images"]
    name, tag = _container()["image"].split(":")
    assert image == {"name": name, "newTag": tag}


def _container() -> dict[str, Any]:
    (container,) = _manifests()["Deployment"]["spec"]["template"]["spec"]["containers"]
    return container


def _env_names() -> set[str]:
    manifests = _manifests()
    names = set(manifests["ConfigMap"]["data"]) | set(manifests["Secret"]["stringData"])
    names |= {entry["name"] for entry in _container().get("env", [])}
    return names


def test_every_variable_is_a_setting_and_the_config_map_values_validate() -> None:
    names = _env_names()
    assert {name for name in names if name.startswith("ANOMALY_")} == names
    assert names <= KNOWN_ENV, sorted(names - KNOWN_ENV)
    # The HA mode needs both, and the database URL holds a password: the Secret's.
    manifests = _manifests()
    assert "ANOMALY_STORE_URL" in manifests["Secret"]["stringData"]
    assert "ANOMALY_STORE_URL" not in manifests["ConfigMap"]["data"]
    assert HA_ENV <= names
    data = manifests["ConfigMap"]["data"]
    assert all(isinstance(value, str) for value in data.values())
    settings = Settings.model_validate(
        {k.removeprefix("ANOMALY_").lower(): v for k, v in data.items() if k not in HA_ENV}
    )
    assert settings.env == "production" and settings.host == "0.0.0.0"


def test_the_secret_holds_placeholders_only() -> None:
    secret = _manifests()["Secret"]
    assert "data" not in secret, "placeholders are written in clear, as stringData"
    for name, value in secret["stringData"].items():
        assert "REPLACE-WITH-" in value, name
        assert not re.search(r"[0-9a-fA-F]{64}", value), name
    assert "PLACEHOLDERS" in (K8S / "secret.yaml").read_text()


def _route_paths() -> set[str]:
    """Every path the app answers GET on, as its OpenAPI document lists them."""
    paths = create_app(Settings()).openapi()["paths"]
    return {path for path, operations in paths.items() if "get" in operations}


def test_probes_ask_the_service_s_health_routes_on_its_port() -> None:
    container = _container()
    (port,) = container["ports"]
    settings_port = Settings.model_validate(
        {"port": _manifests()["ConfigMap"]["data"]["ANOMALY_PORT"]}
    ).port
    assert port["containerPort"] == settings_port
    routes = _route_paths()
    probes = {
        name: container[name]["httpGet"]
        for name in ("readinessProbe", "livenessProbe", "startupProbe")
    }
    for name, probe in probes.items():
        assert probe["path"] in routes, name
        assert probe["port"] == port["name"], name
    # Readiness is the one that asks about dependencies; liveness must not, or an outage
    # of PostgreSQL or Redis would restart every replica.
    assert probes["readinessProbe"]["path"] == "/readyz"
    assert probes["livenessProbe"]["path"] == probes["startupProbe"]["path"] == "/healthz"
    annotations = _manifests()["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] in routes
    assert int(annotations["prometheus.io/port"]) == settings_port


def test_the_service_pdb_and_hpa_select_the_deployment() -> None:
    manifests = _manifests()
    deployment = manifests["Deployment"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"] == labels
    assert manifests["Service"]["spec"]["selector"] == labels
    assert manifests["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == labels
    (service_port,) = manifests["Service"]["spec"]["ports"]
    assert service_port["targetPort"] == _container()["ports"][0]["name"]
    target = manifests["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    hpa = manifests["HorizontalPodAutoscaler"]["spec"]
    # The HPA owns the count; a replicas field would fight it on every apply.
    assert "replicas" not in deployment["spec"]
    assert 2 <= hpa["minReplicas"] <= hpa["maxReplicas"]
    assert manifests["PodDisruptionBudget"]["spec"]["maxUnavailable"] < hpa["minReplicas"]
    env_from = {next(iter(ref.values()))["name"] for ref in _container()["envFrom"]}
    assert env_from == {manifests["ConfigMap"]["metadata"]["name"],
                        manifests["Secret"]["metadata"]["name"]}  # fmt: skip


def _dockerfile_user() -> tuple[int, int]:
    user = re.findall(r"(?m)^USER (\d+):(\d+)$", (REPO / "Dockerfile").read_text())
    assert len(user) == 1
    return int(user[0][0]), int(user[0][1])


def test_the_pod_runs_as_the_image_s_user_on_a_read_only_root() -> None:
    pod = _manifests()["Deployment"]["spec"]["template"]["spec"]
    uid, gid = _dockerfile_user()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (
        uid,
        gid,
    )
    context = _container()["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    mounts = {m["mountPath"]: m.get("readOnly", False) for m in _container()["volumeMounts"]}
    # The store is PostgreSQL: the image's SQLite folder is mounted read-only, so a replica
    # started without ANOMALY_STORE_URL cannot keep labels in a file that goes with the pod.
    # Left unmounted it would not be read-only: containerd, CRI-O and Podman give an image's
    # VOLUME a writable volume of their own.
    volumes = re.findall(r'(?m)^VOLUME \["([^"]+)"\]', (REPO / "Dockerfile").read_text())
    assert volumes
    assert mounts == {"/tmp": False} | dict.fromkeys(volumes, True)
    assert pod["automountServiceAccountToken"] is False
    # Service links are ANOMALY_SERVICE_* variables beside the settings (ANOMALY_*)
    assert pod["enableServiceLinks"] is False


def test_the_image_in_the_manifests_is_the_compose_image() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert _container()["image"] == compose["services"]["service"]["image"]


def test_every_file_is_plain_yaml_kubectl_reads() -> None:
    """No templating: `kubectl apply -k` or `-f` takes the folder as it is."""
    for path in K8S.glob("*.yaml"):
        assert "{{" not in path.read_text(), path.name
        assert "${" not in path.read_text(), path.name


def _documented_kubectl_lines() -> list[str]:
    """The kubectl commands of docs/high-availability.md's shell blocks, in order, each with
    its continuation lines joined."""
    text = (REPO / "docs" / "high-availability.md").read_text()
    blocks = re.findall(r"(?ms)^```bash\n(.*?)^```", text)
    lines = [re.sub(r"\\\n\s*", " ", block).splitlines() for block in blocks]
    return [line for block in lines for line in block if line.lstrip().startswith("kubectl ")]


def test_the_documented_steps_create_the_namespace_before_using_it() -> None:
    """A first `kubectl -n NAME ...` into a namespace nobody created fails with
    "namespaces NAME not found"; the steps make it first."""
    created: set[str] = set()
    used = 0
    for line in _documented_kubectl_lines():
        made = re.match(r"\s*kubectl create namespace (\S+)", line)
        if made:
            created.add(made.group(1))
            continue
        for namespace in re.findall(r"(?:-n|--namespace)[ =](\S+)", line):
            used += 1
            assert namespace in created, f"{line.strip()}: namespace {namespace} not created"
    assert used, "the steps name a namespace"


def test_the_documented_secret_is_the_one_the_pods_read() -> None:
    (line,) = [s for s in _documented_kubectl_lines() if " create secret generic " in s]
    secret = _manifests()["Secret"]
    assert re.search(rf" generic {re.escape(secret['metadata']['name'])} ", line)
    keys = set(re.findall(r"--from-(?:literal|file)=(\w+)=", line))
    assert keys == set(secret["stringData"])


def _mebibytes(quantity: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", quantity).groups()  # type: ignore[union-attr]
    return int(number) * (1024 if unit == "Gi" else 1)


def test_the_memory_limit_holds_a_replica_with_every_bound_full() -> None:
    """docs/high-availability.md gives a replica's measured memory at the default bounds; a
    limit below it has every replica killed once the streams fill its table, all at once
    (round robin gives each replica every stream)."""
    text = " ".join((REPO / "docs" / "high-availability.md").read_text().split())
    measured = re.search(r"([\d,]+) MiB at the default `ANOMALY_STREAM_CAPACITY` of ([\d,]+)", text)
    assert measured, "the docs give the measured memory at the default stream capacity"
    data = _manifests()["ConfigMap"]["data"]
    assert "ANOMALY_STREAM_CAPACITY" not in data and "ANOMALY_RECENT_MAX_READINGS" not in data
    defaults = Settings()
    assert int(measured.group(2).replace(",", "")) == defaults.stream_capacity
    assert f"`ANOMALY_RECENT_MAX_READINGS`, {defaults.recent_max_readings:,}" in text
    resources = _container()["resources"]
    limit = _mebibytes(resources["limits"]["memory"])
    # Room above it for the largest request: a body of ANOMALY_MAX_BODY_BYTES and its parse.
    room = 4 * defaults.max_body_bytes / 2**20
    assert int(measured.group(1).replace(",", "")) + room <= limit
    assert _mebibytes(resources["requests"]["memory"]) <= limit
