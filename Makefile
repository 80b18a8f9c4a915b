# Two commands on a fresh Debian 12 / Python 3.11 machine (no GPU needed):
#   make demo   — the main job on the embedded defaults
#   make test   — lint + the whole test suite
# Both create/refresh .venv and install exactly what is needed (apt packages too), idempotently.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PKG := ros2_ws/src/interactvlm_ros
CONSTRAINTS := $(PKG)/constraints.txt
# Debian packages: libusb for open3d's import, libgl1/libglib2.0-0 for opencv (mediapipe), ensurepip for venv.
APT_PACKAGES := libusb-1.0-0 libgl1 libglib2.0-0
STAMP := $(VENV)/.installed
# MediaPipe (numpy<2) lives in its own venv and runs as a keypoint worker process (see README, Reconstruction).
MP_VENV ?= .venv-mediapipe
MP_CONSTRAINTS := $(PKG)/constraints-mediapipe.txt
MP_STAMP := $(MP_VENV)/.installed
# Triton serving (docs/serving.md): pytriton and its client in the main venv (--no-deps: it declares numpy<2), and
# the numpy<2 environment its Python backend stub runs in (see constraints-triton.txt).
TRITON_CONSTRAINTS := $(PKG)/constraints-triton.txt
TRITON_STUB_VENV ?= .venv-triton-stub
TRITON_STAMP := $(TRITON_STUB_VENV)/.installed
BIN := $(VENV)/bin
# The Anny body model builds a ~780 MB cache on first use (~60 s); keep it outside the clone so CI reuses it.
export ANNY_CACHE_DIR ?= $(HOME)/.cache/interactvlm/anny
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup demo test lint apt clean-venv train-default ros2-venv ros2-build

setup: apt $(STAMP) $(MP_STAMP) $(TRITON_STAMP)

apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "apt: installing$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

$(STAMP): $(CONSTRAINTS) $(PKG)/setup.py Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@# torch first and pinned: on CPU machines the 2.13.0 CPU wheel, never a CUDA build.
	$(BIN)/pip install -q -c $(CONSTRAINTS) torch==2.13.0
	$(BIN)/pip install -q -c $(CONSTRAINTS) -e "$(PKG)[test,smplx]"
	@touch $@

$(MP_STAMP): $(MP_CONSTRAINTS)
	@test -x $(MP_VENV)/bin/python || $(PYTHON) -m venv $(MP_VENV)
	$(MP_VENV)/bin/pip install -q --no-deps -r $(MP_CONSTRAINTS)
	@touch $@

$(TRITON_STAMP): $(TRITON_CONSTRAINTS) $(STAMP)
	$(BIN)/pip install -q --no-deps -r $(TRITON_CONSTRAINTS)
	@test -x $(TRITON_STUB_VENV)/bin/python || $(BIN)/python -m venv --without-pip $(TRITON_STUB_VENV)
	$(BIN)/pip --python $(TRITON_STUB_VENV)/bin/python install -q --no-deps numpy==1.26.4
	$(TRITON_STUB_VENV)/bin/python -c 'import sysconfig; open(sysconfig.get_path("purelib") + "/main_venv.pth", "w").write("$(CURDIR)/$(VENV)/lib/python%s/site-packages\n" % sysconfig.get_python_version())'
	@touch $@

demo: setup
	$(BIN)/interactvlm demo

lint: setup
	$(BIN)/ruff check .

test: setup lint
	$(BIN)/python -m pytest

# Reproduce the shipped default model (interactvlm_ros/assets/default_model): synthetic data (seed 0), the tiny
# model trained from scratch on the CPU with fixed seeds and threads in four stages, then its held-out metrics
# (eval.json). `make train-default RESUME=1` continues an interrupted run: finished steps (a dataset with its
# manifest, a stage with its summary.json) are kept and a stage with a checkpoint resumes from it, bit for bit.
TRAIN_DEFAULT_DIR ?= $(HOME)/.cache/interactvlm/train-default
# One torch thread: the run is bit-for-bit reproducible only at a fixed thread count.
TRAIN_COMMON := --threads 1 --batch-size 8 --steps 3000 --warmup 60 --focal-alpha-2d 0.75 --focal-alpha-3d 0.75 \
  --augment --checkpoint-every 250
TD := $(TRAIN_DEFAULT_DIR)
# $(call train_stage,RUN_DIR,ARGS): one `interactvlm train` stage into RUN_DIR, kept or resumed under RESUME=1.
define train_stage
	@if [ -n "$(RESUME)" ] && [ -f $(1)/summary.json ]; then echo "train-default: $(1) finished, kept"; \
	elif [ -n "$(RESUME)" ] && [ -f $(1)/checkpoint.pt ]; then \
	  $(BIN)/interactvlm train --data $(TD)/data --out $(1) $(TRAIN_COMMON) $(2) --resume; \
	else rm -rf $(1) && $(BIN)/interactvlm train --data $(TD)/data --out $(1) $(TRAIN_COMMON) $(2); fi
endef
train-default: setup
	@if [ -n "$(RESUME)" ] && [ -f $(TD)/data/manifest.json ]; then echo "train-default: $(TD)/data kept"; \
	else rm -rf $(TD)/data && $(BIN)/interactvlm synth --out $(TD)/data --num 16000 --seed 0 --mask-size 128 \
	  --threads 1 --workers 2; fi
	$(call train_stage,$(TD)/run,--init tiny-synth --seed 0 --lr 8e-4 --interaction-weight 0.5 --vision-epochs 20)
	$(call train_stage,$(TD)/run2,--init $(TD)/run/model --seed 1 --lr 4e-4)
	$(call train_stage,$(TD)/run3,--init $(TD)/run2/model --seed 2 --lr 2e-4 --dice-3d-weight 1)
	$(call train_stage,$(TD)/run4,--init $(TD)/run3/model --seed 3 --lr 1e-4 --dice-3d-weight 1)
	$(BIN)/interactvlm eval --data $(TD)/data --model $(TD)/run4/model --json --threads 1 --no-progress \
	  > $(TD)/eval.json.tmp && mv $(TD)/eval.json.tmp $(TD)/eval.json
	cat $(TD)/eval.json

# ROS 2 (not part of setup/test): the Python dependencies in a venv made from the interpreter ROS 2 runs on, seeing
# the system site packages, ignored by colcon (COLCON_IGNORE); colcon then runs with that venv's python, so the
# installed entry points (ros2 run / ros2 launch) start with it and find torch, cyclonedds... without PYTHONPATH.
# This is the ROS 2 docs' "Using Python Packages with ROS 2" recipe. The venv also names the MediaPipe environment
# (a .pth sets $INTERACTVLM_MEDIAPIPE_PYTHON unless it is set): colcon's installed copy of the package is not in the
# checkout, so it cannot find .venv-mediapipe there. With a sourced ROS 2:
#   make ros2-build && source install/setup.bash
ROS_PYTHON ?= /usr/bin/python3
ROS_VENV ?= .venv-ros
ROS_STAMP := $(ROS_VENV)/.installed
# Where colcon writes (build/, install/, log/ under it); the repository root by default, as in the README.
ROS_WS ?= .

ros2-venv: apt $(ROS_STAMP) $(MP_STAMP)

$(ROS_STAMP): $(CONSTRAINTS) $(PKG)/setup.py Makefile
	@test -x $(ROS_VENV)/bin/python || $(ROS_PYTHON) -m venv --system-site-packages $(ROS_VENV)
	@touch $(ROS_VENV)/COLCON_IGNORE
	$(ROS_VENV)/bin/python -m pip install -q --upgrade pip
	$(ROS_VENV)/bin/pip install -q -c $(CONSTRAINTS) torch==2.13.0
	$(ROS_VENV)/bin/pip install -q -c $(CONSTRAINTS) -e "$(PKG)[test,smplx]"
	printf 'import os; os.environ.setdefault("INTERACTVLM_MEDIAPIPE_PYTHON", "%s")\n' "$(abspath $(MP_VENV))/bin/python" \
	  > "$$($(ROS_VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/interactvlm_mediapipe.pth"
	@touch $@

ros2-build: ros2-venv
	@test -n "$$AMENT_PREFIX_PATH" || { echo "ros2-build: source ROS 2 first (source /opt/ros/jazzy/setup.bash)"; exit 2; }
	@$(ROS_VENV)/bin/python -c 'import colcon_core' 2>/dev/null || \
	  { echo "ros2-build: colcon is not importable by $(ROS_VENV)/bin/python (apt install python3-colcon-common-extensions)"; exit 2; }
	$(ROS_VENV)/bin/python -m colcon --log-base $(ROS_WS)/log build --base-paths $(CURDIR)/ros2_ws/src \
	  --build-base $(ROS_WS)/build --install-base $(ROS_WS)/install

clean-venv:
	rm -rf $(VENV) $(MP_VENV) $(TRITON_STUB_VENV)
