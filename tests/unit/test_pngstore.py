"""The alpha API's image folder (PNG and WebP): atomic writes, retention, and reading back only what it wrote."""

from __future__ import annotations

import io
import os
import time
import uuid
from pathlib import Path

import pytest
from PIL import Image

from handler.doors.alpha.store import ImageStore, content_type


def png(seed: int = 0) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (4, 4), (seed % 256, 0, 0, 128)).save(out, "PNG")
    return out.getvalue()


def webp(seed: int = 0) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (4, 4), (seed % 256, 0, 0, 128)).save(out, "WEBP", lossless=True)
    return out.getvalue()


def name(extension: str = "png") -> str:
    return f"alpha_{uuid.uuid4().hex}.{extension}"


def store(root: Path, max_files: int = 100, max_age_s: float = 3600) -> ImageStore:
    return ImageStore(root, max_files=max_files, max_age_s=max_age_s)


def test_save_then_read_round_trips(tmp_path: Path) -> None:
    s, n, data = store(tmp_path / "served"), name(), png(1)
    assert s.save(n, data) == tmp_path / "served" / n
    assert s.read(n) == data
    assert sorted(os.listdir(tmp_path / "served")) == [n], "no temporary file is left"


@pytest.mark.parametrize("bad_name", ["x.png", "alpha_0.png", f"../alpha_{'0' * 32}.png", f"ALPHA_{'0' * 32}.PNG"])
def test_save_refuses_names_we_do_not_generate(tmp_path: Path, bad_name: str) -> None:
    with pytest.raises(ValueError, match="refusing to store"):
        store(tmp_path).save(bad_name, png())
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_non_png_content(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="refusing to store"):
        store(tmp_path).save(name(), b"GIF89a")


def test_webp_round_trips_with_its_type(tmp_path: Path) -> None:
    s, n, data = store(tmp_path), name("webp"), webp(3)
    s.save(n, data)
    assert s.read(n) == data
    assert (content_type(n), content_type(name())) == ("image/webp", "image/png")


@pytest.mark.parametrize(
    ("extension", "content"),
    [("webp", png(1)), ("png", webp(1)), ("webp", b"RIFF\x00\x00\x00\x00WAVEfmt "), ("webp", b"RIFF")],
    ids=["png-as-webp", "webp-as-png", "riff-wave", "riff-only"],
)
def test_content_must_be_the_format_the_name_says(tmp_path: Path, extension: str, content: bytes) -> None:
    """Saving refuses it; a file of that name put there by anything else is not served."""
    with pytest.raises(ValueError, match="refusing to store"):
        store(tmp_path).save(name(extension), content)
    planted = name(extension)
    (tmp_path / planted).write_bytes(content)
    assert store(tmp_path).read(planted) is None


@pytest.mark.parametrize(
    "bad_name", [f"alpha_{'0' * 32}.jpg", f"alpha_{'0' * 32}.webp.png.webp", f"alpha_{'0' * 32}.WEBP"]
)
def test_only_png_and_webp_names_are_ours(tmp_path: Path, bad_name: str) -> None:
    with pytest.raises(ValueError, match="refusing to store"):
        store(tmp_path).save(bad_name, webp())
    (tmp_path / bad_name).write_bytes(webp())
    assert store(tmp_path).read(bad_name) is None


def test_prune_keeps_the_newest_max_files(tmp_path: Path) -> None:
    s = store(tmp_path, max_files=3)
    names = []
    for i in range(8):
        n = name()
        names.append(n)
        s.save(n, png(i))
        os.utime(tmp_path / n, (time.time() - 100 + i, time.time() - 100 + i))  # strictly increasing ages
    s.prune()
    assert sorted(os.listdir(tmp_path)) == sorted(names[-3:])


def test_prune_removes_old_files_and_stale_temporaries_only(tmp_path: Path) -> None:
    s = store(tmp_path, max_age_s=86400)
    old, fresh, foreign = name(), name(), tmp_path / "notes.txt"
    s.save(old, png(1))
    s.save(fresh, png(2))
    foreign.write_text("not ours")
    stale_temp, new_temp = tmp_path / f".tmp-1-{name()}", tmp_path / f".tmp-2-{name()}"
    stale_temp.write_bytes(b"half")
    new_temp.write_bytes(b"in progress")
    long_ago = time.time() - 2 * 86400
    for path in (tmp_path / old, stale_temp, foreign):
        os.utime(path, (long_ago, long_ago))
    assert s.prune() == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([fresh, "notes.txt", new_temp.name])


def test_prune_of_a_missing_folder_is_a_no_op(tmp_path: Path) -> None:
    assert store(tmp_path / "absent").prune() == 0


def test_read_refuses_everything_it_did_not_write(tmp_path: Path) -> None:
    root = tmp_path / "served"
    s = store(root)
    good = name()
    s.save(good, png(1))
    outside = tmp_path / name()
    outside.write_bytes(png(2))
    cases = {}
    cases["symlink_out"] = name()
    (root / cases["symlink_out"]).symlink_to(outside)
    cases["symlink_in"] = name()
    (root / cases["symlink_in"]).symlink_to(root / good)
    cases["not_png"] = name()
    (root / cases["not_png"]).write_bytes(b"#!/bin/sh\necho not a png\n")
    cases["directory"] = name()
    (root / cases["directory"]).mkdir()
    cases["fifo"] = name()
    os.mkfifo(root / cases["fifo"])
    cases["loop"] = name()
    (root / cases["loop"]).symlink_to(root / cases["loop"])
    cases["missing"] = name()
    cases["symlink_webp"] = name("webp")
    (root / cases["symlink_webp"]).symlink_to(tmp_path / "outside.webp")
    (tmp_path / "outside.webp").write_bytes(webp(2))
    for label, n in cases.items():
        assert s.read(n) is None, label
    assert s.read(outside.name) is None
    assert s.read(good) == png(1), "the control case is served"
