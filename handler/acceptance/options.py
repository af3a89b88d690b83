"""The jobs that try what the worker offers besides a prompt: a trimmed lossless WebP, ``delivery: "base64"``, and
each layer mode with an input image of its own, drawn here (nothing to ship or download).

Each job asks for a size, so its answer is checked against what was asked: a layer mode's image has that size's
aspect exactly (README, "Layer modes": the fit rule then keeps it). What the endpoint does not serve is recorded
as not offered, not as a failure: a layer mode it refuses with ``mode_unavailable`` (turned off, or its model
files not there), and ``delivery`` on the alpha API, which always answers with a file's URL.
"""

from __future__ import annotations

import base64
import io

from PIL import Image, ImageDraw

from handler.acceptance.prompts import FIRST_SEED, Case

LANDSCAPE, PORTRAIT = (1216, 832), (832, 1216)  # sizes the shipped workflows declare
IMAGE_FIELDS = {"foreground": "background", "background": "foreground"}  # a layer mode: the image it takes
TRIM_MARGIN = 8


def picture(size: tuple[int, int] = (152, 104)) -> bytes:
    """An opaque picture for ``mode: "foreground"``: a sky, a sun and a meadow, as a PNG."""
    width, height = size
    image = Image.new("RGB", size, (90, 150, 220))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, height * 2 // 3, width, height), fill=(70, 140, 60))
    draw.ellipse(
        (width // 10, height // 10, width // 10 + height // 4, height // 10 + height // 4), fill=(250, 220, 90)
    )
    return png(image)


def subject(size: tuple[int, int] = (104, 152)) -> bytes:
    """A transparent subject for ``mode: "background"``: a bottle with a soft edge on alpha 0, as a PNG."""
    width, height = size
    image = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    for grow, alpha in ((2, 128), (0, 255)):  # an edge at half alpha, then the opaque bottle on it
        colour = (40, 120, 60, alpha)
        box = (width // 4 - grow, height * 2 // 5 - grow, width * 3 // 4 + grow, height * 9 // 10 + grow)
        draw.rounded_rectangle(box, 8, colour)
        draw.rectangle((width * 2 // 5 - grow, height // 8 - grow, width * 3 // 5 + grow, height * 2 // 5), colour)
    return png(image)


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def option_cases(first: int) -> list[Case]:
    """The jobs of the options, numbered from ``first``."""
    jobs = [
        ("trim + webp", "a single red apple, small in the middle of the frame", (1024, 1024),
         (("trim", True), ("trim_margin", TRIM_MARGIN), ("format", "webp"))),
        ("delivery base64", "a paper crane", PORTRAIT, (("delivery", "base64"),)),
        ("mode foreground", "a glass bottle standing in the meadow", LANDSCAPE,
         (("mode", "foreground"), ("background", data_uri(picture())))),
        ("mode background", "a bottle on a wooden table by a window", PORTRAIT,
         (("mode", "background"), ("foreground", data_uri(subject())))),
    ]  # fmt: skip
    return [
        Case(number, prompt, FIRST_SEED + number, *size, title=title, options=options)
        for number, (title, prompt, size, options) in enumerate(jobs, first)
    ]


def input_image(case: Case) -> bytes | None:
    """A layer mode's input image, as sent."""
    field = IMAGE_FIELDS.get(case.mode)
    value = case.asked(field) if field else None
    return base64.b64decode(value.split(",", 1)[1]) if isinstance(value, str) else None


def not_offered(api: str, case: Case) -> str | None:
    """Why the API never offers what the job asks (it is then not sent), or None."""
    if api == "alpha" and case.asked("delivery") is not None:
        return "the alpha API has no delivery option: it answers with a file's URL"
    return None


def unavailable(case: Case, code: str | None, error: str | None) -> str | None:
    """Why the endpoint does not serve the job's layer mode, when its answer says so, or None."""
    if case.mode != "text" and code == "mode_unavailable":
        return f"mode {case.mode} is not offered: {error}"
    return None
