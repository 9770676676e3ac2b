"""Read our CloudFormation templates as plain data, short-form intrinsics (``!Ref``…) included.

The local runtime applies the parts moto ignores from the template's own definitions, and deploy
needs the template's parameter names; both read the YAML through this one loader.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from imgproc.package import PROJECT_ROOT

MAIN_TEMPLATE = PROJECT_ROOT / "infra" / "cloudformation" / "imgproc.yaml"


# libyaml's parser where PyYAML has it (its wheels do): the same documents, ten times faster than the
# pure-Python one (deploy, up and demo read the template several times).
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_SafeLoader):
    """SafeLoader that turns ``!Name value`` into CloudFormation's long form ``{"Fn::Name": value}``."""


def _construct_tag(loader: _Loader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":  # !GetAtt Resource.Attribute
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


_Loader.add_multi_constructor("!", _construct_tag)


def load(path: Path = MAIN_TEMPLATE) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def parameter_names(template: dict[str, Any]) -> set[str]:
    return set(template.get("Parameters") or {})


def parameter_problems(template: dict[str, Any], values: dict[str, str]) -> list[str]:
    """What CloudFormation would refuse in ``values``: unknown names, and values that break their
    parameter's ``AllowedValues``, ``AllowedPattern``, ``MinLength``/``MaxLength``, ``Type: Number`` or
    ``MinValue``/``MaxValue``.

    Checked before deploying because the embedded AWS checks none of them: a bad value there deploys,
    and then every batch fails at the function's cold start.
    """
    declared = template.get("Parameters") or {}
    unknown = sorted(set(values) - set(declared))
    problems = []
    if unknown:
        problems.append(
            f"unknown parameter(s) {', '.join(unknown)}; the template has {', '.join(sorted(declared))}"
        )
    for name, value in values.items():
        if name in declared:
            problem = _constraint_broken(declared[name], value)
            if problem:
                hint = declared[name].get("ConstraintDescription")
                problems.append(f"{name}={value!r} {problem}" + (f" ({hint})" if hint else ""))
    return problems


def _constraint_broken(declaration: dict[str, Any], value: str) -> str | None:  # noqa: PLR0911
    allowed = declaration.get("AllowedValues")
    if allowed is not None and value not in [str(v) for v in allowed]:
        return f"is not one of {', '.join(str(v) for v in allowed)}"
    pattern = declaration.get("AllowedPattern")
    if pattern is not None and not re.fullmatch(pattern, value):  # CloudFormation matches the whole value
        return f"does not match {pattern}"
    if "MinLength" in declaration and len(value) < int(declaration["MinLength"]):
        return f"is shorter than {declaration['MinLength']} characters"
    if "MaxLength" in declaration and len(value) > int(declaration["MaxLength"]):
        return f"is longer than {declaration['MaxLength']} characters"
    if declaration.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            return "is not a number"
        if "MinValue" in declaration and number < float(declaration["MinValue"]):
            return f"is below the minimum {declaration['MinValue']}"
        if "MaxValue" in declaration and number > float(declaration["MaxValue"]):
            return f"is above the maximum {declaration['MaxValue']}"
    return None


class Resolver:
    """Evaluate a deployed stack's intrinsic functions (Ref, GetAtt, Sub, If, Join, Select, Split).

    Enough of CloudFormation's semantics to re-read a resource's properties as the stack resolved
    them: parameters and pseudo parameters by value, resources by physical id, conditions evaluated,
    ``AWS::NoValue`` dropped. ``get_att(logical_id, attribute)`` supplies attribute values.
    """

    def __init__(
        self,
        template: dict[str, Any],
        *,
        parameters: dict[str, str],
        physical_ids: dict[str, str],
        pseudo: dict[str, str],
        get_att: Callable[[str, str], str],
    ) -> None:
        self._template = template
        self._refs = {**parameters, **physical_ids, **pseudo}
        self._get_att = get_att
        self._conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = bool(self.resolve(self._template["Conditions"][name]))
        return self._conditions[name]

    def resolve(self, node: Any) -> Any:  # noqa: PLR0911 - one branch per intrinsic
        if isinstance(node, list):
            return [v for v in (self.resolve(item) for item in node) if v is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((name, arg),) = node.items()
            if name == "Ref":
                return _NO_VALUE if arg == "AWS::NoValue" else self._refs[arg]
            if name == "Fn::GetAtt":
                logical, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self._get_att(logical, attribute)
            if name == "Fn::Sub":
                return self._sub(arg)
            if name == "Fn::If":
                condition, when_true, when_false = arg
                return self.resolve(when_true if self.condition(condition) else when_false)
            if name in _OPERATORS:
                return _OPERATORS[name](self, arg)
        resolved = {k: self.resolve(v) for k, v in node.items()}
        return {k: v for k, v in resolved.items() if v is not _NO_VALUE}

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name:  # ${Resource.Attribute}
                return str(self._get_att(*name.split(".", 1)))
            return str(self._refs[name])

        return re.sub(r"\$\{([^}!][^}]*)\}", replace, text)


_NO_VALUE = object()
_OPERATORS: dict[str, Callable[[Resolver, Any], Any]] = {
    "Fn::Join": lambda r, a: str(a[0]).join(str(v) for v in r.resolve(a[1])),
    "Fn::Select": lambda r, a: r.resolve(a[1])[int(r.resolve(a[0]))],
    "Fn::Split": lambda r, a: str(r.resolve(a[1])).split(a[0]),
    "Fn::Equals": lambda r, a: str(r.resolve(a[0])) == str(r.resolve(a[1])),  # parameters are strings
    "Fn::Not": lambda r, a: not r.resolve(a[0]),
    "Fn::And": lambda r, a: all(r.resolve(a)),
    "Fn::Or": lambda r, a: any(r.resolve(a)),
    "Condition": lambda r, a: r.condition(a),
}
