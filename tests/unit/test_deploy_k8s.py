"""deploy/k8s: every manifest parses and validates; the kustomize base and the example overlay
are checked for what the relay needs.

Built-in kinds are validated against the Kubernetes JSON schemas that the PyPI package
``kubernetes-validate`` ships (offline, strict: unknown fields fail); the CRDs (KEDA ScaledObject,
Prometheus Operator ServiceMonitor and PrometheusRule) have no schema there and are checked
structurally. The rendered overlay needs ``kubectl kustomize``; the base is also read directly
from its kustomization's resources, so its checks run without kubectl.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from relay.config import Settings, load_settings
from relay.errors import ConfigError
from tests.unit.test_deploy_docker import runtime_uid, runtime_workdir

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
BASE = K8S / "base"
OVERLAY = K8S / "overlays" / "example"
SECRET_TEMPLATE = BASE / "secret.template.yaml"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
RENDER_RULE = K8S / "render_prometheusrule.py"

CRD_KINDS = {"ScaledObject", "ServiceMonitor", "PrometheusRule"}
SECRET_KEYS = {"RELAY_CLIENT_ID", "RELAY_CLIENT_SECRET", "RELAY_KAFKA_SASL_PASSWORD"}
SETTINGS_ENV = {f"RELAY_{name.upper()}" for name in Settings.model_fields}
JOB = "timeback-relay"  # the job label the alert rules and the dashboard select
# Oldest supported (PodDisruptionBudget.unhealthyPodEvictionPolicy is GA in 1.31) and newest.
K8S_VERSIONS = ("1.31.0", "latest")

Doc = dict[str, Any]


def load_docs(path: Path) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def render(directory: Path) -> list[Doc]:
    """``kubectl kustomize`` of a kustomization; the base without kubectl: its resources."""
    kubectl = shutil.which("kubectl")
    if kubectl:
        result = subprocess.run(
            [kubectl, "kustomize", str(directory)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    if directory != BASE:
        pytest.skip("rendering an overlay needs `kubectl kustomize` (kubectl is not installed)")
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    return [doc for name in kustomization["resources"] for doc in load_docs(BASE / name)]


@pytest.fixture(params=["base", "overlay"], scope="module")
def rendered(request: pytest.FixtureRequest) -> list[Doc]:
    return render(BASE if request.param == "base" else OVERLAY)


def one(docs: list[Doc], kind: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def pod_spec(docs: list[Doc]) -> Doc:
    spec: Doc = one(docs, "StatefulSet")["spec"]["template"]["spec"]
    return spec


def container(docs: list[Doc]) -> Doc:
    (relay,) = pod_spec(docs)["containers"]
    return relay


def config(docs: list[Doc]) -> dict[str, str]:
    data: dict[str, str] = one(docs, "ConfigMap")["data"]
    return data


def setting(docs: list[Doc], name: str) -> Any:
    """A setting as the pod would see it: the ConfigMap's value, else the Settings default."""
    value = config(docs).get(f"RELAY_{name.upper()}")
    return value if value not in (None, "") else Settings.model_fields[name].default


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def port_number(relay: Doc, port: int | str) -> int:
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in relay["ports"] if p["name"] == port]
    return int(number)


_UNITS = {"m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def quantity(value: str | int) -> float:
    match = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(value))
    assert match and match.group(2) in _UNITS, value
    return float(match.group(1)) * _UNITS[match.group(2)]


# -- every file ----------------------------------------------------------------------------------


def all_manifest_files() -> list[Path]:
    return sorted(K8S.rglob("*.yaml"))


@pytest.mark.parametrize("path", all_manifest_files(), ids=lambda p: str(p.relative_to(K8S)))
def test_every_manifest_parses_and_names_itself(path: Path) -> None:
    docs = load_docs(path)
    assert docs, path
    for doc in docs:
        assert doc.get("apiVersion") and doc.get("kind"), path
        if doc["kind"] != "Kustomization":
            assert doc["metadata"]["name"], path


def test_base_lists_every_manifest_except_the_secret_template() -> None:
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    files = {p.name for p in BASE.glob("*.yaml")} - {"kustomization.yaml", SECRET_TEMPLATE.name}
    assert set(kustomization["resources"]) == files
    assert SECRET_TEMPLATE.name not in kustomization["resources"]  # it would blank real secrets


@pytest.fixture(scope="module")
def kubernetes_validate() -> Any:
    return pytest.importorskip(
        "kubernetes_validate",
        reason="Kubernetes schema validation needs `pip install kubernetes-validate`",
    )


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_manifests_validate_against_kubernetes_schemas(
    rendered: list[Doc], kubernetes_validate: Any, version: str
) -> None:
    target = kubernetes_validate.latest_version() if version == "latest" else version
    docs = [*rendered, *load_docs(SECRET_TEMPLATE)]
    for doc in docs:
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] in CRD_KINDS:
            with pytest.raises(kubernetes_validate.SchemaNotFoundError):
                kubernetes_validate.validate(doc, target, strict=True)
            continue
        try:
            kubernetes_validate.validate(doc, target, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{where} (Kubernetes {target}): {exc.message} at {list(exc.path)}")


def test_schema_validation_catches_a_misspelled_field(kubernetes_validate: Any) -> None:
    statefulset = one(render(BASE), "StatefulSet")
    statefulset["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(statefulset, kubernetes_validate.latest_version(), True)


# -- the workload --------------------------------------------------------------------------------


def test_static_group_membership_from_the_pod_name(rendered: list[Doc]) -> None:
    statefulset = one(rendered, "StatefulSet")
    env = {e["name"]: e for e in container(rendered).get("env", [])}
    source = env["RELAY_GROUP_INSTANCE_ID"]["valueFrom"]["fieldRef"]["fieldPath"]
    assert source == "metadata.name"  # stable: relay-0, relay-1, ... in a StatefulSet
    assert "replicas" not in statefulset["spec"], "KEDA owns the replica count"
    assert statefulset["spec"]["podManagementPolicy"] == "Parallel"


def test_environment_uses_only_relay_settings(rendered: list[Doc]) -> None:
    relay = container(rendered)
    names = {e["name"] for e in relay.get("env", [])} | set(config(rendered))
    assert names - SETTINGS_ENV == set(), "not a RELAY_* setting of relay/config.py"
    assert set(config(rendered)) & SECRET_KEYS == set(), "secrets do not belong in the ConfigMap"
    sources = {
        kind: ref[kind]["name"]
        for ref in relay["envFrom"]
        for kind in ("configMapRef", "secretRef")
        if kind in ref
    }
    assert sources["configMapRef"] == one(rendered, "ConfigMap")["metadata"]["name"]
    (secret,) = load_docs(SECRET_TEMPLATE)
    assert sources["secretRef"] == secret["metadata"]["name"]


def test_secret_template_has_the_keys_and_no_values() -> None:
    (secret,) = load_docs(SECRET_TEMPLATE)
    assert secret["kind"] == "Secret" and "data" not in secret
    assert set(secret["stringData"]) == SECRET_KEYS
    assert set(secret["stringData"].values()) == {""}
    assert SECRET_KEYS <= SETTINGS_ENV


def test_settings_accept_the_configmap(
    rendered: list[Doc], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The pod's environment (ConfigMap, empty Secret template, pod name) is valid Settings."""
    monkeypatch.chdir(tmp_path)  # no .env file
    for name in [n for n in os.environ if n.startswith("RELAY_")]:
        monkeypatch.delenv(name)
    (secret,) = load_docs(SECRET_TEMPLATE)
    env = config(rendered) | secret["stringData"] | {"RELAY_GROUP_INSTANCE_ID": "timeback-relay-0"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.group_instance_id == "timeback-relay-0"
    assert settings.web_port == int(setting(rendered, "web_port"))
    assert settings.client_secret is None  # an empty value is "not set"
    if config(rendered)["RELAY_APP_ID"]:
        settings.require("app_id")
    else:  # the base leaves the app to the overlay, and the relay says so at start
        with pytest.raises(ConfigError, match="RELAY_APP_ID"):
            settings.require("app_id")


def test_probes_and_port_follow_the_web_port(rendered: list[Doc]) -> None:
    relay = container(rendered)
    web_port = int(setting(rendered, "web_port"))
    (port,) = relay["ports"]
    assert port["containerPort"] == web_port
    probes = {
        "livenessProbe": "/livez",
        "readinessProbe": "/readyz",
        "startupProbe": "/livez",
    }
    for probe, path in probes.items():
        get = relay[probe]["httpGet"]
        assert get["path"] == path, probe
        assert port_number(relay, get["port"]) == web_port, probe


def test_termination_grace_exceeds_the_shutdown_grace(rendered: list[Doc]) -> None:
    grace = pod_spec(rendered)["terminationGracePeriodSeconds"]
    assert grace > float(setting(rendered, "shutdown_grace")) + 5


def test_requests_and_limits(rendered: list[Doc]) -> None:
    resources = container(rendered)["resources"]
    for resource in ("cpu", "memory"):
        request = quantity(resources["requests"][resource])
        limit = quantity(resources["limits"][resource])
        assert 0 < request <= limit, resource


def test_security_context_matches_the_image(rendered: list[Doc]) -> None:
    pod, relay = pod_spec(rendered), container(rendered)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == runtime_uid()
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False
    security = relay["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    # the writable places: the image's working directory (faust's data) and /tmp
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in relay["volumeMounts"]}
    for path in (runtime_workdir(), "/tmp"):
        assert "emptyDir" in volumes[mounts[path]], path


def test_image_is_set(rendered: list[Doc]) -> None:
    image = container(rendered)["image"]
    assert re.fullmatch(r"[\w./-]+:[\w.-]+", image), image


# -- the objects around it -----------------------------------------------------------------------


def test_service_exposes_metrics_of_every_pod(rendered: list[Doc]) -> None:
    statefulset, service = one(rendered, "StatefulSet"), one(rendered, "Service")
    labels = statefulset["spec"]["template"]["metadata"]["labels"]
    assert selects(statefulset["spec"]["selector"]["matchLabels"], labels)
    assert statefulset["spec"]["serviceName"] == service["metadata"]["name"]
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True  # scrape a pod that is not ready
    assert selects(service["spec"]["selector"], labels)
    (port,) = service["spec"]["ports"]
    assert port_number(container(rendered), port["targetPort"]) == int(
        setting(rendered, "web_port")
    )


def test_servicemonitor_scrapes_the_service_as_the_alerts_expect(rendered: list[Doc]) -> None:
    monitor, service = one(rendered, "ServiceMonitor"), one(rendered, "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert selects(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    jobs = [r["replacement"] for r in endpoint.get("relabelings", []) if r["targetLabel"] == "job"]
    assert jobs == [JOB]
    assert f'job="{JOB}"' in ALERTS.read_text()


def test_prometheusrule_is_alerts_yml(rendered: list[Doc]) -> None:
    rule = one(rendered, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["spec"]["groups"] == yaml.safe_load(ALERTS.read_text())["groups"]


def test_prometheusrule_file_is_rendered_from_alerts_yml() -> None:
    result = subprocess.run(
        [sys.executable, str(RENDER_RULE), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_pod_disruption_budget(rendered: list[Doc]) -> None:
    pdb = one(rendered, "PodDisruptionBudget")
    labels = one(rendered, "StatefulSet")["spec"]["template"]["metadata"]["labels"]
    assert selects(pdb["spec"]["selector"]["matchLabels"], labels)
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def _ports(rule: Doc) -> list[tuple[int | str, int | None, str]]:
    return [(p["port"], p.get("endPort"), p.get("protocol", "TCP")) for p in rule.get("ports", [])]


def test_network_policy_allows_what_the_relay_needs(rendered: list[Doc]) -> None:
    policy, relay = one(rendered, "NetworkPolicy"), container(rendered)
    labels = one(rendered, "StatefulSet")["spec"]["template"]["metadata"]["labels"]
    assert selects(policy["spec"]["podSelector"]["matchLabels"], labels)
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    (ingress,) = policy["spec"]["ingress"]
    web_port = int(setting(rendered, "web_port"))
    assert [port_number(relay, p) for p, _, _ in _ports(ingress)] == [web_port]

    allowed = [port for rule in policy["spec"]["egress"] for port in _ports(rule)]

    def egress(port: int, protocol: str = "TCP") -> bool:
        return any(
            proto == protocol and isinstance(p, int) and p <= port <= (end or p)
            for p, end, proto in allowed
        )

    assert egress(53, "UDP") and egress(53, "TCP"), "DNS"
    assert egress(443), "the Partner API (https)"
    for broker in str(setting(rendered, "kafka_bootstrap")).split(","):
        assert egress(int(broker.rsplit(":", 1)[1])), broker


def test_keda_scales_on_the_relays_consumer_lag(rendered: list[Doc]) -> None:
    scaled = one(rendered, "ScaledObject")
    statefulset = one(rendered, "StatefulSet")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    target = scaled["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("StatefulSet", statefulset["metadata"]["name"])
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "kafka"
    meta = trigger["metadata"]
    assert meta["bootstrapServers"] == setting(rendered, "kafka_bootstrap")
    assert meta["consumerGroup"] == setting(rendered, "group_id")
    topics = str(setting(rendered, "topics")).split(",")
    assert meta["topic"] in topics
    assert int(meta["lagThreshold"]) > 0
    assert meta["allowIdleConsumers"] == "false"
    partitions = int(scaled["metadata"]["annotations"]["timeback-relay/topic-partitions"])
    assert 1 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"]
    assert scaled["spec"]["maxReplicaCount"] <= partitions


def test_overlay_sets_namespace_image_and_app() -> None:
    docs = render(OVERLAY)
    namespace = one(docs, "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == namespace["metadata"]["name"], doc["kind"]
    assert container(docs)["image"] != container(render(BASE))["image"]
    assert config(docs)["RELAY_APP_ID"]
    for kind in ("ServiceMonitor", "PrometheusRule"):
        assert one(docs, kind)["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def iter_strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from iter_strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from iter_strings(value)
    elif isinstance(node, str):
        yield node


def test_no_secret_values_in_any_manifest() -> None:
    for path in all_manifest_files():
        for doc in load_docs(path):
            for text in iter_strings(doc):
                assert not re.search(r"(?i)(secret|password)\s*[:=]\s*\S", text), path
