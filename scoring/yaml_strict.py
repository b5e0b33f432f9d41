"""YAML for the files people edit (site config, rubrics): safe, and a key written twice is an error.

PyYAML keeps the last of two equal keys in a mapping without a word, so a `port:` added below an
old one, or a row's `points:` changed by adding a line instead of editing one, silently wins or
loses depending on the order. Here it is refused, naming the key, the mapping and both lines.
Keys are compared as values, as YAML does: `yes:` and `true:` are the same key. Keys brought in by
a merge (`<<: *base`) may still be overridden; that is what merging is for.
"""

from __future__ import annotations

from typing import Any

import yaml


class DuplicateKeyError(yaml.YAMLError):
    """A mapping names one key twice. The message has no file name: the caller adds it."""

    def __init__(self, key: object, mapping_line: int, first_line: int, second_line: int) -> None:
        self.key, self.mapping_line, self.first_line, self.second_line = key, mapping_line, first_line, second_line
        lines = (f"both on line {first_line}" if first_line == second_line
                 else f"lines {first_line} and {second_line}")
        super().__init__(f"key {key!r} appears twice in the mapping at line {mapping_line} ({lines}); "
                         "keep one of them")


class StrictSafeLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that refuses a mapping with a key written twice."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            self._refuse_duplicates(node)
        return super().construct_mapping(node, deep=deep)

    def _refuse_duplicates(self, node: yaml.MappingNode) -> None:
        seen: dict[object, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue  # a merge, or a complex key (refused as unhashable by PyYAML itself)
            key = self.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise DuplicateKeyError(key, node.start_mark.line + 1, seen[key], line)
            seen[key] = line


def load_strict(text: str) -> Any:
    """Parse one YAML document like `yaml.safe_load`, refusing duplicate keys (DuplicateKeyError,
    a yaml.YAMLError) as well as bad syntax (yaml.YAMLError)."""
    return yaml.load(text, Loader=StrictSafeLoader)  # a SafeLoader: no Python objects
