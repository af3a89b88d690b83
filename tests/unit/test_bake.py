"""docker-bake.hcl builds what the release pushes, with the Dockerfile's own arguments and secrets.

No Docker is needed: the bake file is read by a small reader of the HCL it uses (blocks, strings, lists
and maps of strings; it refuses anything else, so the file stays in what these checks understand), and
its targets are compared with the Dockerfile as tests/unit/test_dockerfile.py parses it.
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest

from handler.paths import REPO
from handler.settings import SPECS
from tests.unit.test_dockerfile import flag_values, of

BAKE = REPO / "docker-bake.hcl"
TOKEN = re.compile(r'\s*(?:(#[^\n]*)|("(?:[^"\\]|\\.)*")|([A-Za-z_][A-Za-z0-9_-]*)|([{}\[\]=,]))')


def tokens(text: str) -> list[str]:
    out, at = [], 0
    while at < len(text.rstrip()):
        match = TOKEN.match(text, at)
        assert match, f"docker-bake.hcl: unexpected text at {text[at : at + 40]!r}"
        at = match.end()
        if not match.group(1):  # comments dropped
            out.append(match.group(0).strip())
    return out


class Reader:
    """Blocks (``type "label" { ... }``) with attributes whose values are strings, lists or maps."""

    def __init__(self, text: str) -> None:
        self.tokens = tokens(text)
        self.at = 0

    def take(self, expected: str | None = None) -> str:
        token = self.tokens[self.at]
        assert expected is None or token == expected, f"expected {expected!r}, got {token!r}"
        self.at += 1
        return token

    def body(self, end: str | None) -> list[tuple[str, Any]]:
        items: list[tuple[str, Any]] = []
        while self.at < len(self.tokens) and self.tokens[self.at] != end:
            name = self.take()
            if self.tokens[self.at] == "=":
                self.take("=")
                items.append((name, self.value()))
                continue
            labels = []
            while self.tokens[self.at].startswith('"'):
                labels.append(self.take()[1:-1])
            self.take("{")
            items.append((name, (tuple(labels), dict(self.body("}")))))
            self.take("}")
        return items

    def value(self) -> Any:
        token = self.take()
        if token.startswith('"'):
            return token[1:-1]
        closing = {"[": "]", "{": "}"}[token]
        items: list[Any] = []
        while self.tokens[self.at] != closing:
            if token == "{":
                key = self.take()
                self.take("=")
                items.append((key, self.value()))
            else:
                items.append(self.value())
            if self.tokens[self.at] == ",":
                self.take(",")
        self.take(closing)
        return dict(items) if token == "{" else items


def blocks(kind: str) -> dict[str, dict[str, Any]]:
    found = [(labels, body) for name, (labels, body) in Reader(BAKE.read_text()).body(None) if name == kind]
    return {labels[0]: body for labels, body in found}


def resolved(name: str) -> dict[str, Any]:
    """A target with what it inherits merged in (its own values win; args maps merge)."""
    targets = blocks("target")
    own = targets[name]
    merged: dict[str, Any] = {}
    for parent in own.get("inherits", []):
        merged.update(resolved(parent))
    args = {**merged.get("args", {}), **own.get("args", {})}
    return {**merged, **own, "args": args}


def dockerfile_args() -> dict[str, str | None]:
    declared: dict[str, str | None] = {}
    for instruction in of("ARG"):
        name, sep, default = instruction.args.partition("=")
        declared[name] = default if sep else None
    return declared


def dockerfile_secret_ids() -> set[str]:
    ids = set()
    for run in of("RUN"):
        for mount in flag_values(run, "mount"):
            fields = dict(part.split("=", 1) for part in mount.split(","))
            if fields.get("type") == "secret":
                ids.add(fields["id"])
    return ids


BUILT = sorted(name for name in blocks("target") if not name.startswith("_"))


def test_the_reader_reads_blocks_lists_and_maps() -> None:
    text = 'variable "V" {\n  default = "1" # note\n}\ntarget "t" {\n  a = ["x", "y",]\n  m = { K = "v" }\n}\n'
    assert Reader(text).body(None) == [
        ("variable", (("V",), {"default": "1"})),
        ("target", (("t",), {"a": ["x", "y"], "m": {"K": "v"}})),
    ]
    with pytest.raises(AssertionError):
        Reader("target t { a = 1.5 }").body(None)


def test_the_default_group_builds_the_three_images() -> None:
    assert blocks("group")["default"]["targets"] == ["baked", "volume", "layers"]
    assert sorted(blocks("group")["default"]["targets"]) == BUILT


def test_the_layers_image_is_the_baked_one_with_both_layer_modes() -> None:
    """A release ships the layer modes: the baked image plus both modes' files, under its own tag."""
    baked, layers = resolved("baked"), resolved("layers")
    assert layers["args"] == {"BAKE_MODELS": "1", "LAYER_MODES": "foreground,background"}
    assert layers["tags"] == ["${IMAGE}:${VERSION}-layers"]
    assert {k: v for k, v in layers.items() if k not in ("args", "tags")} == {
        k: v for k, v in baked.items() if k not in ("args", "tags")
    }


@pytest.mark.parametrize("name", BUILT)
def test_each_target_builds_this_dockerfile_for_amd64(name: str) -> None:
    target = resolved(name)
    assert (target["context"], target["dockerfile"], target["platforms"]) == (".", "Dockerfile", ["linux/amd64"])


@pytest.mark.parametrize("name", BUILT)
def test_target_args_are_dockerfile_args(name: str) -> None:
    declared = dockerfile_args()
    unknown = sorted(set(resolved(name)["args"]) - set(declared))
    assert not unknown, f"{name} passes arguments the Dockerfile does not declare: {unknown}"


def test_baked_and_volume_differ_only_in_bake_models_and_tag() -> None:
    baked, volume = resolved("baked"), resolved("volume")
    assert baked["args"]["BAKE_MODELS"] == dockerfile_args()["BAKE_MODELS"] == "1"
    assert baked["args"] == {"BAKE_MODELS": "1", "LAYER_MODES": "${LAYER_MODES}"}  # a volume bakes no mode either
    assert volume["args"] == {"BAKE_MODELS": "0"}
    assert (baked["tags"], volume["tags"]) == (["${IMAGE}:${VERSION}"], ["${IMAGE}:${VERSION}-volume"])
    same = {key: value for key, value in baked.items() if key not in ("args", "tags")}
    assert same == {key: value for key, value in volume.items() if key not in ("args", "tags")}


@pytest.mark.parametrize("name", BUILT)
def test_target_secrets_are_the_dockerfile_secrets_from_the_fetcher_variables(name: str) -> None:
    secrets = dict(
        (fields["id"], fields["env"])
        for fields in (dict(part.split("=", 1) for part in entry.split(",")) for entry in resolved(name)["secret"])
    )
    assert set(secrets) == dockerfile_secret_ids() == {"civitai_token", "hf_token"}
    # Read from the variables the fetcher itself reads (settings), so one export serves both.
    envs = {spec.field: spec.env for spec in SPECS}
    assert secrets == {"civitai_token": envs["civitai_token"], "hf_token": envs["hf_token"]}


def test_version_defaults_to_the_project_version() -> None:
    variables = blocks("variable")
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert variables["VERSION"]["default"] == project
    assert set(variables) == {"IMAGE", "VERSION", "LAYER_MODES"}


def test_layer_modes_are_off_by_default_as_in_the_dockerfile() -> None:
    assert blocks("variable")["LAYER_MODES"]["default"] == dockerfile_args()["LAYER_MODES"] == ""
