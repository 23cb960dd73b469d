"""The Kubernetes manifests, rendered the way region IT applies them (`kubectl kustomize`).

Offline: no cluster needed, only kubectl. Each test names what region IT relies on: a pod that
starts and stays hardened, a service that gets every setting it cannot do without, a migration
before start, alerts and dashboards that query metrics the code really exposes.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from lob_cli.services import SERVICES

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = sorted(p.parent.name for p in (K8S / "overlays").glob("*/kustomization.yaml"))
METRICS_PY = ROOT / "libs" / "common" / "lob_common" / "metrics.py"
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"

PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}")
EXPANSION = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


# --- rendering -------------------------------------------------------------------------------


@cache
def render(overlay: str) -> tuple[dict[str, Any], ...]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail(
            "kubectl is not on PATH: these tests render deploy/k8s with `kubectl kustomize`. "
            "Install kubectl (https://kubernetes.io/docs/tasks/tools/); CI has it."
        )
    result = subprocess.run(
        [kubectl, "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"`kubectl kustomize overlays/{overlay}` failed:\n{result.stderr}")
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def of_kind(overlay: str, kind: str) -> list[dict[str, Any]]:
    return [doc for doc in render(overlay) if doc["kind"] == kind]


def named(overlay: str, kind: str, name: str) -> dict[str, Any] | None:
    return next((d for d in of_kind(overlay, kind) if d["metadata"]["name"] == name), None)


def deployments(overlay: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in of_kind(overlay, "Deployment")}


def pod_spec(deployment: dict[str, Any]) -> dict[str, Any]:
    return deployment["spec"]["template"]["spec"]


def main_container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = pod_spec(deployment)["containers"]
    assert len(containers) == 1, f"{deployment['metadata']['name']}: expected one container"
    return containers[0]


def all_containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(deployment)
    return spec.get("initContainers", []) + spec["containers"]


def command_line(container: dict[str, Any]) -> list[str]:
    return [*container.get("command", []), *container.get("args", [])]


def environment(overlay: str, container: dict[str, Any]) -> dict[str, str]:
    """What the container's environment holds, in definition order: plain values as they are,
    ConfigMap values resolved, Secret values as `secret:<name>/<key>`."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef")
        assert ref, f"{container['name']}: only ConfigMaps are expected in envFrom, got {source}"
        config_map = named(overlay, "ConfigMap", ref["name"])
        assert config_map, f"{container['name']} reads ConfigMap {ref['name']}: not rendered"
        env.update(config_map.get("data", {}))
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
        elif "secretKeyRef" in var.get("valueFrom", {}):
            ref = var["valueFrom"]["secretKeyRef"]
            env[var["name"]] = f"secret:{ref['name']}/{ref['key']}"
        elif "configMapKeyRef" in var.get("valueFrom", {}):
            ref = var["valueFrom"]["configMapKeyRef"]
            config_map = named(overlay, "ConfigMap", ref["name"])
            assert config_map, f"{var['name']} reads ConfigMap {ref['name']}, which is not rendered"
            env[var["name"]] = config_map["data"][ref["key"]]
        else:
            env[var["name"]] = "<from the pod>"
    return env


def secret_refs(deployment: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (var["valueFrom"]["secretKeyRef"]["name"], var["valueFrom"]["secretKeyRef"]["key"])
        for container in all_containers(deployment)
        for var in container.get("env", [])
        if "secretKeyRef" in var.get("valueFrom", {})
    }


# --- what the code says ----------------------------------------------------------------------


def config_placeholders(service: str) -> dict[str, tuple[str, str | None]]:
    """config.yml key -> (environment variable, default or None when there is none)."""
    text = SERVICES[service].config_path.read_text(encoding="utf-8")
    found = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        match = PLACEHOLDER.search(value)
        if match and not line.lstrip().startswith("#"):
            default = match.group(2)
            found[key.strip()] = (match.group(1), default if default else None)
    return found


def exposed_metric_names() -> set[str]:
    """The series names prometheus_client exposes for each metric defined in metrics.py."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(METRICS_PY.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args):
            continue
        first = node.args[0]
        if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
            continue
        name, kind = first.value, node.func.id
        if kind == "Counter":
            base = name.removesuffix("_total")
            names |= {f"{base}_total", f"{base}_created"}
        elif kind == "Gauge":
            names.add(name)
        elif kind in ("Histogram", "Summary"):
            names |= {f"{name}_{s}" for s in ("bucket", "sum", "count", "created")}
            if kind == "Summary":
                names.add(name)
    assert names, f"no metric definitions found in {METRICS_PY}"
    return names


def lob_metrics_in(expression: str) -> set[str]:
    return set(re.findall(r"\blob_[a-zA-Z0-9_]+", expression))


def rule_expressions(overlay: str) -> dict[str, str]:
    return {
        rule.get("alert") or rule.get("record"): rule["expr"]
        for doc in of_kind(overlay, "PrometheusRule")
        for group in doc["spec"]["groups"]
        for rule in group["rules"]
    }


def dashboards(overlay: str) -> dict[str, dict[str, Any]]:
    found = {}
    for config_map in of_kind(overlay, "ConfigMap"):
        if config_map["metadata"].get("labels", {}).get("grafana_dashboard") == "1":
            for key, text in config_map.get("data", {}).items():
                found[key] = json.loads(text)
    return found


def dashboard_expressions(dashboard: dict[str, Any]) -> dict[str, str]:
    return {
        f"{panel['title']} [{target.get('refId')}]": target["expr"]
        for panel in dashboard.get("panels", [])
        for target in panel.get("targets", [])
        if "expr" in target
    }


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values")
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


# --- the tests -------------------------------------------------------------------------------


def test_there_are_overlays_to_apply():
    assert {"staging", "production"} <= set(OVERLAYS), f"overlays found: {OVERLAYS}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_one_deployment_per_service(overlay):
    assert set(deployments(overlay)) == set(SERVICES), (
        f"{overlay}: Deployments {sorted(deployments(overlay))}, services {sorted(SERVICES)}"
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_requests_and_limits(overlay):
    for name, deployment in deployments(overlay).items():
        for container in all_containers(deployment):
            resources = container.get("resources", {})
            for bound in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    assert resource in resources.get(bound, {}), (
                        f"{overlay}/{name}/{container['name']}: no {resource} in {bound}"
                    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_ask_the_service_on_its_own_port(overlay):
    for name, deployment in deployments(overlay).items():
        container = main_container(deployment)
        ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
        assert ports, f"{overlay}/{name}: the container declares no port"
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            http = container.get(probe, {}).get("httpGet")
            assert http, f"{overlay}/{name}: no HTTP {probe}"
            assert http["path"] == path, f"{overlay}/{name}: {probe} asks {http['path']}"
            port = ports.get(http["port"], http["port"])
            assert port in ports.values(), (
                f"{overlay}/{name}: {probe} port {http['port']} is not a container port {ports}"
            )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_binds_all_interfaces_on_the_probed_port(overlay):
    """Otherwise the service listens on 127.0.0.1 and every probe fails."""
    for name, deployment in deployments(overlay).items():
        container = main_container(deployment)
        variable, _ = config_placeholders(name)["WEB_SERVER_ADDRESS"]
        address = environment(overlay, container).get(variable)
        port = container["ports"][0]["containerPort"]
        assert address == f"0.0.0.0:{port}", f"{overlay}/{name}: {variable}={address!r}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_run_hardened(overlay):
    for name, deployment in deployments(overlay).items():
        spec = pod_spec(deployment)
        pod_security = spec.get("securityContext", {})
        for container in all_containers(deployment):
            where = f"{overlay}/{name}/{container['name']}"
            security = {**pod_security, **container.get("securityContext", {})}
            assert security.get("runAsNonRoot") is True, f"{where}: runAsNonRoot is not true"
            assert security.get("readOnlyRootFilesystem") is True, f"{where}: root fs writable"
            assert security.get("allowPrivilegeEscalation") is False, (
                f"{where}: allowPrivilegeEscalation is not false"
            )
            dropped = security.get("capabilities", {}).get("drop", [])
            assert "ALL" in dropped, f"{where}: capabilities not dropped (drop={dropped})"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_python_gets_a_writable_tmp_and_writes_no_bytecode(overlay):
    for name, deployment in deployments(overlay).items():
        volumes = {v["name"]: v for v in pod_spec(deployment).get("volumes", [])}
        for container in all_containers(deployment):
            where = f"{overlay}/{name}/{container['name']}"
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            assert "/tmp" in mounts, f"{where}: nothing mounted at /tmp"
            assert "emptyDir" in volumes[mounts["/tmp"]], f"{where}: /tmp is not an emptyDir"
            env = environment(overlay, container)
            assert env.get("PYTHONDONTWRITEBYTECODE") == "1", f"{where}: PYTHONDONTWRITEBYTECODE"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_migrations_run_before_the_service_starts(overlay):
    for name, deployment in deployments(overlay).items():
        init = pod_spec(deployment).get("initContainers", [])
        commands = [command_line(c) for c in init]
        assert ["lob", "migrate", name] in commands, (
            f"{overlay}/{name}: no init container runs `lob migrate {name}` (found {commands})"
        )
        env = environment(overlay, main_container(deployment))
        assert env.get("DB_MIGRATE_ON_START") == "false", (
            f"{overlay}/{name}: the service migrates again on start (DB_MIGRATE_ON_START="
            f"{env.get('DB_MIGRATE_ON_START')!r})"
        )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_deployment_starts_its_own_service_class(overlay):
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    for name, deployment in deployments(overlay).items():
        expected = ["nameko", "run", "--config", f"/etc/lob/{name}.yml", SERVICES[name].entry]
        actual = command_line(main_container(deployment))
        assert actual == expected, f"{overlay}/{name}: runs {actual}, expected {expected}"
        assert "/etc/lob/" in dockerfile and name in dockerfile, (
            f"the Dockerfile does not create /etc/lob/{name}.yml that {name} starts with"
        )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_settings_without_a_default_are_set(overlay):
    """A `${VAR}` or `${VAR:}` in config.yml has no usable default: the Deployment must set it."""
    for name, deployment in deployments(overlay).items():
        required = {var for var, default in config_placeholders(name).values() if default is None}
        env = environment(overlay, main_container(deployment))
        missing = required - set(env)
        assert not missing, f"{overlay}/{name}: {sorted(missing)} not set"
        for var in ("AMQP_URI", config_placeholders(name)["DATABASE_URL"][0]):
            assert var in env, f"{overlay}/{name}: {var} not set"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_database_url_is_postgresql_built_from_defined_variables(overlay):
    for name, deployment in deployments(overlay).items():
        variable = config_placeholders(name)["DATABASE_URL"][0]
        for container in all_containers(deployment):
            where = f"{overlay}/{name}/{container['name']}"
            env = environment(overlay, container)
            assert variable in env, f"{where}: {variable} not set"
            url = env[variable]
            assert url.startswith("postgresql+psycopg2://"), f"{where}: {variable}={url!r}"
            # Kubernetes expands $(VAR) only from variables defined before it.
            earlier = list(env)[: list(env).index(variable)]
            for ref in EXPANSION.findall(url):
                assert ref in earlier, (
                    f"{where}: {variable} uses $({ref}), which is not defined before it"
                )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_one_image_for_every_container(overlay):
    images = {
        container["image"]
        for deployment in deployments(overlay).values()
        for container in all_containers(deployment)
    }
    assert len(images) == 1, f"{overlay}: several images {sorted(images)}"
    (image,) = images
    assert ":" in image.rsplit("/", 1)[-1] or "@" in image, f"{overlay}: image {image} has no tag"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_operator_resources_match_what_the_services_connect_to(overlay):
    """The secrets and hosts in the Deployments are the ones the operators create."""
    refs = {ref for d in deployments(overlay).values() for ref in secret_refs(d)}
    for cluster in of_kind(overlay, "RabbitmqCluster"):
        expected = (f"{cluster['metadata']['name']}-default-user", "connection_string")
        assert expected in refs, f"{overlay}: no service reads {expected} as AMQP_URI"
    for cluster in of_kind(overlay, "Cluster"):
        cluster_name = cluster["metadata"]["name"]
        role_secrets = {
            role["name"]: role.get("passwordSecret", {}).get("name")
            for role in cluster["spec"].get("managed", {}).get("roles", [])
        }
        databases = {
            d["spec"]["name"]: d["spec"]["owner"]
            for d in of_kind(overlay, "Database")
            if d["spec"]["cluster"]["name"] == cluster_name
        }
        for name, deployment in deployments(overlay).items():
            env = environment(overlay, main_container(deployment))
            url = env[config_placeholders(name)["DATABASE_URL"][0]]
            database = url.rsplit("/", 1)[-1]
            assert env.get("DB_HOST") == f"{cluster_name}-rw", (
                f"{overlay}/{name}: DB_HOST={env.get('DB_HOST')!r}, cluster is {cluster_name}"
            )
            assert database in databases, f"{overlay}: no Database {database!r} for {name}"
            owner = databases[database]
            user_secret = env["DB_USER"].removeprefix("secret:").split("/")[0]
            assert role_secrets.get(owner) == user_secret, (
                f"{overlay}/{name}: logs in with Secret {user_secret}, but the owner role "
                f"{owner!r} of database {database!r} takes its password from "
                f"{role_secrets.get(owner)}"
            )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_secret_the_pods_need_is_documented(overlay):
    doc = DEPLOY_DOC.read_text(encoding="utf-8")
    for name, deployment in deployments(overlay).items():
        for secret, key in sorted(secret_refs(deployment)):
            assert secret in doc and key in doc, (
                f"{overlay}/{name} needs Secret {secret} (key {key}); docs/deploy.md does not say"
            )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_has_a_service_and_a_disruption_budget(overlay):
    for name, deployment in deployments(overlay).items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        services = [s for s in of_kind(overlay, "Service") if s["spec"].get("selector")]
        assert any(
            s["spec"]["selector"].items() <= labels.items()
            and any(p.get("targetPort") == "http" for p in s["spec"]["ports"])
            for s in services
        ), f"{overlay}/{name}: no Service sends port http to its pods"
        assert any(
            selects(p["spec"]["selector"], labels) for p in of_kind(overlay, "PodDisruptionBudget")
        ), f"{overlay}/{name}: no PodDisruptionBudget"
    autoscalers = of_kind(overlay, "HorizontalPodAutoscaler")
    targets = {h["spec"]["scaleTargetRef"]["name"] for h in autoscalers}
    assert "registration" in targets, f"{overlay}: registration is not autoscaled"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_registration_and_reporting_take_traffic_from_outside(overlay):
    policies = of_kind(overlay, "NetworkPolicy")
    for name, deployment in deployments(overlay).items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        applying = [p for p in policies if selects(p["spec"]["podSelector"], labels)]
        types = {t for p in applying for t in p["spec"].get("policyTypes", [])}
        assert {"Ingress", "Egress"} <= types, f"{overlay}/{name}: traffic not restricted ({types})"
        for policy in applying:
            for rule in policy["spec"].get("ingress", []):
                peers = rule.get("from", [])
                only_prometheus = peers and all(
                    peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name")
                    == "prometheus"
                    for peer in peers
                )
                assert only_prometheus or name in ("registration", "reporting"), (
                    f"{overlay}: NetworkPolicy {policy['metadata']['name']} lets "
                    f"{peers or 'anyone'} reach {name}"
                )
    backends = {
        path["backend"]["service"]["name"]
        for ingress in of_kind(overlay, "Ingress")
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert backends <= {"registration", "reporting"}, f"{overlay}: Ingress reaches {backends}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_alerts_and_dashboards_query_metrics_the_code_exposes(overlay):
    exposed = exposed_metric_names()
    expressions = {f"alert {k}": v for k, v in rule_expressions(overlay).items()}
    for file, dashboard in dashboards(overlay).items():
        expressions |= {f"{file}: {k}": v for k, v in dashboard_expressions(dashboard).items()}
    assert expressions, f"{overlay}: no PrometheusRule or dashboard rendered"
    for where, expression in expressions.items():
        unknown = lob_metrics_in(expression) - exposed
        assert not unknown, f"{overlay}: {where} queries {sorted(unknown)}, not in metrics.py"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_operators_are_alerted_on_what_hurts_users(overlay):
    used = " ".join(rule_expressions(overlay).values())
    for metric, why in (
        ("lob_dead_letters", "parked messages"),
        ("lob_outbox_oldest_pending_seconds", "events not leaving the outbox"),
        ('lob_notifications_total{status="failed"', "emails given up"),
        ("kube_deployment_status_replicas_available", "pods not ready"),
        ('lob_http_requests_total{status=~"5..', "HTTP 5xx"),
    ):
        assert metric in used, f"{overlay}: no alert on {why} ({metric})"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_dashboard_shows_the_flow_of_the_season(overlay):
    boards = dashboards(overlay)
    assert boards, f"{overlay}: no ConfigMap labelled grafana_dashboard: '1'"
    used = " ".join(e for board in boards.values() for e in dashboard_expressions(board).values())
    for metric in (
        "lob_sign_ups_total",
        "lob_events_consumed_total",
        "lob_outbox_oldest_pending_seconds",
        "lob_dead_letters",
        "lob_http_request_duration_seconds_bucket",
        "lob_notifications_total",
    ):
        assert metric in used, f"{overlay}: the dashboard has no panel on {metric}"


def test_image_installs_every_package_the_makefile_installs():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8").replace("\\\n", " ")
    packages = re.search(r"^PACKAGES := (.+)$", makefile, re.MULTILINE).group(1).split()
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    assert "requirements.lock" in dockerfile, "the image does not install the pinned lock"
    for package in packages:
        assert package in dockerfile, f"the image does not install {package}"
    dev_packages = re.search(r"^DEV_PACKAGES := (\S+)", makefile, re.MULTILINE).group(1).split()
    for package in dev_packages:
        assert package not in dockerfile, f"the runtime image installs the dev package {package}"


def http_routes(service_class: type) -> set[str]:
    """Every URL rule of a service's HTTP entrypoints (nameko's, as the service declares them)."""
    import inspect

    from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR

    return {
        extension.url
        for _, method in inspect.getmembers(service_class)
        for extension in getattr(method, ENTRYPOINT_EXTENSIONS_ATTR, ())
        if hasattr(extension, "url")
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_ingress_routes_every_registration_address_to_registration(overlay):
    """Schools call the API, parents and participants open the links in their mails: each of
    registration's addresses must reach it from outside (a missing path is a 404 for a parent)."""
    from registration.service import RegistrationService

    routes = [
        (path["path"], path["pathType"], path["backend"]["service"]["name"])
        for ingress in of_kind(overlay, "Ingress")
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]

    def reaches(url: str) -> str | None:
        for path, kind, service in routes:
            if url == path or (kind == "Prefix" and url.startswith(path.rstrip("/") + "/")):
                return service
        return None

    for url in http_routes(RegistrationService):
        assert reaches(url) == "registration", f"{overlay}: {url} does not reach registration"
