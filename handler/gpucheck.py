"""``python -m handler.gpucheck``: the GPU preflight. Exit 0 and one line describing the GPU, or exit 1
with what is wrong.

A separate process so that the supervisor never imports torch (seconds, and CUDA state it does not
need). It goes beyond ``torch.cuda.is_available()``: a small matmul on the device surfaces a driver too
old for the wheel's CUDA, or a busy/faulty GPU, before ComfyUI starts and fails in a less clear way.
"""

from __future__ import annotations

import sys

HINT = (
    "this worker needs an NVIDIA GPU with a driver for CUDA {cuda}; for a CPU run set ALPHA_DEVICE=cpu, "
    "or ALPHA_GPU_PREFLIGHT=0 to skip this check"
)


def check() -> str:
    """A description of the usable GPU; raises RuntimeError saying why there is none."""
    import torch

    hint = HINT.format(cuda=torch.version.cuda or "?")
    if torch.version.cuda is None:
        raise RuntimeError(f"this torch build ({torch.__version__}) has no CUDA support; {hint}")
    if not torch.cuda.is_available():
        raise RuntimeError(
            f"CUDA is not usable (torch.cuda.is_available() is False: no GPU visible, or the "
            f"driver is missing or too old); {hint}"
        )
    try:
        device = torch.device("cuda", 0)
        a = torch.ones((256, 256), device=device, dtype=torch.float16)
        value = float((a @ a)[0, 0])
        torch.cuda.synchronize(device)
    except Exception as exc:
        raise RuntimeError(f"a test computation on the GPU failed: {type(exc).__name__}: {exc}; {hint}") from None
    if value != 256.0:
        raise RuntimeError(f"a test computation on the GPU gave {value}, expected 256; the GPU is faulty")
    props = torch.cuda.get_device_properties(device)
    free, total = torch.cuda.mem_get_info(device)
    return (
        f"{props.name}, {total / 2**30:.1f} GiB ({free / 2**30:.1f} GiB free), compute capability "
        f"{props.major}.{props.minor}, torch {torch.__version__} (CUDA {torch.version.cuda}), "
        f"{torch.cuda.device_count()} device(s)"
    )


def main() -> int:
    try:
        description = check()
    except RuntimeError as exc:
        sys.stderr.write(f"GPU preflight failed: {exc}\n")
        return 1
    sys.stdout.write(f"GPU preflight ok: {description}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
