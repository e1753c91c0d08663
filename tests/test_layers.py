"""The layers import one way: ``bot`` -> ``adapters`` -> ``posts``, never back up.

``posts`` (the domain, its errors and its clock) imports nothing from ``adapters`` or ``bot``;
``adapters`` imports nothing from ``bot``. Every import counts: at module level, inside a function,
or only for type checking.
"""

from __future__ import annotations

import grimp
import pytest

LAYERS = ("bot", "adapters", "posts")
"""Highest first: a layer may import the layers below it, never those above."""


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*LAYERS, cache_dir=None)


def describe(dependencies: set[grimp.PackageDependency]) -> list[str]:
    return sorted(" -> ".join(["/".join(sorted(route.heads)), *route.middle, "/".join(sorted(route.tails))])
                  for dependency in dependencies for route in dependency.routes)


def test_no_layer_imports_a_layer_above_it(graph: grimp.ImportGraph) -> None:
    illegal = graph.find_illegal_dependencies_for_layers(layers=LAYERS)
    assert not illegal, "imports that go up a layer:\n" + "\n".join(describe(illegal))


@pytest.mark.parametrize(("lower", "upper"), [("posts", "bot"), ("posts", "adapters"), ("adapters", "bot")])
def test_no_module_of_a_lower_layer_imports_one_above(graph: grimp.ImportGraph, lower: str, upper: str) -> None:
    upward = [(importer, imported) for importer in graph.find_descendants(lower) | {lower}
              for imported in graph.find_modules_directly_imported_by(importer)
              if imported == upper or imported.startswith(upper + ".")]
    assert upward == [], f"{lower} imports {upper}: {sorted(upward)}"
