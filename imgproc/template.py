"""Read our CloudFormation templates as plain data, short-form intrinsics (``!Ref``…) included.

The local runtime applies the parts moto ignores from the template's own definitions, and deploy
needs the template's parameter names; both read the YAML through this one loader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from imgproc.package import PROJECT_ROOT

MAIN_TEMPLATE = PROJECT_ROOT / "infra" / "cloudformation" / "imgproc.yaml"


class _Loader(yaml.SafeLoader):
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
