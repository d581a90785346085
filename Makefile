# Two entry points for a newcomer: `make demo` and `make test` (plus `make lint`).
# Each bootstraps .venv on a fresh machine: system packages via apt, CPU torch pinned.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH := torch==2.13.0
APT_PACKAGES := xvfb xauth libgl1-mesa-dri libegl1 libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 \
	libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-xinerama0 libxcb-xfixes0 libxcb-shape0 \
	libxcb-cursor0 libdbus-1-3 libfontconfig1 dicom3tools dcmtk orthanc orthanc-dicomweb openssl chromium

.PHONY: demo demo-model demo-card demo-x2s-model test lint system-deps clean-venv

$(BIN)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dicom,pacs,napari,dev]"
	touch $@

system-deps:
	@if ! command -v xvfb-run >/dev/null 2>&1 || ! ldconfig -p | grep -q libxkbcommon-x11 \
		|| ! test -x /usr/sbin/Orthanc || ! test -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so \
		|| ! command -v openssl >/dev/null 2>&1 || ! command -v dciodvfy >/dev/null 2>&1 \
		|| ! command -v storescu >/dev/null 2>&1 \
		|| ! command -v chromium >/dev/null 2>&1; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	fi

demo: $(BIN)/.installed
	$(BIN)/python -m medswin.demo --out demo_output

# Retrain the shipped demo model (medswin/models/weights/demo.safetensors) with the real training
# pipeline (pipelines/train/demo_phantom.yaml) on generated CT phantoms; minutes on 2 CPU cores.
demo-model: $(BIN)/.installed
	$(BIN)/python -m medswin.training.demo_model --output medswin/models/weights/demo.safetensors

# Re-embed medswin/models/cards/demo.json (volume ranges, intended use ...) in the shipped demo model
# without retraining: its weights and training provenance stay as they are.
demo-card: $(BIN)/.installed
	$(BIN)/python -m medswin.training.demo_model --card-only --output medswin/models/weights/demo.safetensors

# Retrain the shipped Swin-X2S demo model (medswin/models/weights/demo-x2s.safetensors) on AP + lateral
# DRRs of the same phantoms (pipelines/train/x2s_demo_phantom.yaml).
demo-x2s-model: $(BIN)/.installed
	$(BIN)/python -m medswin.training.demo_x2s_model --output medswin/models/weights/demo-x2s.safetensors

test: system-deps $(BIN)/.installed
	xvfb-run -a $(BIN)/python -m pytest -q -n 2 --dist loadfile

lint: $(BIN)/.installed
	$(BIN)/ruff check medswin plugins tests benchmarks
	$(BIN)/ruff format --check medswin plugins tests benchmarks

clean-venv:
	rm -rf $(VENV)
