"""Every rendered Kubernetes object is valid against the Kubernetes API schemas, and the
objects fit together: what a pod mounts exists, probes hit the port that serves
health, selectors select, the autoscaler scales the processors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from schemas.config import load_config
from schemas.rules import load_rule_files
from tests.unit.deploy.conftest import (
    DEPLOY,
    ROOT,
    assert_valid_invocation,
    find,
    option_values,
)
from tests.unit.deploy.kustomize import pod_containers, pod_spec

# the oldest Kubernetes minor we promise to run on, and the newest the library knows
K8S_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
WORKERS = ("processor", "agents", "notifier", "gateway", "expiry", "projector", "api")
HEALTH_PORT = {"processor": 9400, "agents": 9400, "notifier": 9400, "gateway": 8080,
               "expiry": 9400, "projector": 9400, "api": 8081}  # fmt: skip

Doc = dict[str, Any]


def workloads(docs: list[Doc]) -> list[Doc]:
    return [d for d in docs if pod_spec(d) is not None]


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("tree", ["base", "overlay"])
def test_every_object_is_valid_against_the_kubernetes_api_schema(
    tree: str, version: str, request: pytest.FixtureRequest
) -> None:
    docs = request.getfixturevalue(tree)
    assert len(docs) >= 12
    for doc in docs:
        # strict: an unknown or misspelt field is an error, as `kubectl apply` would say
        kubernetes_validate.validate(doc, version, strict=True)


def test_a_misspelt_field_is_caught_by_the_schema_check(overlay: list[Doc]) -> None:
    deployment = yaml.safe_load(yaml.safe_dump(find(overlay, "Deployment", "tocsin-processor")))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[0], strict=True)


def test_one_deployment_per_worker_kind_all_from_one_image(overlay: list[Doc]) -> None:
    deployments = {d["metadata"]["name"] for d in overlay if d["kind"] == "Deployment"}
    assert deployments == {f"tocsin-{w}" for w in WORKERS}
    images = {c["image"] for d in workloads(overlay) for c in pod_containers(d)}
    assert images == {"registry.example.com/tocsin:0.1.0"}


def test_every_container_runs_a_real_tocsin_command(overlay: list[Doc]) -> None:
    for doc in workloads(overlay):
        for container in pod_containers(doc):
            assert "command" not in container, "the image's entrypoint is `tocsin`"
            assert_valid_invocation(container["args"])


def test_selectors_match_their_pod_labels_and_select_nothing_else(overlay: list[Doc]) -> None:
    for doc in overlay:
        if doc["kind"] != "Deployment":
            continue
        selector = doc["spec"]["selector"]["matchLabels"]
        labels = doc["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), doc["metadata"]["name"]
        others = [o for o in overlay if o["kind"] == "Deployment" and o is not doc]
        for other in others:
            other_labels = other["spec"]["template"]["metadata"]["labels"]
            assert not selector.items() <= other_labels.items(), (
                f"{doc['metadata']['name']} selects {other['metadata']['name']}'s pods"
            )


def _selected(overlay: list[Doc], selector: dict[str, str]) -> list[str]:
    return [
        d["metadata"]["name"]
        for d in overlay
        if d["kind"] == "Deployment"
        and selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
    ]


def test_every_worker_has_a_disruption_budget_that_selects_exactly_it(
    overlay: list[Doc],
) -> None:
    budgets = [d for d in overlay if d["kind"] == "PodDisruptionBudget"]
    covered = []
    for pdb in budgets:
        selected = _selected(overlay, pdb["spec"]["selector"]["matchLabels"])
        assert len(selected) == 1, f"{pdb['metadata']['name']} selects {selected}"
        # maxUnavailable never blocks a node drain, whatever the replica count
        assert pdb["spec"].get("maxUnavailable") == 1
        covered += selected
    assert sorted(covered) == sorted(f"tocsin-{w}" for w in WORKERS)


def test_probes_hit_the_port_that_serves_health(overlay: list[Doc]) -> None:
    for worker in WORKERS:
        container = pod_spec(find(overlay, "Deployment", f"tocsin-{worker}"))["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            get = container[probe]["httpGet"]
            assert get["path"] == path, f"{worker} {probe}"
            assert ports[get["port"]] == HEALTH_PORT[worker], f"{worker} {probe}"
        if "startupProbe" in container:
            assert ports[container["startupProbe"]["httpGet"]["port"]] == HEALTH_PORT[worker]
        # the worker listens where the probes knock
        opts = option_values(container["args"])
        flag = "--port" if worker in ("gateway", "api") else "--health-port"
        assert opts[flag] == [str(HEALTH_PORT[worker])], worker
        annotations = find(overlay, "Deployment", f"tocsin-{worker}")["spec"]["template"][
            "metadata"
        ]["annotations"]
        assert annotations["prometheus.io/port"] == str(HEALTH_PORT[worker])


def test_everything_a_pod_references_exists(overlay: list[Doc]) -> None:
    objects = {(d["kind"], d["metadata"]["name"]): d for d in overlay}
    for doc in workloads(overlay):
        pod = pod_spec(doc)
        assert ("ServiceAccount", pod["serviceAccountName"]) in objects
        volumes = {}
        for volume in pod.get("volumes", []):
            if "configMap" in volume:
                volumes[volume["name"]] = objects[("ConfigMap", volume["configMap"]["name"])]
            elif "secret" in volume:
                volumes[volume["name"]] = objects[("Secret", volume["secret"]["secretName"])]
        for container in pod_containers(doc):
            for env_from in container.get("envFrom", []):
                assert ("ConfigMap", env_from["configMapRef"]["name"]) in objects
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            assert set(mounts.values()) <= {v["name"] for v in pod["volumes"]}
            # every *_FILE variable names a key of the Secret mounted at its directory
            for env in container.get("env", []):
                if not env["name"].endswith("_FILE"):
                    continue
                path = Path(env["value"])
                source = volumes.get(mounts.get(str(path.parent), ""))
                assert source is not None, f"{doc['metadata']['name']}: {env['value']} unmounted"
                assert source["kind"] == "Secret"
                assert path.name in source["data"], f"{env['value']}: no key {path.name}"


def test_secrets_are_mounted_as_files_never_passed_as_values(overlay: list[Doc]) -> None:
    for doc in workloads(overlay):
        for container in pod_containers(doc):
            for env in container.get("env", []):
                source = env.get("valueFrom") or {}
                assert "secretKeyRef" not in source, env["name"]
                secretish = any(w in env["name"] for w in ("TOKEN", "SECRET", "PASSWORD", "KEY"))
                assert not secretish or env["name"].endswith("_FILE"), env["name"]
            assert all("secretRef" not in e for e in container.get("envFrom", []))


def test_kafka_sasl_password_is_read_from_its_file_by_every_kafka_client(
    overlay: list[Doc],
) -> None:
    for doc in workloads(overlay):
        for container in pod_containers(doc):
            env = {e["name"]: e.get("value") for e in container.get("env", [])}
            assert env.get("TOCSIN_SASL_PASSWORD_FILE") == (
                "/var/run/secrets/tocsin/kafka/sasl-password"
            ), doc["metadata"]["name"]


def test_the_rules_and_config_config_maps_hold_the_repository_files(overlay: list[Doc]) -> None:
    rules = next(d for d in overlay if d["metadata"]["name"].startswith("tocsin-rules-"))
    config = next(d for d in overlay if d["metadata"]["name"].startswith("tocsin-config-"))
    assert rules["data"] == {"default.yaml": (ROOT / "rules/default.yaml").read_text()}
    expected = {p.name: p.read_text() for p in (ROOT / "examples/config").glob("*.y*ml")}
    assert config["data"] == expected
    # and they load: a mounted directory is what the workers are given
    assert load_rule_files([ROOT / "rules/default.yaml"]).rules
    load_config(sorted((ROOT / "examples/config").glob("*.y*ml")))
    processor = pod_spec(find(overlay, "Deployment", "tocsin-processor"))["containers"][0]
    mount = next(m for m in processor["volumeMounts"] if m["name"] == "rules")
    assert option_values(processor["args"])["--rules"] == [mount["mountPath"]]


def test_the_env_config_map_holds_valid_kafka_settings(overlay: list[Doc]) -> None:
    from streams.settings import KafkaSettings

    env = next(d for d in overlay if d["metadata"]["name"].startswith("tocsin-env-"))["data"]
    known = {f"TOCSIN_{name.upper()}" for name in KafkaSettings.model_fields}
    known |= {"TOCSIN_LOG_FORMAT", "TOCSIN_LOG_LEVEL"}
    assert set(env) <= known, set(env) - known
    settings = KafkaSettings(**{k.removeprefix("TOCSIN_").lower(): v for k, v in env.items()
                                if not k.startswith("TOCSIN_LOG_")})  # fmt: skip
    assert settings.partitions >= 1


def test_processors_autoscale_on_lag_with_cpu_fallback_within_the_partition_count(
    overlay: list[Doc],
) -> None:
    hpa = find(overlay, "HorizontalPodAutoscaler", "tocsin-processor")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "tocsin-processor")
    assert "replicas" not in find(overlay, "Deployment", "tocsin-processor")["spec"]
    kinds = [m["type"] for m in hpa["spec"]["metrics"]]
    assert kinds == ["External", "Resource"]
    assert hpa["spec"]["metrics"][0]["external"]["metric"]["name"] == (
        "tocsin_processor_consumer_lag"
    )
    adapter = yaml.safe_load((ROOT / "observability/prometheus/adapter-rules.yaml").read_text())
    published = {r["name"]["as"] for r in adapter["rules"]["external"]}
    assert "tocsin_processor_consumer_lag" in published
    env = next(d for d in overlay if d["metadata"]["name"].startswith("tocsin-env-"))["data"]
    assert 2 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    assert hpa["spec"]["maxReplicas"] <= int(env["TOCSIN_PARTITIONS"])


def test_pods_run_non_root_on_a_read_only_root_with_requests_and_limits(
    overlay: list[Doc],
) -> None:
    for doc in workloads(overlay):
        pod = pod_spec(doc)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        assert pod["automountServiceAccountToken"] is False
        for container in pod_containers(doc):
            ctx = container["securityContext"]
            assert ctx["readOnlyRootFilesystem"] is True
            assert ctx["allowPrivilegeEscalation"] is False
            assert ctx["capabilities"]["drop"] == ["ALL"]
            for part in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][part]), part
            # a read-only root still needs a writable /tmp for Python and librdkafka
            assert any(m["mountPath"] == "/tmp" for m in container["volumeMounts"])


def test_consumers_get_time_to_finish_their_batch_on_sigterm(overlay: list[Doc]) -> None:
    for worker in ("processor", "agents", "notifier", "projector"):
        pod = pod_spec(find(overlay, "Deployment", f"tocsin-{worker}"))
        # a 30 s Kafka transaction timeout and a commit must fit inside the grace period
        assert pod["terminationGracePeriodSeconds"] >= 45, worker
    gateway = pod_spec(find(overlay, "Deployment", "tocsin-gateway"))
    assert gateway["terminationGracePeriodSeconds"] >= 5 + 10  # preStop + aiohttp drain


def test_the_gateway_service_and_ingress_reach_the_gateway_pods(overlay: list[Doc]) -> None:
    service = find(overlay, "Service", "tocsin-gateway")
    assert _selected(overlay, service["spec"]["selector"]) == ["tocsin-gateway"]
    container = pod_spec(find(overlay, "Deployment", "tocsin-gateway"))["containers"][0]
    port_names = {p["name"] for p in container["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    ingress = find(overlay, "Ingress", "tocsin-gateway")
    service_ports = {p["name"] for p in service["spec"]["ports"]}
    paths = []
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend["name"] == "tocsin-gateway"
            assert backend["port"]["name"] in service_ports
            paths.append(path["path"])
    assert "/slack" in paths
    assert not {"/", "/metrics", "/healthz", "/readyz"} & set(paths)


def test_the_topics_job_creates_the_catalog(overlay: list[Doc]) -> None:
    job = find(overlay, "Job", "tocsin-topics")
    container = pod_spec(job)["containers"][0]
    assert container["args"] == ["topics", "create"]
    assert job["spec"]["ttlSecondsAfterFinished"] > 0


def test_everything_is_in_the_overlay_namespace(overlay: list[Doc]) -> None:
    for doc in overlay:
        if doc["kind"] == "Namespace":
            assert doc["metadata"]["name"] == "tocsin"
        else:
            assert doc["metadata"]["namespace"] == "tocsin", doc["metadata"]["name"]


def test_extras_select_tocsin_pods(overlay: list[Doc]) -> None:
    extras = [d for p in sorted((DEPLOY / "extras").glob("*.yaml"))
              for d in yaml.safe_load_all(p.read_text()) if d]  # fmt: skip
    kinds = {d["kind"]: d for d in extras}
    assert {"PodMonitor", "ScaledObject", "PrometheusRule"} <= set(kinds)
    monitor = kinds["PodMonitor"]
    selected = _selected(overlay, monitor["spec"]["selector"]["matchLabels"])
    assert sorted(selected) == sorted(f"tocsin-{w}" for w in WORKERS)
    endpoint_ports = {e["port"] for e in monitor["spec"]["podMetricsEndpoints"]}
    declared = {
        p["name"]
        for w in WORKERS
        for p in pod_spec(find(overlay, "Deployment", f"tocsin-{w}"))["containers"][0]["ports"]
    }
    assert endpoint_ports == declared
    scaled = kinds["ScaledObject"]["spec"]["scaleTargetRef"]
    assert scaled["name"] == "tocsin-processor"
    rules = yaml.safe_load((ROOT / "observability/prometheus/alerts.yaml").read_text())
    assert kinds["PrometheusRule"]["spec"] == rules


def test_the_gateway_behind_the_public_ingress_is_never_open(overlay: list[Doc]) -> None:
    import base64

    import click

    from streams.cli.run_gateway import LOOPBACK, open_access

    deployment = find(overlay, "Deployment", "tocsin-gateway")
    container = pod_spec(deployment)["containers"][0]
    host = option_values(container["args"])["--host"][0]
    assert host not in LOOPBACK, "the Service reaches the pod on its pod IP"
    assert "--insecure-no-auth" not in container["args"]
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    configs = [find(overlay, "ConfigMap", e["configMapRef"]["name"])["data"]
               for e in container.get("envFrom", [])]  # fmt: skip
    assert all("TOCSIN_GATEWAY_INSECURE_NO_AUTH" not in c for c in [env, *configs])
    # credentials come from the tocsin-gateway Secret's keys
    volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    secret_keys = {}
    for name in ("TOCSIN_GATEWAY_TOKENS_FILE", "TOCSIN_PAGERDUTY_INTAKE_KEYS_FILE"):
        path = Path(env[name])
        volume = volumes[mounts[str(path.parent)]]
        assert volume["secret"]["secretName"].startswith("tocsin-gateway"), name
        assert not volume["secret"].get("optional"), "no credentials Secret, no gateway"
        secret = find(overlay, "Secret", volume["secret"]["secretName"])
        secret_keys[name] = base64.b64decode(secret["data"][path.name]).decode().strip()
    # the example's placeholders are empty: its gateway refuses to start until given a token
    if not any(secret_keys.values()):
        with pytest.raises(click.ClickException, match="TOCSIN_GATEWAY_TOKENS"):
            open_access(host, set(), set(), slack=False, insecure=False)


def test_the_api_service_and_ingress_reach_the_api_pods_and_nothing_internal(
    overlay: list[Doc],
) -> None:
    service = find(overlay, "Service", "tocsin-api")
    assert _selected(overlay, service["spec"]["selector"]) == ["tocsin-api"]
    container = pod_spec(find(overlay, "Deployment", "tocsin-api"))["containers"][0]
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= {
        p["name"] for p in container["ports"]
    }
    ingress = find(overlay, "Ingress", "tocsin-api")
    paths = [p for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    assert {p["backend"]["service"]["name"] for p in paths} == {"tocsin-api"}
    assert sorted(p["path"] for p in paths) == ["/api/v1", "/console"]
    gateway_hosts = {r["host"] for r in find(overlay, "Ingress", "tocsin-gateway")["spec"]["rules"]}
    assert not gateway_hosts & {r["host"] for r in ingress["spec"]["rules"]}, (
        "the gateway's /api/v1/write stays the gateway's"
    )


def test_the_projector_and_the_api_read_the_store_dsn_from_the_required_secret(
    overlay: list[Doc],
) -> None:
    for worker in ("projector", "api"):
        deployment = find(overlay, "Deployment", f"tocsin-{worker}")
        container = pod_spec(deployment)["containers"][0]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["TOCSIN_STORE_DSN_FILE"] == "/var/run/secrets/tocsin/store/dsn"
        assert not any(k in env for k in ("TOCSIN_STORE_DSN", "TOCSIN_STORE_PATH"))
        volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
        store = volumes["store"]["secret"]
        assert store["secretName"].startswith("tocsin-store-") and not store.get("optional")
    api = pod_spec(find(overlay, "Deployment", "tocsin-api"))["containers"][0]
    env = {e["name"]: e.get("value") for e in api["env"]}
    assert env["TOCSIN_CONSOLE_SECRET_FILE"] == "/var/run/secrets/tocsin/console/secret"
