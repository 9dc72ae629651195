# streamctl — make targets. `make demo` runs the main job on its embedded default;
# `make test` is what CI runs (.ci/run).

CARGO        ?= cargo
RELEASE_BIN  := target/release/streamctl
DEMO_DIR     ?= out/demo
BENCH_DIR    ?= out/bench
BENCH_EVENTS ?= 10000000
# The local Kinesis server (kinesalite, one Node process) reads far slower than a file.
BENCH_KINESIS_EVENTS ?= 200000
BENCH_KEYS_EVENTS ?= 5000000

.PHONY: all build release demo test lint fmt unit schema bench bench-kinesis chaos clean

all: build

build:
	$(CARGO) build

release:
	$(CARGO) build --release --locked

## demo: generate 1M movie impressions (3 of them late, 4 malformed) and run
## pipelines/demo/movie-impressions-demo.yaml on them
demo: release
	@rm -rf $(DEMO_DIR) && mkdir -p $(DEMO_DIR)
	$(RELEASE_BIN) generate movie_impressions --count 1000000 --disorder 4s --late 3 --malformed 4 \
	  -o $(DEMO_DIR)/impressions.jsonl
	INPUT=$(DEMO_DIR)/impressions.jsonl OUTPUT=file://$(abspath $(DEMO_DIR))/output/ \
	  LATE_OUTPUT=$(DEMO_DIR)/late.jsonl BAD_OUTPUT=$(DEMO_DIR)/bad-records.jsonl \
	  $(RELEASE_BIN) run pipelines/demo/movie-impressions-demo.yaml
	@echo
	@echo "Output buckets (yyyy-MM-dd--HH/movieId/), first 12:"
	@cd $(DEMO_DIR)/output && find . -mindepth 2 -maxdepth 2 -type d | sort | head -12
	@echo "... $$(find $(DEMO_DIR)/output -type f | wc -l) files in total"
	@f=$$(find $(DEMO_DIR)/output -type f -name '*.csv' -printf '%s %p\n' | sort -rn | head -1 | cut -d' ' -f2); \
	  echo; echo "Sample (the largest file): $$f"; head -6 "$$f"
	@echo; echo "Late impressions ($$(wc -l < $(DEMO_DIR)/late.jsonl)): too late for their window, kept apart with the window they missed, in $(DEMO_DIR)/late.jsonl:"
	@cat $(DEMO_DIR)/late.jsonl
	@echo; echo "Malformed records ($$(wc -l < $(DEMO_DIR)/bad-records.jsonl)): kept as read (base64 when not text), with the reason and file:line, in $(DEMO_DIR)/bad-records.jsonl:"
	@cat $(DEMO_DIR)/bad-records.jsonl

## test: formatting, lints, and every test (unit, integration, property, end to end)
test: lint unit

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --locked -- -D warnings

unit:
	@if command -v cargo-nextest >/dev/null 2>&1; then \
	  $(CARGO) nextest run --locked --no-fail-fast; \
	else \
	  $(CARGO) test --locked --no-fail-fast; \
	fi
	$(CARGO) test --locked --doc

fmt:
	$(CARGO) fmt --all

## schema: regenerate schemas/pipeline.schema.json (and the test files' schema) from the config types
schema: build
	target/debug/streamctl schema -o schemas/pipeline.schema.json
	target/debug/streamctl schema --tests -o schemas/pipeline-test.schema.json

## bench: 10M movie impressions through the local pipeline, beside DuckDB on the same data;
## the same job with many keys (5M events, 2M users, 1 ms apart) beside DuckDB; sliding and
## session windows on skewed bids beside DuckDB; then checkpoints, Flink, the job into the
## local S3 server beside file:// (objects/s, MB/s), and from a pre-loaded 4-shard Kinesis
## stream and from a 4-partition Kafka topic beside a file (events/s)
bench: release
	scripts/bench.sh $(BENCH_EVENTS) $(BENCH_DIR)
	USERS=2000000 INTERVAL=1ms scripts/bench.sh $(BENCH_KEYS_EVENTS) $(BENCH_DIR)
	scripts/bench-windows.sh $(BENCH_KEYS_EVENTS) $(BENCH_DIR)
	scripts/bench-checkpoints.sh $(BENCH_EVENTS) $(BENCH_DIR)
	scripts/bench-flink.sh $(BENCH_EVENTS) $(BENCH_DIR)
	scripts/bench-s3.sh $(BENCH_EVENTS) $(BENCH_DIR)
	scripts/bench-kafka.sh $(BENCH_EVENTS) $(BENCH_DIR)
	scripts/bench-kinesis.sh $(BENCH_KINESIS_EVENTS) $(BENCH_DIR)

## bench-kinesis: the movie-impressions job from a pre-loaded 4-shard stream (--bounded) beside a file
bench-kinesis: release
	scripts/bench-kinesis.sh $(BENCH_KINESIS_EVENTS) $(BENCH_DIR)

clean:
	$(CARGO) clean
	rm -rf out

## chaos: the long fault schedule of tests/chaos.rs (Kafka → windows → S3 under SIGKILL,
## SIGTERM, broker restarts and failing S3 requests); CHAOS_SEED=<seed> repeats a schedule
chaos:
	CHAOS_KILLS=$${CHAOS_KILLS:-24} CHAOS_EVENTS=$${CHAOS_EVENTS:-200000} CHAOS_BROKER_RESTARTS=1 \
	  $(CARGO) test --locked --test chaos -- --include-ignored --nocapture
