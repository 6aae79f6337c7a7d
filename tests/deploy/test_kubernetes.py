"""k8s/: both overlays build, validate strictly against the Kubernetes 1.30 schemas, pass
checkov, and every workload keeps its security context, probes, limits, HPA and the connection
budget (so a later edit cannot silently drop them)."""

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.deploy.conftest import REPO_ROOT, load_all_yaml, run, tool

K8S = REPO_ROOT / "k8s"
OVERLAYS = ("dev", "prod")
SERVICES = {"api-gateway": 5000, "pedidos-service": 5001, "pagamentos-service": 5002,
            "estoque-service": 5003}
DATABASE_SERVICES = ("pedidos-service", "pagamentos-service", "estoque-service")
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}
NEEDS_API_TOKEN = {"prometheus", "alloy"}  # pod discovery / log tailing through the API
LONGEST_SAGA_SECONDS = 15  # the gateway's read timeout of pedidos (PEDIDOS_READ_TIMEOUT_SECONDS)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, Path]:
    kubectl = tool("kubectl")
    folder = tmp_path_factory.mktemp("rendered")
    files = {}
    for overlay in OVERLAYS:
        result = run([kubectl, "kustomize", "--load-restrictor", "LoadRestrictionsNone",
                      str(K8S / "overlays" / overlay)])
        assert result.returncode == 0, result.stderr
        files[overlay] = folder / f"{overlay}.yaml"
        files[overlay].write_text(result.stdout)
    return files


@pytest.fixture(scope="module", params=OVERLAYS)
def objects(request, rendered) -> list[dict]:
    return load_all_yaml(rendered[request.param].read_text())


def find(objects, kind, name=None) -> list[dict]:
    return [o for o in objects if o["kind"] == kind
            and (name is None or o["metadata"]["name"] == name)]


def workloads(objects) -> list[dict]:
    return [o for o in objects if o["kind"] in WORKLOAD_KINDS]


def pod_spec(workload) -> dict:
    return workload["spec"]["template"]["spec"]


def containers(workload) -> list[dict]:
    spec = pod_spec(workload)
    return spec.get("initContainers", []) + spec["containers"]


def test_both_overlays_build_the_whole_platform(objects):
    deployments = {o["metadata"]["name"] for o in find(objects, "Deployment")}
    assert deployments >= {*SERVICES, "estoque-sweeper", "pedidos-recovery", "pgbouncer",
                           "redis", "grafana", "alertmanager"}
    assert {o["metadata"]["name"] for o in find(objects, "StatefulSet")} >= {"prometheus",
                                                                             "loki"}
    assert find(objects, "DaemonSet", "alloy")
    assert find(objects, "Job", "migrate")
    assert find(objects, "Ingress", "api-gateway")
    assert all(o["metadata"].get("namespace") == "pedidos-veloz"
               for o in objects if o["kind"] != "Namespace")


def test_dev_runs_postgres_in_the_cluster_and_prod_points_at_rds(rendered):
    dev, prod = (load_all_yaml(rendered[o].read_text()) for o in OVERLAYS)
    claims = find(dev, "StatefulSet", "postgres")[0]["spec"]["volumeClaimTemplates"]
    assert claims[0]["spec"]["resources"]["requests"]["storage"]
    assert not find(prod, "StatefulSet", "postgres")
    service = find(prod, "Service", "postgres")[0]
    assert service["spec"]["type"] == "ExternalName"
    assert "clusterIP" not in service["spec"]
    assert "selector" not in service["spec"]
    ini = find(prod, "ConfigMap", "pgbouncer-config")[0]["data"]["pgbouncer.ini"]
    assert "server_tls_sslmode = require" in ini


def test_every_object_validates_strictly_against_the_kubernetes_1_30_schemas(rendered):
    files = [str(path) for path in rendered.values()] + [str(K8S / "base" / "secrets.yml")]
    result = run([tool("kubernetes-validate"), "--kubernetes-version", "1.30.0", "--strict",
                  "--quiet", *files])
    assert result.returncode == 0, result.stdout + result.stderr


def test_checkov_fails_nothing_and_every_skip_says_why(rendered):
    config = K8S / ".checkov.yaml"
    command = [tool("checkov"), "--config-file", str(config), "--skip-download", "--compact",
               "--output", "json"]
    for path in rendered.values():
        command += ["--file", str(path)]
    result = run(command)
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [f"{c['check_id']} {c['resource']}" for r in reports
              for c in r["results"]["failed_checks"]]
    assert not failed, "\n".join(failed)
    skipped = [c for r in reports for c in r["results"]["skipped_checks"]]
    assert all(c["check_result"].get("suppress_comment", "").strip() for c in skipped)
    for line in config.read_text().splitlines():
        if re.match(r"\s*- CKV", line):
            assert re.search(r"#\s*\S.{20,}", line), f"no reason written for: {line.strip()}"


def test_every_workload_runs_non_root_read_only_without_capabilities_within_limits(objects):
    for workload in workloads(objects):
        name, spec = workload["metadata"]["name"], pod_spec(workload)
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, name
        assert pod["runAsUser"] >= 10000, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is (name in NEEDS_API_TOKEN), name
        for container in containers(workload):
            where = f"{name}/{container['name']}"
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["capabilities"] == {"drop": ["ALL"]}, where
            for bound in ("requests", "limits"):
                assert set(container["resources"][bound]) >= {"cpu", "memory"}, where


def test_every_long_running_container_has_startup_liveness_and_readiness_probes(objects):
    for workload in workloads(objects):
        if workload["kind"] == "Job":
            continue
        for container in workload["spec"]["template"]["spec"]["containers"]:
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                assert probe in container, f"{workload['metadata']['name']}: {probe}"


def graceful_timeout(objects) -> int:
    return int(find(objects, "ConfigMap", "pedidos-veloz-config")[0]["data"]["GRACEFUL_TIMEOUT"])


def test_services_probe_livez_and_readyz_roll_without_loss_and_stop_gracefully(objects):
    graceful = graceful_timeout(objects)
    assert graceful > LONGEST_SAGA_SECONDS
    for name, port in SERVICES.items():
        deployment = find(objects, "Deployment", name)[0]
        spec = pod_spec(deployment)
        container = spec["containers"][0]
        assert container["ports"][0] == {"name": "http", "containerPort": port}
        assert [p["name"] for p in container["ports"]] == (
            ["http", "metrics"] if name == "api-gateway" else ["http"]), name
        paths = {probe: container[probe]["httpGet"]["path"]
                 for probe in ("startupProbe", "livenessProbe", "readinessProbe")}
        assert paths == {"startupProbe": "/livez", "livenessProbe": "/livez",
                         "readinessProbe": "/readyz"}, name
        rolling = deployment["spec"]["strategy"]
        assert rolling["type"] == "RollingUpdate", name
        assert rolling["rollingUpdate"]["maxUnavailable"] == 0, name
        keys = {c["topologyKey"] for c in spec["topologySpreadConstraints"]}
        assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}, name
        pre_stop_command = container["lifecycle"]["preStop"]["exec"]["command"]
        assert pre_stop_command[:3] == ["python", "-m", "veloz.run.drain"], name
        pre_stop = int(pre_stop_command[-1])
        readiness = container["readinessProbe"]
        # Readiness notices the drain marker, and endpoints drop the pod, before the pause
        # ends and SIGTERM arrives; the server then has its graceful timeout in the grace.
        assert readiness["periodSeconds"] * readiness["failureThreshold"] + 2 < pre_stop, name
        assert spec["terminationGracePeriodSeconds"] > pre_stop + graceful, name
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"], name


def test_a_told_to_stop_pod_fails_readiness_and_disruptions_keep_one_pod_ready(objects):
    config = find(objects, "ConfigMap", "pedidos-veloz-config")[0]["data"]
    assert config["DRAIN_FILE"].startswith("/tmp/")  # the writable emptyDir
    budgets = {pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]: pdb["spec"]
               for pdb in find(objects, "PodDisruptionBudget")}
    scaling = {hpa["spec"]["scaleTargetRef"]["name"]: hpa["spec"]
               for hpa in find(objects, "HorizontalPodAutoscaler")}
    for name in SERVICES:
        assert budgets[name].get("minAvailable", 0) >= 1, name
        assert scaling[name]["minReplicas"] > budgets[name]["minAvailable"], name


def test_every_service_scales_on_cpu_70_and_memory_80(objects):
    for name in SERVICES:
        hpa = find(objects, "HorizontalPodAutoscaler", name)[0]
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1",
                                                 "kind": "Deployment", "name": name}
        targets = {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"]
                   for m in hpa["spec"]["metrics"]}
        assert targets == {"cpu": 70, "memory": 80}, name
        assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"] <= 10, name
        assert find(objects, "PodDisruptionBudget", name), name


def pgbouncer_settings(objects) -> dict[str, str]:
    ini = find(objects, "ConfigMap", "pgbouncer-config")[0]["data"]["pgbouncer.ini"]
    return dict(re.findall(r"^(\w+) = (.*)$", ini, flags=re.MULTILINE))


def test_connection_budget_survives_autoscaling(objects):
    config = find(objects, "ConfigMap", "pedidos-veloz-config")[0]["data"]
    per_worker = 2 * int(config["DB_POOL_SIZE"])  # pool + as many again on overflow
    per_pod = int(config["WEB_CONCURRENCY"]) * per_worker
    clients = sum(find(objects, "HorizontalPodAutoscaler", name)[0]["spec"]["maxReplicas"]
                  * per_pod for name in DATABASE_SERVICES)
    clients += sum(find(objects, "Deployment", name)[0]["spec"]["replicas"] * per_worker
                   for name in ("estoque-sweeper", "pedidos-recovery"))
    bouncer = pgbouncer_settings(objects)
    pgbouncer = find(objects, "Deployment", "pgbouncer")[0]
    assert not find(objects, "HorizontalPodAutoscaler", "pgbouncer")
    assert bouncer["pool_mode"] == "transaction"
    assert clients <= int(bouncer["max_client_conn"])
    databases = len(DATABASE_SERVICES)
    server = pgbouncer["spec"]["replicas"] * databases * int(bouncer["max_db_connections"])
    migrations, superuser_reserve, max_connections = databases, 3, 200
    assert server + migrations + superuser_reserve < max_connections < clients
    assert int(bouncer["max_prepared_statements"]) > 0  # psycopg's prepared statements
    assert "statement_timeout" in bouncer["track_extra_parameters"]
    postgres = find(objects, "StatefulSet", "postgres")
    if postgres:
        arguments = postgres[0]["spec"]["template"]["spec"]["containers"][0]["args"]
        assert f"max_connections={max_connections}" in arguments


def test_application_pods_reach_the_database_only_through_pgbouncer(objects):
    for workload in workloads(objects):
        for container in containers(workload):
            for variable in container.get("env", []):
                if variable["name"] == "DATABASE_URL":
                    key = variable["valueFrom"]["secretKeyRef"]["key"]
                    expected = "MIGRATION_URL" if workload["kind"] == "Job" else "DATABASE_URL"
                    assert key.endswith(expected), workload["metadata"]["name"]


def test_network_is_denied_by_default_and_pods_get_no_api_token(objects):
    deny = find(objects, "NetworkPolicy", "default-deny-all")[0]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    assert find(objects, "NetworkPolicy", "allow-dns")
    namespace = find(objects, "Namespace", "pedidos-veloz")[0]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for account in find(objects, "ServiceAccount"):
        expected = account["metadata"]["name"] in NEEDS_API_TOKEN
        assert account["automountServiceAccountToken"] is expected


def selects(selector: dict, labels: dict) -> bool:
    """A label selector (matchLabels, matchExpressions with In) against a pod's labels."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    return all(expression["operator"] == "In" and labels.get(expression["key"])
               in expression["values"] for expression in selector.get("matchExpressions", []))


def admitted(objects, labels: dict) -> dict[int, list[dict]]:
    """Port -> the peers the namespace's NetworkPolicies let in to a pod with `labels`."""
    peers: dict[int, list[dict]] = {}
    for policy in find(objects, "NetworkPolicy"):
        if not selects(policy["spec"]["podSelector"], labels):
            continue
        for rule in policy["spec"].get("ingress", []):
            for port in rule.get("ports", []):
                peers.setdefault(port["port"], []).extend(rule["from"])
    return peers


def test_only_prometheus_reaches_the_gateways_metrics_port_and_only_the_ingress_its_api(objects):
    gateway = find(objects, "Deployment", "api-gateway")[0]
    template = gateway["spec"]["template"]
    container = template["spec"]["containers"][0]
    env = {variable["name"]: variable.get("value") for variable in container["env"]}
    metrics_port = int(env["METRICS_BIND"].rpartition(":")[2])
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    service = find(objects, "Service", "api-gateway")[0]

    assert ports == {"http": 5000, "metrics": metrics_port}
    assert template["metadata"]["annotations"]["prometheus.io/port"] == str(metrics_port)
    assert [port["targetPort"] for port in service["spec"]["ports"]] == ["http"]
    peers = admitted(objects, template["metadata"]["labels"])
    assert peers[metrics_port] == [{"podSelector": {"matchLabels": {
        "app.kubernetes.io/name": "prometheus"}}}]
    assert peers[5000] == [{"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "ingress-nginx"}}}]


def test_secrets_file_holds_placeholders_for_every_secret_the_workloads_read(objects):
    secrets = {s["metadata"]["name"]: s["stringData"] for s in
               yaml.safe_load_all((K8S / "base" / "secrets.yml").read_text())}
    assert all("REPLACE" in value for data in secrets.values()
               for key, value in data.items() if not key.endswith("_USER"))  # a name is no secret
    assert not find(objects, "Secret")  # never applied with an overlay
    for workload in workloads(objects):
        for container in containers(workload):
            for variable in container.get("env", []):
                ref = variable.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in secrets[ref["name"]]
            for source in container.get("envFrom", []):
                if "secretRef" in source:
                    assert source["secretRef"]["name"] in secrets


def test_monitoring_config_maps_carry_every_rule_file_and_dashboard():
    monitoring = REPO_ROOT / "monitoring"
    if not monitoring.exists():
        pytest.skip("monitoring/ has not landed yet")
    generators = {g["name"]: g["files"] for g in yaml.safe_load(
        (K8S / "base" / "kustomization.yml").read_text())["configMapGenerator"]}
    for generator, folder, pattern in (("prometheus-rules", "prometheus/rules", "*.yml"),
                                       ("grafana-dashboards", "grafana/dashboards", "*.json")):
        on_disk = {p.name for p in (monitoring / folder).glob(pattern)}
        assert {Path(f).name for f in generators[generator]} == on_disk, generator
