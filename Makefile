# examstation: `make demo` runs the whole simulated site, `make test` sets up and runs every check.
# Both work on a fresh machine: they create .venv, install the project, and (as root) install the
# Debian packages the tests use when they are missing.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# command=package pairs the test suite needs (mbpoll: a Modbus client nobody here wrote; chromium and a
# Chinese font for the browser tests and their screenshots; chrony, an NTP server for the clock check,
# and faketime, to run it with a clock 5 s off; rabbitmq-server, whose MQTT plugin is a province broker
# the uplink is tested against)
SYSTEM_PACKAGES := mbpoll=mbpoll mosquitto=mosquitto mosquitto_sub=mosquitto-clients ffprobe=ffmpeg \
  chronyd=chrony faketime=faketime \
  -=python3-gi -=gir1.2-gst-rtsp-server-1.0 -=gstreamer1.0-plugins-ugly -=gstreamer1.0-plugins-good \
  -=gstreamer1.0-plugins-bad chromium=chromium -=fonts-noto-cjk -=rabbitmq-server

.PHONY: setup system-deps test lint typecheck unit demo sim bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

system-deps:
	scripts/ensure-system-packages.sh $(SYSTEM_PACKAGES)

lint: setup
	$(BIN)/ruff check .

typecheck: setup
	$(BIN)/mypy

# unit, integration and site-check tests run one at a time (several measure timing: the device check
# compares each device's answer time with its poll interval); the end-to-end scenarios
# mostly wait on exam time, so they run four at a time; the tests that load both cores (the whole
# hall, the uplink's fault and kill tests, the demo hall, the browser driving the demo) run after them,
# two at a time (measured: 0.6 of a core on average, 5.5 min instead of 8.7 one by one).
ALONE := tests/e2e/test_hall.py tests/e2e/test_uplink_faults.py tests/e2e/test_uplink_cli.py \
  tests/e2e/test_ui_browser.py tests/e2e/test_demo_ui.py
# the video tests mostly wait for real seconds of camera time and use little CPU: four at a time,
# with the UI's tests (requests to the app, no timing measured)
VIDEO := $(wildcard tests/integration/test_recorder*.py) tests/integration/test_live_hub.py \
  tests/integration/test_sim_rtsp_camera.py tests/integration/test_evidence_attempt.py \
  tests/integration/test_ui_live_video.py tests/integration/test_ui_server.py
# site-check tests that wait on cameras, NTP and the broker, and time nothing of their own
SITE_WAITING := tests/site_check/test_camera_check.py tests/site_check/test_clock_check.py \
  tests/site_check/test_uplink_check.py tests/site_check/test_publish.py tests/site_check/test_html_report.py
# the site benchmark's smoke run: two processes, a broker and the UI driven for ~20 s, mostly waiting
BENCH_SMOKE := tests/integration/test_bench_site_smoke.py
# phase 1 one at a time (timing measured); phase 2 four at a time: the pure unit tests (CPU, no
# timing but their own ratios) beside the waiting video, UI and site-check tests
test: setup system-deps lint typecheck
	$(BIN)/python -m pytest -q --durations=8 tests/integration tests/site_check $(addprefix --ignore=,$(VIDEO) $(SITE_WAITING) $(BENCH_SMOKE))
	$(BIN)/python -m pytest -q --durations=8 -n 4 tests/unit $(VIDEO) tests/ui $(SITE_WAITING)
	$(BIN)/python -m pytest -q --durations=8 -n 4 --dist loadgroup tests/e2e $(BENCH_SMOKE) $(addprefix --ignore=,$(ALONE))
	$(BIN)/python -m pytest -q --durations=8 -n 2 $(ALONE)

demo: setup
	$(BIN)/examstation demo

sim: setup
	$(BIN)/examstation sim --config examples/site.yaml --print-endpoints

bench: setup
	$(BIN)/python bench/modbus_poll.py --json
	$(BIN)/python bench/scoring_replay.py --json
	$(BIN)/python bench/uplink.py --json
	$(BIN)/python bench/video_record.py --json
	$(BIN)/python bench/live_fanout.py --json
	$(BIN)/python bench/site.py --json --only 24

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
