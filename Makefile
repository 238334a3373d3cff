# Thin front for Meson + ninja. Binaries land in build/.
BUILD ?= build
MESON ?= meson

.PHONY: all deps check unit attacks e2e run bench asan clang fuzz format format-check clean

all: $(BUILD)/build.ninja
	ninja -C $(BUILD)

$(BUILD)/build.ninja:
	$(MESON) setup $(BUILD)

deps:
	./scripts/install-deps.sh

check: deps
	$(MAKE) all
	$(MESON) test -C $(BUILD) --print-errorlogs

unit: all
	$(MESON) test -C $(BUILD) --suite unit --print-errorlogs

attacks: all
	$(MESON) test -C $(BUILD) --suite attacks --print-errorlogs

e2e: all
	$(MESON) test -C $(BUILD) --suite e2e --print-errorlogs

# Start kilnd in the foreground on 127.0.0.1:8420 with an embedded default:
# a data directory (database, blob store, keys, the first admin token)
# created on first start under .kiln-data/.
KILN_DATA ?= $(CURDIR)/.kiln-data
KILN_LISTEN ?= 127.0.0.1:8420
run: deps all
	./$(BUILD)/kilnd --data $(KILN_DATA) --listen $(KILN_LISTEN)

bench: deps all
	./bench/run.sh $(BUILD)

# ASan+UBSan over the unit and attack tests (CI runs this).
asan: deps
	[ -f build-asan/build.ninja ] || $(MESON) setup build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
	ninja -C build-asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  $(MESON) test -C build-asan --suite unit --suite attacks --print-errorlogs

# clang, -Werror, everything.
clang: deps
	[ -f build-clang/build.ninja ] || CC=clang $(MESON) setup build-clang -Dfuzz=true
	ninja -C build-clang

fuzz: clang
	./tests/fuzz/run.sh build-clang

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) build-asan build-clang
