"""The Dockerfile and .dockerignore, read as data: what is tested is what ships.

No Docker engine is needed: the Dockerfile is parsed here (continuation lines joined, comments
dropped), and the checks are about what it says: a digest-pinned CUDA base that matches torch's
CUDA, Python 3.11, every application step a command CI runs too, a build context that holds exactly
what the Dockerfile copies, the model step's secrets and skip switch (its shell is run with a stub
interpreter), no exposed port, and ./bootstrap.sh as the command.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from handler.paths import REPO
from tests import imports

DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"

# The system step: OS packages and the interpreter. It must not install the application.
SYSTEM_STEP = "apt-get install"
# Every other RUN calls exactly one of these, and each is run by CI too: (file, texts in that file).
# scripts/check.sh (CI's .ci/run) runs scripts/setup.sh and the test suite.
APP_COMMANDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "scripts/install_requirements.sh": ("scripts/setup.sh", ("scripts/install_requirements.sh",)),
    "scripts/install_comfyui.py --source": ("scripts/setup.sh", ("scripts/install_comfyui.py --source",)),
    "-m handler.models fetch": ("tests/unit/test_models.py", ("models.main([command", 'run("fetch"')),
}
SHA256_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    flags: tuple[str, ...]  # leading --name=value options
    args: str  # the rest, continuation lines joined
    line: int
    stage: int  # index of the FROM it belongs to


def parse(text: str) -> list[Instruction]:
    out: list[Instruction] = []
    stage = -1
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        if raw.lstrip().startswith("#") or (not pending and not raw.strip()):
            continue  # comments (parser directives included), also inside continuations
        if not pending:
            start = number
        continued = raw.rstrip().endswith("\\")
        pending.append(raw.rstrip()[:-1] if continued else raw)
        if continued:
            continue
        keyword, _, rest = " ".join(part.strip() for part in pending).partition(" ")
        pending = []
        flags = []
        while rest.startswith("--"):
            flag, _, rest = rest.partition(" ")
            flags.append(flag)
            rest = rest.lstrip()
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        out.append(Instruction(keyword, tuple(flags), rest.strip(), start, stage))
    assert not pending, "the Dockerfile ends inside a continuation line"
    return out


INSTRUCTIONS = parse(DOCKERFILE.read_text())
FINAL_STAGE = max(i.stage for i in INSTRUCTIONS)


def of(keyword: str, stage: int | None = None) -> list[Instruction]:
    return [i for i in INSTRUCTIONS if i.keyword == keyword and (stage is None or i.stage == stage)]


def env() -> dict[str, str]:
    values: dict[str, str] = {}
    for instruction in of("ENV", FINAL_STAGE):
        for word in shlex.split(instruction.args):
            key, sep, value = word.partition("=")
            assert sep, f"line {instruction.line}: write ENV as KEY=value"
            values[key] = value
    return values


def args_declared(stage: int) -> dict[str, str | None]:
    declared: dict[str, str | None] = {}
    for instruction in of("ARG", stage):
        name, sep, default = instruction.args.partition("=")
        declared[name] = default if sep else None
    return declared


def image_of(instruction: Instruction) -> str:
    """A FROM's image as a build with no arguments gets it: ``${NAME}`` resolved from the global ARGs."""
    image = instruction.args.split()[0]
    for name, default in args_declared(-1).items():
        image = image.replace("${" + name + "}", default or "")
    return image


def flag_values(instruction: Instruction, name: str) -> list[str]:
    return [flag.split("=", 1)[1] for flag in instruction.flags if flag.startswith(f"--{name}=")]


def option(command: str, name: str) -> str:
    words = shlex.split(command)
    return words[words.index(name) + 1]


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        name, sep, version = line.partition("==")
        if sep and not line.startswith("#"):
            found[name.strip().lower()] = version.strip()
    return found


def app_steps() -> list[tuple[Instruction, str]]:
    steps = []
    for run in of("RUN"):
        if SYSTEM_STEP in run.args:
            continue
        used = [command for command in APP_COMMANDS if command in run.args]
        assert len(used) == 1, f"line {run.line}: a RUN must call exactly one of {list(APP_COMMANDS)}: {run.args}"
        steps.append((run, used[0]))
    return steps


def model_step() -> Instruction:
    [step] = [run for run, command in app_steps() if command == "-m handler.models fetch"]
    return step


# --- the base image and the interpreter -------------------------------------------------------------


def test_parser_joins_continuations_and_drops_comments() -> None:
    parsed = parse('# syntax=x\nFROM a:1 AS b\n\nRUN --mount=type=secret,id=t one \\\n  # note\n  two\nCMD ["x"]\n')
    assert [(i.keyword, i.flags, i.args, i.stage) for i in parsed] == [
        ("FROM", (), "a:1 AS b", 0),
        ("RUN", ("--mount=type=secret,id=t",), "one two", 0),
        ("CMD", (), '["x"]', 0),
    ]


def test_base_image_is_cuda_pinned_by_digest_and_matches_torch() -> None:
    final = image_of(of("FROM", FINAL_STAGE)[0])
    assert SHA256_DIGEST.search(final), f"the base image must be pinned by digest: {final}"
    name, _, tag = final.split("@")[0].partition(":")
    assert name == "nvidia/cuda" and re.fullmatch(r"\d+\.\d+\.\d+-(cudnn-)?runtime-ubuntu\d+\.\d+", tag), final
    # torch's CUDA libraries come as pinned wheels; the base image's CUDA release must be theirs.
    constraints, requirements = pins(REPO / "constraints.txt"), pins(REPO / "requirements.txt")
    cuda = constraints["cuda-toolkit"].split(".")[:2]
    assert tag.split(".")[:2] == cuda, f"base image CUDA {tag} but torch's wheels are CUDA {'.'.join(cuda)}"
    for package in ("torch", "torchvision"):
        assert requirements[package] == constraints[package], package


def test_every_other_image_is_pinned_too() -> None:
    for instruction in of("FROM"):
        image = image_of(instruction)
        assert image == "scratch" or SHA256_DIGEST.search(image), f"line {instruction.line}: {image}"
    for add in of("ADD"):
        assert flag_values(add, "checksum"), f"line {add.line}: ADD downloads must carry --checksum=sha256:..."
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", flag_values(add, "checksum")[0])


def test_no_instruction_downloads_from_a_url() -> None:
    """Everything from outside comes through a pinned image or a pinned package: no ADD, no URL in any
    instruction (comments may point at documentation)."""
    assert not of("ADD"), "fetch files through a digest-pinned image or a pinned package, not ADD"
    for instruction in INSTRUCTIONS:
        text = " ".join((*instruction.flags, instruction.args))
        assert "://" not in text, f"line {instruction.line} names a download URL: {text}"


def test_uv_comes_from_its_official_image_by_digest_and_stays_out_of_the_layers() -> None:
    [stage] = [i for i in of("FROM") if "/astral-sh/uv:" in image_of(i)]
    image, alias = image_of(stage), stage.args.split()[-1]
    assert SHA256_DIGEST.search(image) and re.fullmatch(r"ghcr\.io/astral-sh/uv:\d+\.\d+\.\d+@.*", image), image
    assert stage.stage < FINAL_STAGE and stage.args.split()[-2].upper() == "AS"
    [system] = [run for run in of("RUN") if SYSTEM_STEP in run.args]
    assert f"--mount=type=bind,from={alias},source=/uv,target=/usr/local/bin/uv" in system.flags
    assert "uv python install" in system.args
    assert not [c for c in of("COPY") if flag_values(c, "from") == [alias]], "uv is mounted, not copied"


def test_python_is_3_11_like_the_constraints() -> None:
    version = args_declared(FINAL_STAGE)["PYTHON_VERSION"]
    assert version is not None and re.fullmatch(r"3\.11\.\d+", version), version
    assert "Python 3.11" in (REPO / "constraints.txt").read_text().splitlines()[0]
    assert 'python_version = "3.11"' in (REPO / "pyproject.toml").read_text()
    # The interpreter the requirements step gets is the one the system step installed and checked.
    python = args_declared(FINAL_STAGE)["PYTHON"]
    assert python is not None and python.startswith("/opt/python/")
    [system] = [run for run in of("RUN") if SYSTEM_STEP in run.args]
    assert "--install-dir /opt/python" in system.args and '"${PYTHON}" -c' in system.args


# --- the remote inputs as build arguments (scripts/image_check.sh --offline swaps in stand-ins) -------


def test_each_remote_input_is_a_build_argument_whose_default_is_the_pin() -> None:
    """A build with no arguments is the pinned release recipe: the FROM lines name only these global ARGs."""
    globals_ = args_declared(-1)
    assert set(globals_) == {"UV_IMAGE", "BASE_IMAGE"}
    assert [i.args for i in of("FROM")] == ["${UV_IMAGE} AS uv", "${BASE_IMAGE}"]
    assert all(default and SHA256_DIGEST.search(default) for default in globals_.values())
    declared = args_declared(FINAL_STAGE)
    assert (declared["PYTHON_SOURCE"], declared["COMFYUI_SOURCE"]) == ("uv", "git")
    [comfy] = [run for run, command in app_steps() if command.startswith("scripts/install_comfyui.py")]
    assert '--source "${COMFYUI_SOURCE}"' in comfy.args


def run_system_step(tmp_path: Path, source: str) -> tuple[subprocess.CompletedProcess[str], str]:
    """The system step's shell with PYTHON_SOURCE set, every command it runs stubbed to record its call; PYTHON
    points into tmp_path, and the stub python3.11 answers like Python 3.11."""
    calls = tmp_path / "calls"
    stubs = tmp_path / "bin"
    stubs.mkdir()
    record = '#!/bin/sh\necho "$(basename "$0") $*" >> "$CALLS"\n'
    for name in ("apt-get", "uv", "ln"):
        (stubs / name).write_text(record)
        (stubs / name).chmod(0o755)
    python = tmp_path / "opt" / "python" / "bin" / "python3.11"
    python.parent.mkdir(parents=True)
    python.write_text(record)
    python.chmod(0o755)
    [system] = [run for run in of("RUN") if SYSTEM_STEP in run.args]
    done = subprocess.run(
        ["/bin/sh", "-c", system.args.replace("/tmp/uv-cache", str(tmp_path / "uv-cache"))],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={
            "PATH": f"{stubs}:{os.environ['PATH']}",
            "CALLS": str(calls),
            "PYTHON_SOURCE": source,
            "PYTHON_VERSION": "3.11.17",
            "PYTHON": str(python),
        },
    )
    return done, calls.read_text() if calls.exists() else ""


def test_system_step_installs_python_with_uv_by_default(tmp_path: Path) -> None:
    done, calls = run_system_step(tmp_path, "uv")
    assert done.returncode == 0, done.stderr
    lines = calls.splitlines()
    assert lines[1] == "apt-get install -y --no-install-recommends ca-certificates git"
    assert lines[2] == "uv python install --install-dir /opt/python --no-bin 3.11.17"
    assert lines[3].startswith("python3.11 -c import platform") and len(lines) == 4


def test_system_step_links_the_bases_python_with_system(tmp_path: Path) -> None:
    done, calls = run_system_step(tmp_path, "system")
    assert done.returncode == 0, done.stderr
    lines = calls.splitlines()
    assert lines[1].endswith("ca-certificates git python3.11 python3.11-venv")
    assert lines[2] == f"ln -s /usr/bin/python3.11 {tmp_path}/opt/python/bin/python3.11"
    assert not [line for line in lines if line.startswith("uv ")]


def test_system_step_refuses_other_python_sources(tmp_path: Path) -> None:
    done, calls = run_system_step(tmp_path, "conda")
    assert done.returncode == 2 and "PYTHON_SOURCE must be uv or system, not 'conda'" in done.stderr
    assert "install" not in calls


# --- every step is one CI runs too -------------------------------------------------------------------


def test_ci_runs_setup_and_the_tests() -> None:
    assert "scripts/check.sh" in (REPO / ".ci" / "run").read_text()
    check = (REPO / "scripts" / "check.sh").read_text()
    assert "scripts/setup.sh" in check and "-m pytest" in check


@pytest.mark.parametrize("command", sorted(APP_COMMANDS))
def test_each_allowed_command_is_run_by_ci(command: str) -> None:
    path, needles = APP_COMMANDS[command]
    text = (REPO / path).read_text()
    for needle in needles:
        assert needle in text, f"{path} no longer runs {command!r} (looked for {needle!r})"


def test_every_run_calls_a_command_ci_runs() -> None:
    systems = [run for run in of("RUN") if SYSTEM_STEP in run.args]
    assert len(systems) == 1, "exactly one system step (apt-get)"
    for word in (r"\bpip\b", r"(^|\s)(\./)?scripts/", r"\bhandler\b", r"\.venv\b", r"requirements"):
        assert not re.search(word, systems[0].args), f"the system step must not install the application ({word})"
    used = {command for _, command in app_steps()}
    assert used == set(APP_COMMANDS), f"listed but not used: {set(APP_COMMANDS) - used}"


def test_install_targets_match_the_settings() -> None:
    values = env()
    [comfy] = [run for run, command in app_steps() if command.startswith("scripts/install_comfyui.py")]
    assert option(comfy.args, "--target") == values["ALPHA_COMFYUI_DIR"]
    dest = option(model_step().args, "--dest")
    assert dest == values["ALPHA_MODELS_DIR"]
    assert not dest.startswith(values["ALPHA_COMFYUI_DIR"] + "/"), (
        "install_comfyui.py replaces the ComfyUI folder whole; keep the weights outside it"
    )
    # bootstrap.sh runs .venv/bin/python from its own folder: the venv must be in WORKDIR.
    workdir = of("WORKDIR", FINAL_STAGE)[-1].args
    assert (workdir, values.get("ALPHA_PYTHON")) == ("/app", None)
    assert "--venv" not in next(run.args for run, c in app_steps() if c == "scripts/install_requirements.sh")


# --- the build context ----------------------------------------------------------------------------


def dockerignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """(excluding?, regex) in file order; the last pattern that matches a path or a parent decides."""
    patterns = []
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        include = line.startswith("!")
        pattern = os.path.normpath(line.removeprefix("!").strip()).lstrip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        patterns.append((not include, re.compile(regex)))
    return patterns


def in_context(path: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> bool:
    parts = path.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    excluded = False
    for excluding, regex in patterns:
        if any(regex.fullmatch(candidate) for candidate in candidates):
            excluded = excluding
    return not excluded


def repo_files() -> list[str]:
    """The files a fresh clone would have (tracked, plus new files git does not ignore)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return sorted(path for path in listed.split("\0") if path and (REPO / path).is_file())


def copy_sources() -> list[str]:
    sources = []
    for copy in of("COPY"):
        if flag_values(copy, "from"):
            continue
        assert not copy.args.startswith("["), f"line {copy.line}: use the plain COPY form"
        sources += [source.removeprefix("./").rstrip("/") for source in copy.args.split()[:-1]]
    return sources


def under(path: str, source: str) -> bool:
    return path == source or path.startswith(source + "/")


def test_dockerignore_matching() -> None:
    patterns = dockerignore_patterns()
    assert in_context("handler/models/fetch.py", patterns)
    assert not in_context("handler/models/__pycache__/fetch.cpython-311.pyc", patterns)
    assert not in_context("tests/unit/test_models.py", patterns)
    assert not in_context(".venv/bin/python", patterns)
    assert not in_context("scripts/setup.sh", patterns)


def test_every_copy_source_is_in_the_context_and_nothing_else_is() -> None:
    patterns = dockerignore_patterns()
    files = [path for path in repo_files() if "__pycache__" not in path.split("/")]
    context = {path for path in files if in_context(path, patterns)}
    sources = copy_sources()
    for source in sources:
        named = [path for path in files if under(path, source)]
        assert named, f"COPY {source}: no such file in the repository"
        left_out = [path for path in named if path not in context]
        assert not left_out, f"COPY {source}: .dockerignore leaves out {left_out}"
    unused = sorted(path for path in context if not any(under(path, source) for source in sources))
    assert not unused, f"in the build context but never copied (tighten .dockerignore): {unused}"


def test_the_fetcher_is_complete_before_the_model_step() -> None:
    step = model_step()
    copied = [
        source
        for copy in of("COPY", FINAL_STAGE)
        if copy.line < step.line and not flag_values(copy, "from")
        for source in copy.args.split()[:-1]
    ]
    known = imports.modules()
    loaded = imports.loaded_by("handler.models.__main__")
    needed = {"pins/models.json"} | {str(known[module].relative_to(REPO)) for module in loaded}
    missing = sorted(path for path in needed if not any(under(path, source.rstrip("/")) for source in copied))
    assert not missing, f"the model step runs before these are copied: {missing}"


def lay_out_app(root: Path, before_line: int | None = None) -> Path:
    """/app as the COPY instructions of the final stage build it (those before `before_line`), under root."""
    workdir = of("WORKDIR", FINAL_STAGE)[-1].args
    app = root / workdir.lstrip("/")
    for copy in of("COPY", FINAL_STAGE):
        if flag_values(copy, "from") or (before_line is not None and copy.line > before_line):
            continue
        *sources, dest = copy.args.split()
        target = app / dest
        target.mkdir(parents=True, exist_ok=True)
        for source in sources:
            path = REPO / source
            if path.is_dir():
                shutil.copytree(path, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(path, target / path.name)
    return app


def run_in(app: Path, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Python in the laid-out /app, which must import nothing from this checkout."""
    environ = {
        key: value
        for key, value in os.environ.items()
        if key != "PYTHONPATH" and not key.startswith(("ALPHA_", "CIVITAI_", "HF_"))
    }
    return subprocess.run(
        [sys.executable, *args],
        cwd=app,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**environ, **(extra_env or {})},
    )


def test_the_model_step_runs_on_what_is_copied_before_it(tmp_path: Path) -> None:
    app = lay_out_app(tmp_path, before_line=model_step().line)
    done = run_in(app, "-m", "handler.models", "check", "--dest", str(tmp_path / "models"))
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 1 and done.stdout.count("MISSING") == 3, done.stdout + done.stderr
    modes = run_in(app, "-m", "handler.models", "check", "--dest", str(tmp_path / "models"), "--modes=foreground")
    assert modes.returncode == 1 and modes.stdout.count("MISSING") == 5, modes.stdout + modes.stderr


def test_the_image_app_imports_and_its_settings_are_valid(tmp_path: Path) -> None:
    app = lay_out_app(tmp_path)
    modules = sorted(name for name in imports.modules() if not name.endswith("__main__"))
    done = run_in(app, "-c", "; ".join(f"import {module}" for module in modules))
    assert done.returncode == 0, done.stderr
    checked = run_in(app, "-m", "handler.settings", "--check", extra_env=env())
    assert checked.returncode == 0, checked.stderr
    assert (app / "bootstrap.sh").stat().st_mode & 0o111 and (app / "workflows" / "alpha_txt2img.json").is_file()


# --- the model step ----------------------------------------------------------------------------------


def test_model_step_reads_tokens_from_buildkit_secrets_only() -> None:
    step = model_step()
    mounts = flag_values(step, "mount")
    for secret, variable in (("civitai_token", "CIVITAI_TOKEN_FILE"), ("hf_token", "HF_TOKEN_FILE")):
        assert f"type=secret,id={secret}" in mounts
        assert f"{variable}=/run/secrets/{secret}" in step.args
    for instruction in of("ARG") + of("ENV"):
        assert "TOKEN" not in instruction.args.upper(), f"line {instruction.line}: tokens go in as secrets only"


def run_model_step(tmp_path: Path, bake: str, modes: str = "") -> tuple[subprocess.CompletedProcess[str], Path]:
    """The model step's shell, with BAKE_MODELS and LAYER_MODES set and a stub .venv/bin/python that records
    its call."""
    calls = tmp_path / "calls"
    stub = tmp_path / ".venv" / "bin" / "python"
    stub.parent.mkdir(parents=True)
    stub.write_text('#!/bin/sh\necho "$* | $CIVITAI_TOKEN_FILE | $HF_TOKEN_FILE" >> "$CALLS"\n')
    stub.chmod(0o755)
    done = subprocess.run(
        ["/bin/sh", "-c", model_step().args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={"PATH": os.environ["PATH"], "BAKE_MODELS": bake, "LAYER_MODES": modes, "CALLS": str(calls)},
    )
    return done, calls


def test_model_step_bakes_by_default(tmp_path: Path) -> None:
    assert args_declared(FINAL_STAGE)["BAKE_MODELS"] == "1"
    arg_line = next(i.line for i in of("ARG", FINAL_STAGE) if i.args.startswith("BAKE_MODELS"))
    assert arg_line < model_step().line
    done, calls = run_model_step(tmp_path, "1")
    assert done.returncode == 0, done.stderr
    dest = env()["ALPHA_MODELS_DIR"]
    assert calls.read_text() == (
        f"-m handler.models fetch --dest {dest} --modes= | /run/secrets/civitai_token | /run/secrets/hf_token\n"
    )


def test_model_step_bakes_no_layer_mode_by_default_and_the_ones_named(tmp_path: Path) -> None:
    assert args_declared(FINAL_STAGE)["LAYER_MODES"] == ""
    arg_line = next(i.line for i in of("ARG", FINAL_STAGE) if i.args.startswith("LAYER_MODES"))
    assert arg_line < model_step().line
    done, calls = run_model_step(tmp_path, "1", "foreground,background")
    assert done.returncode == 0, done.stderr
    assert calls.read_text().split(" | ")[0].endswith(" --modes=foreground,background")


def test_model_step_skips_with_bake_models_0(tmp_path: Path) -> None:
    done, calls = run_model_step(tmp_path, "0")
    assert done.returncode == 0, done.stderr
    assert not calls.exists()


def test_model_step_refuses_other_values(tmp_path: Path) -> None:
    done, calls = run_model_step(tmp_path, "yes")
    assert done.returncode != 0 and "BAKE_MODELS must be 1 or 0" in done.stderr
    assert not calls.exists()


# --- the running container ---------------------------------------------------------------------------


def test_no_exposed_ports() -> None:
    assert not of("EXPOSE")


def test_runpod_log_level_is_info() -> None:
    assert env()["RUNPOD_LOG_LEVEL"] == "INFO"


def test_cmd_runs_bootstrap() -> None:
    [cmd] = of("CMD")
    assert cmd.stage == FINAL_STAGE and json.loads(cmd.args) == ["./bootstrap.sh"]
    assert not of("ENTRYPOINT")
    assert "bootstrap.sh" in copy_sources()
    mode = subprocess.run(
        ["git", "ls-files", "-s", "bootstrap.sh"], cwd=REPO, capture_output=True, text=True, check=True, timeout=30
    ).stdout.split()[0]
    assert mode == "100755", "bootstrap.sh must be executable in git: the image runs it directly"
