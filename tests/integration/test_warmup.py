"""The warm-up job has its own deadline (ALPHA_WARMUP_TIMEOUT_S): a job timeout tuned for warm jobs must not
make every start fail, since the warm-up's cold model load takes far longer than a warm job."""

from __future__ import annotations

import pytest

from handler.errors import JobTimeout
from handler.generate import Generator
from tests.helpers import RunningComfy

pytestmark = pytest.mark.comfyui


def test_the_warm_up_runs_under_its_own_deadline(comfy: RunningComfy) -> None:
    tight = comfy.settings.replace(job_timeout_s=0.2, warmup_timeout_s=300.0)
    done = Generator(tight).warm_up()
    assert done.info["timings_ms"]["total"] > 200, "the warm-up outlasts the job timeout"
    with pytest.raises(JobTimeout, match="passed before the job could start"):
        Generator(comfy.settings.replace(job_timeout_s=300.0, warmup_timeout_s=0.0)).warm_up()
