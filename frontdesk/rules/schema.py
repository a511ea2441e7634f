"""Parsing and validating the rules file, with errors that name the file, line and problem.

The file maps Stripe prices, products or lookup keys to named entitlements, and each
entitlement to what it gives in each provider. See docs/rules.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

# Target lists per provider; values are the provider's numeric ids.
CIRCLE_TARGETS = ("spaces", "space_groups", "access_groups", "member_tags")
KIT_TARGETS = ("tags", "sequences")
MATCH_KEYS = ("price", "product", "lookup_key", "feature")
# Access policy defaults (docs/access-policy.md).
DEFAULT_POLICY = {"past_due_grace_days": 3, "dispute": "revoke"}
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
FIELD_KEY_RE = re.compile(r"^[a-z0-9_]{1,100}$")


@dataclass
class Problem:
    line: int
    message: str


class RulesError(Exception):
    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}:{p.line}: {p.message}" for p in problems))


class _Checker:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def fail(self, node: Node, message: str) -> None:
        self.problems.append(Problem(node.start_mark.line + 1, message))

    def mapping(self, node: Node, where: str, allowed: tuple[str, ...] | None = None) -> dict[str, Node]:
        if not isinstance(node, MappingNode):
            self.fail(node, f"{where} must be a mapping")
            return {}
        out: dict[str, Node] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, ScalarNode) else None
            if not isinstance(key, str):
                self.fail(key_node, f"{where}: keys must be plain names")
                continue
            if key in out:
                self.fail(key_node, f"{where}: '{key}' appears twice")
            if allowed is not None and key not in allowed:
                self.fail(key_node, f"{where}: unknown key '{key}' (expected one of: {', '.join(allowed)})")
                continue
            out[key] = value_node
        return out

    def sequence(self, node: Node, where: str) -> list[Node]:
        if not isinstance(node, SequenceNode):
            self.fail(node, f"{where} must be a list")
            return []
        return list(node.value)

    def ids(self, node: Node, where: str) -> list[int]:
        out: list[int] = []
        for item in self.sequence(node, where):
            if isinstance(item, ScalarNode) and item.tag.endswith(":int") and int(item.value) > 0:
                out.append(int(item.value))
            else:
                self.fail(item, f"{where}: '{getattr(item, 'value', item)}' is not a positive numeric id")
        return sorted(set(out))

    def text(self, node: Node, where: str) -> str | None:
        if isinstance(node, ScalarNode) and node.tag.endswith((":str", ":int", ":float", ":bool")) and node.value:
            return str(node.value)
        self.fail(node, f"{where} must be a non-empty value")
        return None


def parse(content: str, source: str = "<rules>") -> dict[str, Any]:
    """Validate ``content`` and return the normalised rules, or raise :class:`RulesError`."""
    try:
        root = yaml.compose(content, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise RulesError(source, [Problem(line, f"not valid YAML: {getattr(exc, 'problem', exc)}")]) from None
    if root is None:
        raise RulesError(source, [Problem(1, "the file is empty")])
    c = _Checker()
    top = c.mapping(root, "the file", ("entitlements", "mappings", "policy"))
    entitlements: dict[str, Any] = {}
    ent_lines: dict[str, int] = {}
    if "entitlements" not in top and not c.problems:
        c.fail(root, "missing 'entitlements'")
    for name_node, body in (top["entitlements"].value if isinstance(top.get("entitlements"), MappingNode) else []):
        name = name_node.value
        if not NAME_RE.match(str(name)):
            c.fail(name_node, f"entitlement name '{name}' must be lower-case letters, digits, '-', '_' or '.'")
            continue
        ent_lines[name] = name_node.start_mark.line + 1
        fields = c.mapping(body, f"entitlement '{name}'", ("description", "circle", "kit"))
        spec: dict[str, Any] = {"description": "", "circle": {k: [] for k in CIRCLE_TARGETS},
                                "kit": {**{k: [] for k in KIT_TARGETS}, "fields": {}}}
        if "description" in fields:
            spec["description"] = c.text(fields["description"], f"'{name}'.description") or ""
        if "circle" in fields:
            for key, node in c.mapping(fields["circle"], f"'{name}'.circle", CIRCLE_TARGETS).items():
                spec["circle"][key] = c.ids(node, f"'{name}'.circle.{key}")
        if "kit" in fields:
            for key, node in c.mapping(fields["kit"], f"'{name}'.kit", (*KIT_TARGETS, "fields")).items():
                if key == "fields":
                    for fkey, fnode in c.mapping(node, f"'{name}'.kit.fields").items():
                        if not FIELD_KEY_RE.match(fkey):
                            c.fail(fnode, f"'{name}'.kit.fields: '{fkey}' is not a Kit field key (lower-case, digits, _)")
                        value = c.text(fnode, f"'{name}'.kit.fields.{fkey}")
                        if value is not None:
                            spec["kit"]["fields"][fkey] = value
                else:
                    spec["kit"][key] = c.ids(node, f"'{name}'.kit.{key}")
        entitlements[name] = spec
    if "entitlements" in top and not isinstance(top["entitlements"], MappingNode):
        c.fail(top["entitlements"], "'entitlements' must be a mapping of names")

    mappings: list[dict[str, Any]] = []
    seen: dict[tuple[str, str], int] = {}
    for item in c.sequence(top["mappings"], "'mappings'") if "mappings" in top else []:
        fields = c.mapping(item, "mapping", (*MATCH_KEYS, "grant", "duration_days"))
        keys = [k for k in MATCH_KEYS if k in fields]
        if len(keys) != 1:
            c.fail(item, f"a mapping needs exactly one of: {', '.join(MATCH_KEYS)}")
            continue
        value = c.text(fields[keys[0]], f"mapping {keys[0]}")
        if "grant" not in fields:
            c.fail(item, "a mapping needs 'grant': a list of entitlement names")
            continue
        grants: list[str] = []
        for g in c.sequence(fields["grant"], "grant"):
            gname = getattr(g, "value", None)
            if gname not in entitlements and gname not in ent_lines:
                c.fail(g, f"grant: '{gname}' is not an entitlement defined under 'entitlements'")
            else:
                grants.append(str(gname))
        if value is None:
            continue
        if (keys[0], value) in seen:
            c.fail(item, f"{keys[0]} '{value}' is already mapped on line {seen[(keys[0], value)]}")
        seen[(keys[0], value)] = item.start_mark.line + 1
        duration = None
        if "duration_days" in fields:
            node = fields["duration_days"]
            if isinstance(node, ScalarNode) and node.tag.endswith(":int") and int(node.value) > 0:
                duration = int(node.value)
            else:
                c.fail(node, "duration_days must be a positive whole number of days")
        mappings.append({"match": keys[0], "value": value, "grant": sorted(set(grants)), "duration_days": duration})
    policy = dict(DEFAULT_POLICY)
    if "policy" in top:
        for key, node in c.mapping(top["policy"], "'policy'", tuple(DEFAULT_POLICY)).items():
            if key == "past_due_grace_days":
                if isinstance(node, ScalarNode) and node.tag.endswith(":int") and int(node.value) >= 0:
                    policy[key] = int(node.value)
                else:
                    c.fail(node, "past_due_grace_days must be a whole number of days (0 or more)")
            elif key == "dispute":
                if getattr(node, "value", None) in ("revoke", "flag"):
                    policy[key] = node.value
                else:
                    c.fail(node, "dispute must be 'revoke' (suspend access) or 'flag' (keep access, notify support)")
    if c.problems:
        raise RulesError(source, c.problems)
    return {"entitlements": entitlements, "mappings": mappings, "policy": policy}


def grants_for(rules: dict[str, Any], price: str | None = None, product: str | None = None,
               lookup_key: str | None = None, feature: str | None = None) -> dict[str, int | None]:
    """Entitlement names a purchase grants under ``rules``, each with its duration in days
    (None: for life, or for as long as the subscription lasts). The longest duration wins."""
    wanted = {("price", price), ("product", product), ("lookup_key", lookup_key), ("feature", feature)}
    grants: dict[str, int | None] = {}
    for m in rules["mappings"]:
        if (m["match"], m["value"]) in wanted:
            for name in m["grant"]:
                days = m.get("duration_days")
                if name not in grants or grants[name] is not None and (days is None or days > grants[name]):
                    grants[name] = days
    return grants


def entitlements_for(rules: dict[str, Any], price: str | None, product: str | None,
                     lookup_key: str | None) -> set[str]:
    """The entitlement names a purchased price grants under ``rules``."""
    return set(grants_for(rules, price, product, lookup_key))


def policy(rules: dict[str, Any]) -> dict[str, Any]:
    return {**DEFAULT_POLICY, **rules.get("policy", {})}


def desired_targets(rules: dict[str, Any], names: set[str]) -> dict[str, dict[str, Any]]:
    """Union of what the named entitlements give, per provider."""
    circle: dict[str, set[int]] = {k: set() for k in CIRCLE_TARGETS}
    kit: dict[str, Any] = {**{k: set() for k in KIT_TARGETS}, "fields": {}}
    for name in sorted(names):
        spec = rules["entitlements"].get(name)
        if spec is None:  # the entitlement was removed from the rules: it gives nothing now
            continue
        for k in CIRCLE_TARGETS:
            circle[k].update(spec["circle"][k])
        for k in KIT_TARGETS:
            kit[k].update(spec["kit"][k])
        kit["fields"].update(spec["kit"]["fields"])
    return {
        "circle": {k: sorted(v) for k, v in circle.items()},
        "kit": {**{k: sorted(kit[k]) for k in KIT_TARGETS}, "fields": kit["fields"]},
    }
