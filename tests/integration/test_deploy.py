"""The deployment files agree with each other and with the code: fast, no network, no docker.

- docker-compose.yml: every service has an image or a build, depends_on names services with a condition
  they can meet, named volumes are declared, bind mounts exist, published ports are unique and local,
  UYTHAC_* variables are real settings and every uythac command parses with the real CLI.
- The reverse proxy: compose's nginx renders deploy/nginx/uythac.conf.template with every placeholder
  set (as nginxctl does on a host), proxies to the api service's bind and is the only way in to the API.
- Prometheus: the scrape targets are compose services on the ports the settings give them; the alert
  rules are complete and explain themselves; alerts_test.yml has a firing and a quiet case per alert.
- Grafana: the provisioning points at the folder compose mounts the dashboard into; the dashboard has
  unique panel ids, a layout without overlaps, and reads Prometheus only through its datasource variable.
- Every PromQL expression (alerts, panels, variables) is parsed by promql-parser, a port of Prometheus's
  own parser (syntax, function arity and argument types), and reads only series that uythac exports
  (`uythac.metrics`: a Counter `x` is scraped as `x_total`, a Histogram as `x_bucket/_sum/_count`) or
  Prometheus's `up`, with label matchers and groupings that name labels those series have.
- promtool (Debian package `prometheus`), when installed, checks the config and runs alerts_test.yml.
  Under CI it is required; elsewhere its test is skipped with the reason.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path, PurePosixPath
from typing import Any

import promql_parser
import pytest
import sqlalchemy as sa
import yaml
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

from uythac import bootstrap, metrics, settings
from uythac.entrypoints import cli

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
NGINX_DIR = ROOT / "deploy" / "nginx"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
GRAFANA_DIR = ROOT / "deploy" / "grafana"
DASHBOARD_FILE = GRAFANA_DIR / "dashboards" / "uythac.json"
UYTHAC_IMAGE = "uythac:local"
WORKER_JOB, API_JOB = "uythac-worker", "uythac-api"

# The alerts the issues ask for (more may exist).
REQUIRED_ALERTS = {
    "UythacWorkerDown",
    "UythacConsumerLagGrowing",
    "UythacEventsRejected",
    "UythacNoEventsForADay",
    "UythacOpenFlagsRising",
    "UythacMissedInactiveLoanInspectionsRising",
    "UythacOutboxNotDraining",
    "UythacApiErrors",
    "UythacApiSlow",
}

# The API's gauges read from the store at scrape time are only names in uythac.metrics; their labels are
# documented there in comments, and repeated here.
STORE_GAUGE_LABELS = {
    metrics.OPEN_FLAGS_NAME: {"district_id"},
    metrics.UNITS_NAME: {"district_id", "org", "class"},
    metrics.DUTIES_NAME: {"district_id", "duty", "status"},
    metrics.STORE_CLOCK_NAME: set(),
}


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as stream:
        return yaml.safe_load(stream)


# --- what uythac exports -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    job: str | None  # the scrape job that exposes it (None: every job, like `up`)
    labels: frozenset[str]


def _scraped_names(metric: MetricWrapperBase) -> dict[str, frozenset[str]]:
    """The series names a prometheus_client metric is scraped as, with their labels."""
    family = metric.describe()[0].name  # a Counter's family name has no `_total`
    labels = frozenset(metric._labelnames)
    if isinstance(metric, Counter):
        return {f"{family}_total": labels, f"{family}_created": labels}
    if isinstance(metric, Histogram):
        return {
            f"{family}_bucket": labels | {"le"},
            f"{family}_sum": labels,
            f"{family}_count": labels,
            f"{family}_created": labels,
        }
    if isinstance(metric, Gauge):
        return {family: labels}
    raise AssertionError(f"{family}: no scrape naming rule for {type(metric).__name__}")


def exported_series() -> dict[str, Series]:
    series: dict[str, Series] = {"up": Series(None, frozenset())}
    made = [(API_JOB, value) for value in vars(metrics).values() if isinstance(value, MetricWrapperBase)]
    made += [(WORKER_JOB, value) for value in vars(metrics.worker()).values()]
    for job, value in made:
        series.update({name: Series(job, labels) for name, labels in _scraped_names(value).items()})
    store_gauges = {v for k, v in vars(metrics).items() if k.endswith("_NAME") and isinstance(v, str)}
    assert store_gauges == set(STORE_GAUGE_LABELS), "a new scrape-time gauge: add its labels to STORE_GAUGE_LABELS"
    series.update({name: Series(API_JOB, frozenset(labels)) for name, labels in STORE_GAUGE_LABELS.items()})
    return series


def target_labels() -> frozenset[str]:
    """Labels Prometheus adds to every scraped series: job, instance and the static_configs' labels."""
    config = load_yaml(PROMETHEUS_DIR / "prometheus.yml")
    extra = {
        label
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for label in static.get("labels", {})
    }
    return frozenset({"job", "instance"} | extra)


SERIES = exported_series()
TARGET_LABELS = target_labels()


# --- reading PromQL ----------------------------------------------------------------------------------

# Grafana's interval macros stand where PromQL wants a duration; template variables stand in label values.
GRAFANA_MACROS = {"__rate_interval": "5m", "__interval": "1m", "__range": "1d"}
GRAFANA_BUILTIN_VARIABLES = set(GRAFANA_MACROS) | {"__range_s", "__interval_ms", "__dashboard", "__from", "__to"}
VARIABLE = re.compile(r"\$\{?(\w+)(?::\w+)?\}?")


@dataclass
class Query:
    selectors: list[tuple[str | None, list[tuple[str, Any, str]]]]  # (metric name, [(label, MatchOp, value)])
    grouping: set[str]  # labels of by/without/on/ignoring clauses

    @property
    def metric_names(self) -> set[str | None]:
        return {name for name, _ in self.selectors}


def read_promql(expr: str) -> Query:
    """Parse `expr` (Grafana macros replaced by durations); raises ValueError if Prometheus would."""
    text = re.sub(r"\$(__rate_interval|__interval|__range)\b", lambda m: GRAFANA_MACROS[m.group(1)], expr)
    query = Query([], set())

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            matchers = [(m.name, m.op, m.value) for m in node.matchers.matchers]
            query.selectors.append((node.name, matchers))
        elif isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            query.grouping.update(node.modifier.labels)
        elif isinstance(node, promql_parser.BinaryExpr) and node.modifier and node.modifier.matching:
            query.grouping.update(node.modifier.matching.labels)

    promql_parser.walk(promql_parser.parse(text), visit)
    return query


def promql_problems(expr: str) -> list[str]:
    """What is wrong with `expr` against the series uythac exports: empty when nothing."""
    try:
        query = read_promql(expr)
    except ValueError as error:
        return [f"does not parse: {error}"]
    problems = []
    known_labels = set(TARGET_LABELS)
    for name, matchers in query.selectors:
        series = SERIES.get(name or "")
        if series is None:
            problems.append(f"{name!r} is not a series uythac exports (nor a Prometheus builtin)")
            continue
        known_labels |= series.labels
        for label, op, value in matchers:
            if label not in series.labels | TARGET_LABELS:
                problems.append(f"{name} has no label {label!r}")
            elif label == "job" and op == promql_parser.MatchOp.Equal and series.job not in (None, value):
                problems.append(f"{name} is scraped from job {series.job!r}, not {value!r}")
    problems += [f"groups by {label!r}, a label of none of its series" for label in query.grouping - known_labels]
    return problems


@pytest.mark.parametrize(
    ("expr", "names", "grouping"),
    [
        (
            "histogram_quantile(0.99, sum by (route, le) "
            '(rate(uythac_api_request_seconds_bucket{job="uythac-api"}[$__rate_interval])))',
            {"uythac_api_request_seconds_bucket"},
            {"route", "le"},
        ),
        (
            "time() - max(max_over_time(uythac_last_event_timestamp_seconds[2d])) > 86400",
            {"uythac_last_event_timestamp_seconds"},
            set(),
        ),
        ("sum(a) - sum(a offset 1d) > 100 and on (x) b{y=~'z.*'}", {"a", "b"}, {"x"}),
        ("max_over_time(sum without (k) (c)[1d:5m])", {"c"}, {"k"}),
        ('up{job="uythac-worker"} == 0 or absent(up{job="uythac-worker"})', {"up"}, set()),
        ("vector(1) * 2", set(), set()),
    ],
)
def test_promql_reader_finds_every_selector(expr: str, names: set[str], grouping: set[str]) -> None:
    query = read_promql(expr)
    assert query.metric_names == names
    assert query.grouping == grouping


@pytest.mark.parametrize(
    "expr",
    [
        "rate(uythac_outbox_backlog)",  # rate needs a range vector
        "sum(uythac_outbox_backlog",
        "no_such_function(uythac_outbox_backlog)",
        "histogram_quantile(sum(rate(uythac_batch_seconds_bucket[5m])))",  # one argument short
        "rate(uythac_events_total[$__rate_intervals])",  # a macro Grafana does not have
        "uythac_outbox_backlog[5m] > 1",
    ],
)
def test_promql_reader_refuses_what_prometheus_refuses(expr: str) -> None:
    with pytest.raises(ValueError):
        read_promql(expr)


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("rate(uythac_events[5m])", "'uythac_events' is not a series"),  # a Counter is scraped as _total
        ("uythac_batch_seconds", "'uythac_batch_seconds' is not a series"),  # a Histogram as _bucket/_sum/...
        ('uythac_rejects_total{reason="event_id"}', "has no label 'reason'"),
        ('uythac_open_flags{job="uythac-worker"}', "scraped from job 'uythac-api'"),
        ("sum by (partition) (uythac_events_total)", "groups by 'partition'"),
        ("sum(rate(uythac_events_total[5m]) > 1", "does not parse"),
    ],
)
def test_promql_problems_are_found(expr: str, problem: str) -> None:
    assert any(problem in found for found in promql_problems(expr)), promql_problems(expr)


def test_exported_series_follow_prometheus_naming() -> None:
    assert SERIES["uythac_events_total"] == Series(WORKER_JOB, frozenset({"type", "outcome"}))
    assert SERIES["uythac_batch_seconds_bucket"].labels == {"le"}
    assert SERIES["uythac_api_request_seconds_count"] == Series(API_JOB, frozenset({"route", "method", "status"}))
    assert SERIES["uythac_open_flags"] == Series(API_JOB, frozenset({"district_id"}))
    assert "uythac_events" not in SERIES and "uythac_consumer_lag_total" not in SERIES


# --- docker-compose.yml --------------------------------------------------------------------------------

COMPOSE: dict[str, Any] = load_yaml(COMPOSE_FILE)
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
UYTHAC_SERVICES = sorted(name for name, service in SERVICES.items() if service.get("image") == UYTHAC_IMAGE)
DURATION = re.compile(r"^(\d+(ms|s|m|h))+$")


def is_one_shot(service: dict[str, Any]) -> bool:
    return str(service.get("restart", "no")) == "no"


def volume_mounts(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(source, target, mode) of every short-syntax volume entry."""
    mounts = []
    for entry in service.get("volumes", []):
        assert isinstance(entry, str), f"long-syntax volume entries are not checked here: {entry}"
        source, target, *mode = entry.split(":")
        mounts.append((source, target, mode[0] if mode else "rw"))
    return mounts


def mount_target(service: dict[str, Any], source: str) -> str:
    targets = [target for src, target, _ in volume_mounts(service) if src == source]
    assert len(targets) == 1, f"{source} is mounted {len(targets)} times"
    return targets[0]


def test_compose_services_have_an_image_or_a_build() -> None:
    assert {"kafka", "kafka-init", "worker", "api", "prometheus", "grafana"} <= set(SERVICES)
    for name, service in SERVICES.items():
        assert "image" in service or "build" in service, name
        if "build" in service:
            context = ROOT / service["build"]["context"]
            assert (context / service["build"].get("dockerfile", "Dockerfile")).is_file(), name
        if "build" not in service:  # pulled from a registry: a pinned version, never an implicit latest
            image, _, tag = service["image"].rpartition(":")
            assert image and "/" not in tag and tag != "latest", f"{name}: pin the image's version"
    assert {"worker", "api"} <= set(UYTHAC_SERVICES)


def test_compose_depends_on_names_services_with_conditions_they_can_meet() -> None:
    for name, service in SERVICES.items():
        for other, how in service.get("depends_on", {}).items():
            assert other in SERVICES, f"{name} depends on {other}, which is not a service"
            assert other != name
            condition = how["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in SERVICES[other], f"{name} waits for {other} to be healthy: no healthcheck"
            elif condition == "service_completed_successfully":
                assert is_one_shot(SERVICES[other]), f"{name} waits for {other} to exit, but it restarts"
            else:
                assert condition == "service_started", f"{name}: unknown condition {condition}"
            if not service.get("profiles"):
                assert not SERVICES[other].get("profiles"), f"{name} always starts, {other} only in a profile"


def test_compose_long_running_services_have_healthchecks() -> None:
    for name, service in SERVICES.items():
        if is_one_shot(service):
            assert "healthcheck" not in service, f"{name} exits when done; a healthcheck means nothing"
            continue
        check = service.get("healthcheck")
        assert check, f"{name} runs until stopped but has no healthcheck"
        assert check["test"][0] in ("CMD", "CMD-SHELL") and len(check["test"]) > 1, name
        for key in ("interval", "timeout", "start_period"):
            assert DURATION.match(str(check[key])), f"{name}: healthcheck {key} {check[key]!r}"
        assert isinstance(check["retries"], int) and check["retries"] > 0, name


def test_compose_volumes_are_declared_used_and_exist() -> None:
    declared = set(COMPOSE.get("volumes") or {})
    used = set()
    for name, service in SERVICES.items():
        for source, target, mode in volume_mounts(service):
            assert target.startswith("/"), f"{name}: {target}"
            assert mode in ("rw", "ro"), f"{name}: {mode}"
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which does not exist"
            else:
                assert source in declared, f"{name} mounts the volume {source}, which is not declared"
                used.add(source)
    assert declared == used, f"declared but not used: {declared - used}"


def test_compose_published_ports_are_unique_and_local() -> None:
    published: dict[int, str] = {}
    for name, service in SERVICES.items():
        for entry in service.get("ports", []):
            host_ip, host_port, container_port = str(entry).split(":")
            assert host_ip == "127.0.0.1", f"{name} publishes {entry} beyond this host"
            assert int(host_port) not in published, f"{name} and {published.get(int(host_port))} share {host_port}"
            assert container_port.isdigit()
            published[int(host_port)] = name
    assert {8000, 9090, 3000} <= set(published)
    assert published[8000] == "nginx", "the host reaches the API through the reverse proxy"
    assert "ports" not in SERVICES["api"], "the API is not published: slow clients must meet nginx, not gunicorn"


def test_compose_uythac_variables_are_settings() -> None:
    names = {f"UYTHAC_{field.name.upper()}" for field in fields(settings.Settings)}
    for name, service in SERVICES.items():
        for variable in service.get("environment", {}):
            if variable.startswith("UYTHAC_"):
                assert variable in names, f"{name}: {variable} is read by no setting (a typo?)"


def test_the_configuration_doc_lists_every_setting_with_its_default() -> None:
    """An operator reads docs/configuration.md, not settings.py: each variable is there, with its default."""
    doc = (ROOT / "docs" / "configuration.md").read_text()
    section = doc.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `UYTHAC_")]
    for field in fields(settings.Settings):
        variable = f"`UYTHAC_{field.name.upper()}`"
        row = next((line for line in rows if variable in line.split("|")[1]), None)
        assert row is not None, f"docs/configuration.md's settings lack {variable}"
        if field.default not in ("", None) and row.split("|")[1].count("`UYTHAC_") == 1:
            assert str(field.default) in row.replace(",", "").replace(" ", "").replace("`", ""), (
                f"docs/configuration.md gives {variable} another default than {field.default!r}"
            )


def compose_env(service: str) -> dict[str, str]:
    return {key: str(value) for key, value in SERVICES[service].get("environment", {}).items()}


@pytest.mark.parametrize("service", UYTHAC_SERVICES)
def test_compose_uythac_commands_parse(service: str) -> None:
    config = settings.load(compose_env(service))
    parser = cli.build_parser(config)
    command = [str(word) for word in SERVICES[service]["command"]]
    try:
        parser.parse_args(command)
    except SystemExit:
        pytest.fail(f"{service}: `uythac {' '.join(command)}` does not parse")


WORKERS = sorted(name for name, service in SERVICES.items() if service.get("command") == ["worker"])
INTERPOLATED = re.compile(r"\$\{([A-Z_]+):\?[^}]*\}")


def interpolated(value: str) -> str:
    """A value as compose gives it, each required variable (`${NAME:?message}`) set to `<NAME>`."""
    return INTERPOLATED.sub(lambda match: match.group(1).lower(), value)


def test_compose_workers_and_api_share_one_postgres_store() -> None:
    """Two workers in one consumer group, each a static member of its own name, and the API, on one PostgreSQL."""
    assert WORKERS == ["worker", "worker-2"]
    url = sa.make_url(interpolated(compose_env("api")["UYTHAC_DB"]))
    assert (url.drivername, url.host, url.port, url.password) == (
        "postgresql+psycopg",
        "postgres",
        5432,
        "postgres_password",
    )
    postgres = SERVICES["postgres"]
    assert postgres["image"].startswith("postgres:15")
    assert postgres["environment"]["POSTGRES_USER"] == url.username
    assert postgres["environment"]["POSTGRES_DB"] == url.database
    assert interpolated(postgres["environment"]["POSTGRES_PASSWORD"]) == url.password
    assert "pg_isready" in postgres["healthcheck"]["test"]
    assert mount_target(postgres, "postgres-data") == "/var/lib/postgresql/data"
    assert "ports" not in postgres, "the store is reached inside the network only"
    names = set()
    for name in WORKERS:
        env = compose_env(name)
        assert interpolated(env["UYTHAC_DB"]) == url.render_as_string(hide_password=False), name
        assert env["UYTHAC_KAFKA_BOOTSTRAP"] == "kafka:9092"
        names.add(bootstrap.instance_id(settings.load(env)))
        assert SERVICES[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert SERVICES[name]["depends_on"]["kafka-init"]["condition"] == "service_completed_successfully"
    assert len(names) == len(WORKERS) and None not in names, "each worker has a static member name of its own"
    assert SERVICES["api"]["depends_on"]["postgres"]["condition"] == "service_healthy"


# --- the reverse proxy -----------------------------------------------------------------------------------

PLACEHOLDER = re.compile(r"\$\{(PROXY_[A-Z_]+)\}")


def test_compose_nginx_renders_the_projects_template_with_every_placeholder_set() -> None:
    nginx = SERVICES["nginx"]
    template = NGINX_DIR / "uythac.conf.template"
    # the image's entrypoint renders /etc/nginx/templates/X.template into $NGINX_ENVSUBST_OUTPUT_DIR/X
    target = PurePosixPath(mount_target(nginx, "./deploy/nginx/uythac.conf.template"))
    assert target.parent == PurePosixPath("/etc/nginx/templates") and target.name == "nginx.conf.template"
    assert template.is_file()
    env = compose_env("nginx")
    assert env["NGINX_ENVSUBST_OUTPUT_DIR"] == "/etc/nginx"
    assert env["NGINX_ENVSUBST_FILTER"] == "^PROXY_", "nginx's own $variables must stay as they are"
    placeholders = set(PLACEHOLDER.findall(template.read_text()))
    assert placeholders == {name for name in env if name.startswith("PROXY_")}
    assert all(env[name] for name in placeholders)
    # nginxctl, on a host, fills the same ones
    nginxctl = (NGINX_DIR / "nginxctl").read_text()
    assert set(re.findall(r"^\s+(PROXY_[A-Z_]+)\) value=", nginxctl, re.MULTILINE)) == placeholders


def test_compose_nginx_is_the_way_in_to_the_api() -> None:
    env = compose_env("nginx")
    api_port = compose_env("api")["UYTHAC_API_BIND"].rsplit(":", 1)[1]
    assert env["PROXY_UPSTREAM"] == f"api:{api_port}"
    assert api_port in [str(port) for port in SERVICES["api"]["expose"]]
    assert SERVICES["nginx"]["ports"] == [f"127.0.0.1:8000:{env['PROXY_LISTEN']}"]
    assert SERVICES["nginx"]["depends_on"]["api"]["restart"] is True, "a new api container: nginx resolves it again"
    assert SERVICES["nginx"]["command"][0] == "nginx", "the image renders templates only before `nginx`"


def test_the_proxy_buffers_whole_requests_and_answers_problems() -> None:
    """The settings the security finding rests on, as written in the template."""
    text = (NGINX_DIR / "uythac.conf.template").read_text()
    directives = dict(re.findall(r"^\s*(\w+) ([^;{]+);", text, re.MULTILINE))
    assert directives["proxy_request_buffering"] == "on" and directives["proxy_buffering"] == "on"
    assert directives["client_header_timeout"] == directives["client_body_timeout"] == "10s"
    assert directives["client_max_body_size"] == "16m"
    assert "proxy_intercept_errors" not in directives, "the API's own problems pass untouched"
    [codes] = re.findall(r"^\s*error_page ([\d ]+) /", text, re.MULTILINE)
    assert {"400", "408", "413", "414", "500", "502", "503", "504"} <= set(codes.split())
    assert "default_type application/problem+json" in text
    assert "<html" not in text


# --- Prometheus ----------------------------------------------------------------------------------------

PROMETHEUS = load_yaml(PROMETHEUS_DIR / "prometheus.yml")
ALERT_FILES = [PROMETHEUS_DIR / name for name in PROMETHEUS["rule_files"]]
ALERT_RULES = [rule for path in ALERT_FILES for group in load_yaml(path)["groups"] for rule in group["rules"]]


def scrape_targets() -> dict[str, list[str]]:
    return {
        job["job_name"]: [target for static in job["static_configs"] for target in static["targets"]]
        for job in PROMETHEUS["scrape_configs"]
    }


def test_prometheus_scrapes_worker_and_api_where_compose_runs_them() -> None:
    jobs = [job["job_name"] for job in PROMETHEUS["scrape_configs"]]
    assert len(jobs) == len(set(jobs))
    targets = scrape_targets()
    defaults = settings.Settings()
    worker_port = int(compose_env("worker").get("UYTHAC_WORKER_METRICS_PORT", defaults.worker_metrics_port))
    # /metrics answers only on the API's internal address (UYTHAC_API_INTERNAL_BIND)
    internal = compose_env("api").get("UYTHAC_API_INTERNAL_BIND", defaults.api_internal_bind)
    api_port = int(internal.rsplit(":", 1)[1])
    assert targets[WORKER_JOB] == [f"{name}:{worker_port}" for name in WORKERS]
    for name in WORKERS:
        assert str(worker_port) in [str(port) for port in SERVICES[name]["expose"]]
    assert targets[API_JOB] == [f"api:{api_port}"]
    assert str(api_port) in [str(port) for port in SERVICES["api"]["expose"]]
    assert internal.startswith("0.0.0.0:"), "reachable from other containers"
    assert compose_env("api")["UYTHAC_API_BIND"].startswith("0.0.0.0:"), "reachable from other containers"
    for job in PROMETHEUS["scrape_configs"]:
        assert job.get("metrics_path", "/metrics") == "/metrics"


def test_prometheus_in_compose_reads_this_folder() -> None:
    service = SERVICES["prometheus"]
    folder = mount_target(service, "./deploy/prometheus")
    [config] = [arg.split("=", 1)[1] for arg in service["command"] if arg.startswith("--config.file=")]
    assert PurePosixPath(config) == PurePosixPath(folder) / "prometheus.yml"
    for path in ALERT_FILES:
        assert path.is_file() and path.parent == PROMETHEUS_DIR, "rule files are mounted with the config"


def test_alert_rules_are_complete_and_tell_the_operator_what_to_do() -> None:
    names = [rule["alert"] for rule in ALERT_RULES]
    assert len(names) == len(set(names)), "alert names must be unique"
    assert set(names) >= REQUIRED_ALERTS, f"missing: {REQUIRED_ALERTS - set(names)}"
    for rule in ALERT_RULES:
        name = rule["alert"]
        assert DURATION.match(rule["for"]), f"{name}: a `for` keeps one bad scrape from paging"
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        annotations = rule["annotations"]
        assert annotations["summary"].strip() and "\n" not in annotations["summary"], name
        assert "First check" in annotations["description"], f"{name}: say what to check first"


@pytest.mark.parametrize("rule", ALERT_RULES, ids=lambda rule: rule["alert"])
def test_alert_expressions_read_exported_series(rule: dict[str, Any]) -> None:
    assert promql_problems(rule["expr"]) == []
    for snippet in re.findall(r"`([^`]+)`", rule["annotations"]["description"]):
        if "(" in snippet and not snippet.startswith(("docker", "curl", "uythac")):  # PromQL to run
            assert promql_problems(snippet) == [], snippet


def test_alert_unit_tests_have_a_firing_and_a_quiet_case_per_alert() -> None:
    tests = load_yaml(PROMETHEUS_DIR / "alerts_test.yml")
    assert [PROMETHEUS_DIR / name for name in tests["rule_files"]] == ALERT_FILES
    firing, quiet = set(), set()
    for case in tests["tests"]:
        for series in case["input_series"]:
            assert promql_problems(series["series"]) == [], series["series"]
        for check in case["alert_rule_test"]:
            (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in ALERT_RULES}
    assert firing == names, f"no firing case: {names - firing}"
    assert quiet == names, f"no quiet case: {names - quiet}"


def test_promtool_accepts_the_config_and_the_alert_unit_tests_pass() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        reason = "promtool is not installed (Debian: apt-get install --no-install-recommends prometheus)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run the alert unit tests")
        pytest.skip(reason)
    for args in (["check", "config", "prometheus.yml"], ["test", "rules", "alerts_test.yml"]):
        done = subprocess.run(
            [promtool, *args], cwd=PROMETHEUS_DIR, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}\n{done.stderr}"


# --- Grafana -------------------------------------------------------------------------------------------

DASHBOARD: dict[str, Any] = json.loads(DASHBOARD_FILE.read_text(encoding="utf-8"))
DATASOURCE_REF = {"type": "prometheus", "uid": "${datasource}"}
PANEL_TYPES = {"row", "stat", "timeseries", "bargauge", "table"}


def all_panels() -> list[dict[str, Any]]:
    panels = []
    for panel in DASHBOARD["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))  # a collapsed row keeps its panels inside it
    return panels


def query_panels() -> list[dict[str, Any]]:
    return [panel for panel in all_panels() if panel["type"] != "row"]


def variables() -> dict[str, dict[str, Any]]:
    return {variable["name"]: variable for variable in DASHBOARD["templating"]["list"]}


def test_grafana_provisioning_points_where_compose_mounts_the_dashboard() -> None:
    service = SERVICES["grafana"]
    assert mount_target(service, "./deploy/grafana/provisioning") == "/etc/grafana/provisioning"
    folder = PurePosixPath(mount_target(service, "./deploy/grafana/dashboards"))
    [provider] = load_yaml(GRAFANA_DIR / "provisioning" / "dashboards" / "uythac.yml")["providers"]
    assert provider["type"] == "file"
    assert PurePosixPath(provider["options"]["path"]) == folder
    home = PurePosixPath(service["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    assert home.parent == folder and (DASHBOARD_FILE.parent / home.name) == DASHBOARD_FILE

    [source] = load_yaml(GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    assert source["type"] == "prometheus"
    host, port = source["url"].removeprefix("http://").split(":")
    assert host == "prometheus" and host in SERVICES
    assert f"127.0.0.1:{port}:{port}" in SERVICES["prometheus"]["ports"]


def test_grafana_is_a_read_only_demo_with_the_admin_password_from_the_environment() -> None:
    env = SERVICES["grafana"]["environment"]
    assert re.fullmatch(r"\$\{GRAFANA_ADMIN_PASSWORD:\?[^}]+\}", env["GF_SECURITY_ADMIN_PASSWORD"])
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"


def test_dashboard_panels_have_unique_ids_and_do_not_overlap() -> None:
    assert DASHBOARD["uid"] == "uythac" and DASHBOARD["schemaVersion"] >= 39
    panels = all_panels()
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    taken: set[tuple[int, int]] = set()
    for panel in panels:
        assert panel["type"] in PANEL_TYPES, panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


def test_dashboard_reads_prometheus_only_through_its_datasource_variable() -> None:
    datasource = variables()["datasource"]
    assert datasource["type"] == "datasource" and datasource["query"] == "prometheus"
    for panel in query_panels():
        assert panel["datasource"] == DATASOURCE_REF, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE_REF, panel["title"]
    for variable in variables().values():
        if variable["type"] == "query":
            assert variable["datasource"] == DATASOURCE_REF, variable["name"]
    # and no panel or variable names a datasource by its uid anywhere
    uids = set(re.findall(r'"uid":\s*"([^"]*)"', json.dumps(DASHBOARD)))
    assert uids == {"${datasource}", "-- Grafana --", DASHBOARD["uid"]}


@pytest.mark.parametrize("panel", query_panels(), ids=lambda panel: f"{panel['id']}-{panel['title']}")
def test_dashboard_queries_read_exported_series(panel: dict[str, Any]) -> None:
    defined = set(variables()) | GRAFANA_BUILTIN_VARIABLES
    for target in panel["targets"]:
        expr = target["expr"]
        assert promql_problems(expr) == [], expr
        assert set(VARIABLE.findall(expr)) <= defined, expr
        query = read_promql(expr)
        labels = query.grouping | TARGET_LABELS
        labels |= {label for name, _ in query.selectors for label in SERIES[name or ""].labels}
        for label in re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", "")):
            assert label in labels, f"{panel['title']}: legend {{{{{label}}}}} is not a label of {expr}"


def test_dashboard_variables_read_exported_labels() -> None:
    for variable in variables().values():
        if variable["type"] != "query":
            continue
        definition = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
        match = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", definition)
        assert match, f"{variable['name']}: {definition}"
        metric, label = match.groups()
        assert label in SERIES[metric].labels, definition


# --- Dockerfile ----------------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    lines = [line.strip() for line in text.splitlines()]
    return [
        (word.upper(), rest.strip())
        for word, _, rest in (line.partition(" ") for line in lines if line and not line.startswith("#"))
    ]


def test_dockerfile_builds_the_project_as_a_non_root_uythac_entrypoint() -> None:
    instructions = dockerfile_instructions()
    args = dict(rest.split("=", 1) for word, rest in instructions if word == "ARG" and "=" in rest)
    assert args["PYTHON_IMAGE"].startswith("python:3.11-slim")
    final_stage = instructions[max(i for i, (word, _) in enumerate(instructions) if word == "FROM") :]
    users = [rest for word, rest in final_stage if word == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image runs as an unprivileged user"
    assert ("ENTRYPOINT", '["uythac"]') in final_stage
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "uythac" in pyproject["project"]["scripts"]

    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    copied = set()
    for word, rest in instructions:
        if word == "COPY" and "--from" not in rest:
            *sources, _destination = rest.split()
            copied.update(sources)
    for source in copied:
        assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
        assert source not in ignored and source.rstrip("/") not in ignored, f"COPY {source}: in .dockerignore"
    # what setuptools needs to build the wheel: the packages' folders and the readme pyproject names
    assert {"pyproject.toml", pyproject["project"]["readme"], "rules", "schemas", "services"} <= copied
