# syntax=docker/dockerfile:1.7
# LayerDiffuse Alpha API: RunPod serverless worker (first version).
# The application is installed by the same scripts CI runs: scripts/install_comfyui.py lays out
# ComfyUI and the pinned custom nodes (here from upstream git), requirements.txt + constraints.txt
# pin every Python package. Python 3.11 matches the interpreter the tests run on; torch's wheels
# carry their own CUDA runtime, the host's NVIDIA driver (>= 580 for CUDA 13) is all it needs.
# Models are not baked yet: mount them under /opt/comfyui/models (see DEPLOYMENT.md).
FROM python:3.11.7-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ALPHA_COMFYUI_DIR=/opt/comfyui \
    RUNPOD_LOG_LEVEL=INFO

RUN apt-get update \
    && apt-get install -y --no-install-recommends git=1:2.39.5-0+deb12u3 ca-certificates=20230311+deb12u1 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

COPY requirements.txt constraints.txt ./
RUN pip install --no-cache-dir -r requirements.txt -c constraints.txt

COPY pins/ pins/
COPY custom_nodes/ custom_nodes/
COPY scripts/install_comfyui.py scripts/
RUN python scripts/install_comfyui.py --source git --target /opt/comfyui

COPY handler/ handler/
COPY workflows/ workflows/
COPY bootstrap.sh ./

CMD ["./bootstrap.sh"]
