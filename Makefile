# The two commands of the README:
#   make dev    start a local 3-node cluster (Ctrl-C stops it)
#   make test   run the whole test suite
# Both install what the build needs first (scripts/setup.sh).
# `make install` puts an optimized `concord` in ~/.cargo/bin (cargo install).

.PHONY: setup build dev test install

# Where cargo builds: ./target unless CARGO_TARGET_DIR says otherwise.
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)

setup:
	@./scripts/setup.sh

build: setup
	cargo build --bin concord

dev: build
	$(TARGET_DIR)/debug/concord dev $(ARGS)

test:
	./scripts/test.sh

install: setup
	cargo install --locked --path .
