"""Settings: one object from the environment; a bad value names its variable."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from handler.paths import REPO
from handler.settings import SPECS, Settings, SettingsError, main, markdown_table


def test_fields_match_specs_and_defaults() -> None:
    assert [f.name for f in dataclasses.fields(Settings)] == [s.field for s in SPECS]
    assert Settings.from_env({}) == Settings()


def test_values_are_converted() -> None:
    s = Settings.from_env(
        {
            "ALPHA_COMFYUI_PORT": "9000",
            "ALPHA_TEST_MODELS": "yes",
            "ALPHA_COMFYUI_ARGS": "--highvram --preview-method 'none'",
            "ALPHA_JOB_TIMEOUT_S": "12.5",
            "ALPHA_MODELS_DIR": "/tmp/m",
        }
    )
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
    # The image sets ALPHA_MODELS_DIR; test mode uses its test models all the same.
    assert (
        Settings(test_models=True, test_models_cache=Path("/c"), models_dir=Path("/m")).effective_models_dir == test_dir
    )
    assert Settings(models_dir=Path("/m")).effective_models_dir == Path("/m")


def test_round_trip_through_env() -> None:
    s = Settings(comfyui_port=1234, comfyui_args=("--a", "b c"), test_models=True, output_dir=Path("/o"))
    assert Settings.from_env(s.to_env()) == s


@pytest.mark.parametrize(
    ("env", "value"),
    [
        ("ALPHA_COMFYUI_PORT", "http"),
        ("ALPHA_COMFYUI_PORT", "70000"),
        ("ALPHA_TEST_MODELS", "maybe"),
        ("ALPHA_JOB_TIMEOUT_S", "0"),
        ("ALPHA_JOB_TIMEOUT_S", "soon"),
        ("ALPHA_JOB_TIMEOUT_S", "nan"),
        ("ALPHA_DEVICE", "tpu"),
        ("ALPHA_TEST_SIZE", "100"),
        ("ALPHA_LOG_LEVEL", "LOUD"),
        ("ALPHA_WORKFLOW", " "),
        ("ALPHA_SERVE_HOST", "example.com"),
        ("ALPHA_SERVE_TOKEN", "short"),
        ("ALPHA_SERVE_TOKEN", "has a space in it!!"),
        ("ALPHA_SERVE_MAX_AGE_DAYS", "-1"),
        ("ALPHA_SERVE_MAX_FILES", "0"),
        ("ALPHA_SERVE_MAX_BODY_BYTES", "10"),
        ("ALPHA_FETCH_ATTEMPTS", "0"),
        ("CIVITAI_TOKEN", "two words"),
        ("ALPHA_MAX_UNIFORM_ALPHA", "0.4"),
        ("ALPHA_MAX_UNIFORM_ALPHA", "1.01"),
        ("ALPHA_MAX_UNIFORM_ALPHA", "nan"),
        ("ALPHA_MAX_OUTPUT_BYTES", "100"),
        ("ALPHA_MAX_OUTPUT_BYTES", "30000000"),
        ("BUCKET_ENDPOINT_URL", "s3.amazonaws.com"),
        ("BUCKET_ENDPOINT_URL", "ftp://host"),
        ("BUCKET_ENDPOINT_URL", "https://"),
        ("ALPHA_BUCKET_NAME", "Results_2024"),
        ("ALPHA_BUCKET_NAME", "ab"),
        ("ALPHA_BUCKET_TIMEOUT_S", "0"),
        ("BUCKET_SECRET_ACCESS_KEY", "has space"),
    ],
)
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


BUCKET_ENV = {
    "BUCKET_ENDPOINT_URL": "https://acct.r2.cloudflarestorage.com/",
    "BUCKET_ACCESS_KEY_ID": "AKID123",
    "BUCKET_SECRET_ACCESS_KEY": "bucket-secret-4",
    "ALPHA_BUCKET_NAME": "alpha-results",
}


def test_output_guard_defaults() -> None:
    s = Settings()
    assert (s.max_uniform_alpha, s.max_output_bytes, s.bucket_configured) == (0.999, 9_500_000, False)
    assert Settings.from_env({"ALPHA_MAX_UNIFORM_ALPHA": "1"}).max_uniform_alpha == 1.0


def test_a_bucket_needs_all_its_settings(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    s = Settings.from_env(BUCKET_ENV)
    assert s.bucket_configured and s.bucket_endpoint_url == "https://acct.r2.cloudflarestorage.com"
    assert "bucket-secret-4" not in repr(s) and "AKID123" in repr(s)
    assert Settings.from_env(s.to_env()) == s
    with pytest.raises(
        SettingsError,
        match=r"^BUCKET_ENDPOINT_URL is set, so BUCKET_SECRET_ACCESS_KEY and "
        r"ALPHA_BUCKET_NAME must be set too$",
    ):
        Settings.from_env({**BUCKET_ENV, "BUCKET_SECRET_ACCESS_KEY": "", "ALPHA_BUCKET_NAME": ""})
    # Without an endpoint the other bucket settings do nothing.
    assert not Settings.from_env({**BUCKET_ENV, "BUCKET_ENDPOINT_URL": ""}).bucket_configured
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({**BUCKET_ENV, "BUCKET_SECRET_ACCESS_KEY": "bucket secret 5"})
    assert str(caught.value).startswith("BUCKET_SECRET_ACCESS_KEY=<hidden>: expected") and "secret 5" not in str(
        caught.value
    )
    for name, value in BUCKET_ENV.items():
        monkeypatch.setenv(name, value)
    assert main(["--get", "bucket_secret_access_key"]) == 1
    out, err = capsys.readouterr()
    assert "bucket-secret-4" not in out + err and "is a secret" in err
