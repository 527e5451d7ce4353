"""Checks a CloudFormation parameters file against the template before anything is deployed:
each value against its parameter's constraints (as CloudFormation would), and what
CloudFormation cannot check because it relates two parameters.

    python3 infrastructure/check_parameters.py TEMPLATE PARAMETERS.json

Prints one line per problem and exits 1; prints nothing and exits 0 when all is well.
Needs cfn-lint's template decoder (deploy.sh runs it with cfn-lint's Python).
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from cfnlint.decode import decode

# Glacier bills at least 90 days: a backup must not expire sooner after its move.
GLACIER_MINIMUM_DAYS = 90


def constraint_problems(name: str, spec: dict[str, Any], value: str) -> list[str]:
    problems = []
    pattern = spec.get("AllowedPattern")
    if pattern is not None and not re.fullmatch(pattern, value):
        hint = spec.get("ConstraintDescription", f"must match {pattern}")
        problems.append(f"{name}={value!r}: {hint}")
    if "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
        problems.append(f"{name}: longer than {spec['MaxLength']} characters")
    if "MinLength" in spec and len(value) < int(spec["MinLength"]):
        problems.append(f"{name}: shorter than {spec['MinLength']} characters")
    if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
        problems.append(f"{name}={value!r}: one of {', '.join(map(str, spec['AllowedValues']))}")
    if spec.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            return [*problems, f"{name}={value!r}: not a number"]
        if "MinValue" in spec and number < float(spec["MinValue"]):
            problems.append(f"{name}={value}: at least {spec['MinValue']}")
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            problems.append(f"{name}={value}: at most {spec['MaxValue']}")
    return problems


def problems_of(parameters: dict[str, dict[str, Any]], given: dict[str, str]) -> list[str]:
    unknown = [name for name in given if name not in parameters]
    problems = [f"{name}: not a parameter of the template" for name in unknown]
    values = {}
    for name, spec in parameters.items():
        if name in given:
            values[name] = given[name]
            problems += constraint_problems(name, spec, given[name])
        elif "Default" in spec:
            values[name] = str(spec["Default"])
        else:
            problems.append(f"{name}: required (the template has no default)")
    try:
        glacier, expiry = int(values["BackupGlacierDays"]), int(values["BackupExpiryDays"])
    except (KeyError, ValueError):
        return problems
    if expiry < glacier + GLACIER_MINIMUM_DAYS:
        problems.append(
            f"BackupExpiryDays={expiry}: must be at least BackupGlacierDays ({glacier}) + "
            f"{GLACIER_MINIMUM_DAYS}, Glacier's minimum storage"
        )
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: check_parameters.py TEMPLATE PARAMETERS.json", file=sys.stderr)
        return 2
    template, errors = decode(argv[0])
    if template is None:
        print(f"cannot read {argv[0]}: {errors[0]}", file=sys.stderr)
        return 1
    try:
        with open(argv[1], encoding="utf-8") as handle:
            entries = json.load(handle)
        given = {str(e["ParameterKey"]): str(e["ParameterValue"]) for e in entries}
    except (OSError, ValueError, TypeError, KeyError) as exc:
        print(f"cannot read parameters file {argv[1]}: {exc}", file=sys.stderr)
        return 1
    problems = problems_of(dict(template.get("Parameters", {})), given)
    for problem in problems:
        print(f"{argv[1]}: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
