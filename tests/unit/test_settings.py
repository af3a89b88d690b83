"""Settings: one object from the environment; a bad value names its variable."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from handler.settings import REPO, SPECS, Settings, SettingsError, main, markdown_table


def test_fields_match_specs_and_defaults() -> None:
    assert [f.name for f in dataclasses.fields(Settings)] == [s.field for s in SPECS]
    assert Settings.from_env({}) == Settings()


def test_values_are_converted() -> None:
    s = Settings.from_env({"ALPHA_COMFYUI_PORT": "9000", "ALPHA_TEST_MODELS": "yes",
                           "ALPHA_COMFYUI_ARGS": "--highvram --preview-method 'none'",
                           "ALPHA_JOB_TIMEOUT_S": "12.5", "ALPHA_MODELS_DIR": "/tmp/m"})
    assert s.comfyui_port == 9000 and s.test_models is True
    assert s.comfyui_args == ("--highvram", "--preview-method", "none")
    assert s.job_timeout_s == 12.5 and s.models_dir == Path("/tmp/m")
    assert s.comfyui_url == "http://127.0.0.1:9000"


def test_derived_values() -> None:
    assert Settings().effective_device == "cuda"
    assert Settings(test_models=True).effective_device == "cpu"
    assert Settings(test_models=True, device="cuda").effective_device == "cuda"
    assert Settings(comfyui_dir=Path("/x")).effective_output_dir == Path("/x/output")
    assert Settings().effective_models_dir is None
    test_dir = Settings(test_models=True, test_models_cache=Path("/c")).effective_models_dir
    assert test_dir is not None and test_dir.parent == Path("/c")


def test_round_trip_through_env() -> None:
    s = Settings(comfyui_port=1234, comfyui_args=("--a", "b c"), test_models=True, output_dir=Path("/o"))
    assert Settings.from_env(s.to_env()) == s


@pytest.mark.parametrize(("env", "value"), [
    ("ALPHA_COMFYUI_PORT", "http"), ("ALPHA_COMFYUI_PORT", "70000"), ("ALPHA_TEST_MODELS", "maybe"),
    ("ALPHA_JOB_TIMEOUT_S", "0"), ("ALPHA_JOB_TIMEOUT_S", "soon"), ("ALPHA_JOB_TIMEOUT_S", "nan"),
    ("ALPHA_DEVICE", "tpu"),
    ("ALPHA_TEST_SIZE", "100"), ("ALPHA_LOG_LEVEL", "LOUD"), ("ALPHA_WORKFLOW", " "),
    ("ALPHA_SERVE_HOST", "example.com"), ("ALPHA_SERVE_TOKEN", "short"), ("ALPHA_SERVE_TOKEN", "has a space in it!!"),
    ("ALPHA_SERVE_MAX_AGE_DAYS", "-1"), ("ALPHA_SERVE_MAX_FILES", "0"), ("ALPHA_SERVE_MAX_BODY_BYTES", "10"),
    ("ALPHA_FETCH_ATTEMPTS", "0"), ("CIVITAI_TOKEN", "two words"),
])
def test_bad_values_name_the_variable(env: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"^{env}=.*: expected ") as caught:
        Settings.from_env({env: value})
    assert "invalid literal" not in str(caught.value)


def test_tokens_stay_secret(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    s = Settings.from_env({"CIVITAI_TOKEN": " civ-secret-1 ", "HF_TOKEN_FILE": "/run/secrets/hf_token"})
    assert s.civitai_token == "civ-secret-1" and s.hf_token == "" and s.hf_token_file == Path("/run/secrets/hf_token")
    assert "civ-secret-1" not in repr(s) and "hf_token_file=" in repr(s)
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"HF_TOKEN": "hf-secret-2 extra"})
    assert str(caught.value).startswith("HF_TOKEN=<hidden>: expected") and "secret-2" not in str(caught.value)
    monkeypatch.setenv("CIVITAI_TOKEN", "civ-secret-3")
    assert main(["--get", "civitai_token"]) == 1
    out, err = capsys.readouterr()
    assert "civ-secret-3" not in out + err and "is a secret" in err


def test_deployment_md_holds_the_generated_table() -> None:
    """The table in DEPLOYMENT.md is `python -m handler.settings --markdown`; it must not drift."""
    assert markdown_table() in (REPO / "DEPLOYMENT.md").read_text()


def test_the_serve_token_is_a_secret() -> None:
    token = "t0ken-that-is-long-enough"
    s = Settings.from_env({"ALPHA_SERVE_TOKEN": token})
    assert s.serve_token == token and token not in repr(s)
    assert Settings.from_env({"ALPHA_SERVE_TOKEN": "  "}).serve_token is None


def test_serve_defaults_are_loopback() -> None:
    s = Settings(output_dir=Path("/o"))
    assert (s.serve_host, s.serve_port, s.serve_is_loopback) == ("127.0.0.1", 7861, True)
    assert s.effective_serve_dir == Path("/o/alpha-api")
    assert not Settings(serve_host="0.0.0.0").serve_is_loopback
    assert Settings(serve_host="::1").serve_is_loopback and Settings(serve_host="localhost").serve_is_loopback
