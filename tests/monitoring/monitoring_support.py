"""What the monitoring tests read: the rule files, the dashboards, the PromQL in them, and
the metric names that PromQL asks for."""

import importlib.util
import json
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "monitoring"
RULES = sorted((MONITORING / "prometheus" / "rules").glob("*.yml"))
RULE_TESTS = sorted((MONITORING / "prometheus" / "tests").glob("*.yml"))
DASHBOARDS = sorted((MONITORING / "grafana" / "dashboards").glob("*.json"))
PROMQL_DASHBOARDS = ("platform", "business", "slo")

# Grafana's variables, as a test over the last minutes of traffic would set them.
GRAFANA_VARIABLES = {"$__rate_interval": "10s", "$__range": "5m", "$__auto": "10s",
                     "$service": ".*"}
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
             "unless", "bool", "offset", "inf", "nan", "le"}


def rule_groups() -> list[dict]:
    return [group for path in RULES for group in yaml.safe_load(path.read_text())["groups"]]


def rules() -> list[dict]:
    return [rule for group in rule_groups() for rule in group["rules"]]


def alerts() -> list[dict]:
    return [rule for rule in rules() if "alert" in rule]


def recording_rules() -> list[dict]:
    return [rule for rule in rules() if "record" in rule]


def dashboard(name: str) -> dict:
    return json.loads((MONITORING / "grafana" / "dashboards" / f"{name}.json").read_text())


def panels(board: dict) -> list[dict]:
    return [panel for panel in board["panels"] if panel.get("type") != "row"]


def panel_queries(name: str) -> list[tuple[str, str]]:
    """(panel title, expression) for every query of a dashboard's panels."""
    return [(panel["title"], target["expr"]) for panel in panels(dashboard(name))
            for target in panel.get("targets", [])]


def with_variables(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression reads (metrics and recorded rules)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)           # strings
    text = re.sub(r"\{[^}]*\}", " ", text)                        # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)                       # ranges
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        following = text[match.end():].lstrip()[:1]
        word = match.group(0)
        if following != "(" and word.lower() not in _KEYWORDS and not word.startswith("$"):
            names.add(word)
    return names


def load_generator():
    path = MONITORING / "grafana" / "dashboards_src" / "generate.py"
    spec = importlib.util.spec_from_file_location("veloz_dashboards", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
