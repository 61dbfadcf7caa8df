#!/usr/bin/env python3
"""Prints the pip requirements Home Assistant needs for a trimmed set of integrations.

Usage: ha-requirements.py WHEEL COMPONENTS_FILE CONSTRAINTS_OUT

Reads the Home Assistant wheel (no install needed): writes its own
homeassistant/package_constraints.txt to CONSTRAINTS_OUT, then walks, from the integrations in
COMPONENTS_FILE plus the ones bootstrap.py always sets up (CORE_INTEGRATIONS and
DEFAULT_INTEGRATIONS), every `dependencies` and `after_dependencies` of their manifest.json (the
walk Home Assistant's requirement check does when it may pip-install), and prints the union of
their `requirements`, one a line, sorted. Started with `--skip-pip`, Home Assistant installs
nothing itself: a requirement missing here makes an integration fail to import, and a failed
`frontend` drops Home Assistant into recovery mode.
"""

import ast
import json
import sys
import zipfile


def literal_set(source: str, name: str) -> set[str]:
    for node in ast.parse(source).body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id == name
        ):
            return set(ast.literal_eval(node.value))
    raise SystemExit(f"ha-requirements: no {name} in homeassistant/bootstrap.py")


def main() -> None:
    wheel_path, components_path, constraints_out = sys.argv[1:4]
    wheel = zipfile.ZipFile(wheel_path)
    with open(constraints_out, "wb") as out:
        out.write(wheel.read("homeassistant/package_constraints.txt"))

    bootstrap = wheel.read("homeassistant/bootstrap.py").decode()
    with open(components_path) as f:
        wanted = {
            line.split("#", 1)[0].strip() for line in f if line.split("#", 1)[0].strip()
        }
    todo = sorted(
        wanted
        | literal_set(bootstrap, "CORE_INTEGRATIONS")
        | literal_set(bootstrap, "DEFAULT_INTEGRATIONS")
    )

    seen: set[str] = set()
    requirements: set[str] = set()
    while todo:
        domain = todo.pop()
        if domain in seen:
            continue
        seen.add(domain)
        try:
            manifest = json.loads(
                wheel.read(f"homeassistant/components/{domain}/manifest.json")
            )
        except KeyError:
            raise SystemExit(f"ha-requirements: no integration named {domain!r}")
        requirements.update(manifest.get("requirements", []))
        todo.extend(manifest.get("dependencies", []))
        todo.extend(manifest.get("after_dependencies", []))

    print(
        f"ha-requirements: {len(seen)} integrations, {len(requirements)} requirements",
        file=sys.stderr,
    )
    for requirement in sorted(requirements):
        print(requirement)


if __name__ == "__main__":
    main()
