"""The CloudFormation template as data, with intrinsic functions resolved for given parameters.

Parameters take their defaults unless overridden; a parameter without a default resolves to
a placeholder. `Ref`/`GetAtt` of a resource resolve to `<ref:Name>` / `<att:Name.Attr>`.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from cfnlint.decode import decode

REPO = Path(__file__).resolve().parents[2]
INFRASTRUCTURE = REPO / "infrastructure"
TEMPLATE_PATH = INFRASTRUCTURE / "main-infrastructure.yaml"
PSEUDO = {
    "AWS::Region": "eu-west-1",
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::StackName": "drawing-analysis-production",
    "AWS::URLSuffix": "amazonaws.com",
}
NO_VALUE = object()
_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


@cache
def raw_template() -> dict[str, Any]:
    template, problems = decode(str(TEMPLATE_PATH))
    if template is None:
        raise AssertionError(f"cannot parse {TEMPLATE_PATH}: {problems}")
    return json.loads(json.dumps(template, default=str))


class Resolver:
    def __init__(self, overrides: dict[str, str] | None = None) -> None:
        self.template = raw_template()
        self.parameters = {
            name: str(spec.get("Default", f"<param:{name}>"))
            for name, spec in self.template.get("Parameters", {}).items()
        }
        self.parameters.update(overrides or {})

    def condition(self, name: str) -> bool:
        return bool(self.value(self.template["Conditions"][name]))

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.value(item) for item in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            handler = getattr(self, "_" + key.replace("Fn::", "fn_").replace("::", "_"), None)
            if key in ("Ref", "Condition") or key.startswith("Fn::"):
                if handler is None:
                    raise AssertionError(f"unsupported intrinsic {key}")
                return handler(arg)
        return {k: v for k, v in ((k, self.value(v)) for k, v in node.items()) if v is not NO_VALUE}

    def _Ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.parameters:
            return self.parameters[name]
        return f"<ref:{name}>"

    def _Condition(self, name: str) -> bool:
        return self.condition(name)

    def _fn_GetAtt(self, arg: Any) -> str:
        target = arg if isinstance(arg, str) else ".".join(arg)
        return f"<att:{target}>"

    def _fn_Sub(self, arg: Any) -> str:
        text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self.value(arg[1]))

        def replace(match: re.Match[str]) -> str:
            name = match[1]
            if name in extra:
                return str(extra[name])
            if "." in name and name.split(".")[0] in self.template["Resources"]:
                return self._fn_GetAtt(name)
            return str(self._Ref(name))

        return _SUB_VARIABLE.sub(replace, text)

    def _fn_If(self, arg: list[Any]) -> Any:
        name, when_true, when_false = arg
        return self.value(when_true if self.condition(name) else when_false)

    def _fn_Equals(self, arg: list[Any]) -> bool:
        left, right = (self.value(a) for a in arg)
        return str(left) == str(right)

    def _fn_Not(self, arg: list[Any]) -> bool:
        return not self.value(arg[0])

    def _fn_And(self, arg: list[Any]) -> bool:
        return all(self.value(a) for a in arg)

    def _fn_Or(self, arg: list[Any]) -> bool:
        return any(self.value(a) for a in arg)

    def _fn_Select(self, arg: list[Any]) -> Any:
        index, items = arg
        return self.value(items)[int(self.value(index))]

    def _fn_FindInMap(self, arg: list[Any]) -> Any:
        mapping, top, second = (self.value(a) for a in arg)
        return self.template["Mappings"][mapping][top][second]

    def _fn_GetAZs(self, arg: Any) -> list[str]:
        return [f"{PSEUDO['AWS::Region']}{zone}" for zone in "abc"]

    def _fn_Join(self, arg: list[Any]) -> str:
        separator, items = arg
        return separator.join(str(i) for i in self.value(items))

    def resources(self, resource_type: str | None = None) -> dict[str, dict[str, Any]]:
        """Resources (of one type) present under these parameters, properties resolved."""
        found = {}
        for name, resource in self.template["Resources"].items():
            if resource_type and resource["Type"] != resource_type:
                continue
            if "Condition" in resource and not self.condition(resource["Condition"]):
                continue
            found[name] = {**resource, "Properties": self.value(resource.get("Properties", {}))}
        return found

    def properties(self, logical_id: str) -> dict[str, Any]:
        return self.resources()[logical_id]["Properties"]


def container(resolver: Resolver, task_definition: str) -> dict[str, Any]:
    (definition,) = resolver.properties(task_definition)["ContainerDefinitions"]
    return definition


def container_variables(resolver: Resolver, task_definition: str) -> dict[str, str]:
    """Every variable the container gets: Environment values, and Secrets as `<secret:…>`."""
    definition = container(resolver, task_definition)
    variables = {e["Name"]: str(e["Value"]) for e in definition.get("Environment", [])}
    for secret in definition.get("Secrets", []):
        variables[secret["Name"]] = f"<secret:{secret['ValueFrom']}>"
    return variables
