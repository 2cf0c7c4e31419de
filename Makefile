# mlc-bench: the one build.  See README.md.
#
#   make deps                 install the Debian packages (apt-get; sudo when not root)
#   make                      build/mlc-bench and build/libmlc.a (-O2; DEBUG=1 for -O0 -g)
#   make test                 Criterion tests (SANITIZE=1: built with ASan+UBSan, into build/san,
#                             without the cuda/hip backends unless BACKENDS names them)
#   make fuzz [FUZZ_TIME=60]  libFuzzer run on the GGUF reader (clang)
#   make install PREFIX=/usr/local DESTDIR=
#   BACKENDS="cpu ..."        backends to build; default: those whose toolchain is present

CC      ?= cc
CLANG   ?= clang
AR      ?= ar
PREFIX  ?= /usr/local
DESTDIR ?=
VERSION := 0.1.0
SHARED  ?= $(or $(MLC_SHARED),../shared)
FUZZ_TIME ?= 60

# Backends: the names come from engine/backend_list.h (the one list), those with sources
# are the ones with a kernels/<name>/ folder; below, the toolchain each needs.
KNOWN_BACKENDS := $(shell sed -n 's/^ *X(\([a-z0-9_]*\)).*/\1/p' engine/backend_list.h)
IMPLEMENTED_BACKENDS := $(filter $(KNOWN_BACKENDS),$(notdir $(wildcard kernels/*)))
# hip has no folder of its own: it is kernels/cuda built by hipcc (see below).
IMPLEMENTED_BACKENDS += $(if $(wildcard kernels/cuda/*.cu),hip)
comma := ,
have = $(shell command -v $(1) >/dev/null 2>&1 && echo yes)
DETECTED_BACKENDS := cpu \
    $(if $(or $(call have,nvcc),$(wildcard /usr/local/cuda/bin/nvcc)),cuda) \
    $(if $(call have,hipcc),hip) \
    $(if $(and $(call have,glslc),$(wildcard /usr/include/vulkan/vulkan.h)),vulkan) \
    $(if $(wildcard /usr/include/CL/cl.h),opencl)
# The sanitizer build leaves the GPU compilers' backends out unless BACKENDS names them: nvcc's
# and hipcc's code is not instrumented, and each adds minutes to a build.
ifeq ($(SANITIZE),1)
DETECTED_BACKENDS := $(filter-out cuda hip,$(DETECTED_BACKENDS))
endif
BACKENDS ?= $(filter $(IMPLEMENTED_BACKENDS),$(DETECTED_BACKENDS))
UNKNOWN := $(filter-out $(KNOWN_BACKENDS),$(BACKENDS))
ifneq ($(UNKNOWN),)
$(error BACKENDS: unknown backend '$(firstword $(UNKNOWN))' (known: $(KNOWN_BACKENDS)))
endif
MISSING := $(filter-out $(IMPLEMENTED_BACKENDS),$(BACKENDS))
ifneq ($(MISSING),)
$(error BACKENDS: backend '$(firstword $(MISSING))' has no sources in this tree yet (implemented: $(IMPLEMENTED_BACKENDS)))
endif

ifeq ($(SANITIZE),1)
BUILD := build/san
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
else
BUILD := build
SANFLAGS :=
endif

ifeq ($(DEBUG),1)
OPTFLAGS := -O0 -g
else
OPTFLAGS := -O2 -g
endif

WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CPPFLAGS += -Iengine/include -Iengine -D_POSIX_C_SOURCE=200809L \
            -DMLC_VERSION='"$(VERSION)"' \
            -DMLC_BACKENDS='"$(strip $(BACKENDS))"' \
            -DMLC_IMPLEMENTED_BACKENDS='" $(strip $(IMPLEMENTED_BACKENDS)) "' \
            '-DMLC_BUILT_BACKENDS(X)=$(foreach b,$(BACKENDS),X($(b)))'
CFLAGS   ?=
ALLCFLAGS := -std=c11 $(WARN) $(OPTFLAGS) $(SANFLAGS) -pthread $(CFLAGS)
LDLIBS   += -lm -pthread
BENCH_LIBS := -lcjson -lsqlite3 -lcurl -lmicrohttpd

LIB_SRC   := $(wildcard engine/*.c) $(foreach b,$(BACKENDS),$(wildcard kernels/$(b)/*.c)) $(wildcard kernels/ref/*.c) \
             $(wildcard conformance/*.c)
BENCH_SRC := $(wildcard bench/*.c) $(wildcard reports/*.c)
TEST_SRC  := $(wildcard tests/test_*.c) tests/util.c tests/testserver.c tests/ops_harness.c tests/gemm_harness.c

LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
BENCH_OBJ = $(BENCH_SRC:%.c=$(BUILD)/obj/%.o) $(EMBED_OBJ)
# Tests link the CLI's modules too (store, datasets, client), but not main() and the
# run command (tested through the binary).
TEST_OBJ  = $(TEST_SRC:%.c=$(BUILD)/obj/%.o) $(filter-out $(BUILD)/obj/bench/main.o $(BUILD)/obj/bench/run.o,$(BENCH_OBJ))

LIB  := $(BUILD)/libmlc.a
BIN  := $(BUILD)/mlc-bench
TBIN := $(BUILD)/mlc-tests

.PHONY: all deps test fuzz bench bench-client install clean print-backends
all: $(BIN) $(LIB)

# Objects are rebuilt when the flags change (make DEBUG=1 after make): the stamp file holds
# the flags and is rewritten only when they differ.
FLAGSTAMP := $(BUILD)/.flags
FLAGS_NOW := $(CC) $(CPPFLAGS) $(ALLCFLAGS)
$(shell mkdir -p $(BUILD) && { [ "$$(cat $(FLAGSTAMP) 2>/dev/null)" = '$(subst ','"'"',$(FLAGS_NOW))' ] || echo '$(subst ','"'"',$(FLAGS_NOW))' > $(FLAGSTAMP); })

# V=1 shows full commands.
Q := $(if $(V),,@)

$(BUILD)/obj/%.o: %.c $(FLAGSTAMP)
	@mkdir -p $(@D)
	$(if $(Q),@echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(ALLCFLAGS) -MMD -MP -c $< -o $@

# Files of datasets/ embedded in the binary, so `mlc-bench` needs nothing beside itself:
# datasets/NAME.EXT becomes `const unsigned char mlc_embed_NAME_EXT[]` and
# `const size_t mlc_embed_NAME_EXT_len` (see bench/embed.h), written with od and sed.
EMBED_FILES := $(wildcard datasets/corpus.txt datasets/prompts.jsonl)
EMBED_OBJ := $(patsubst datasets/%,$(BUILD)/obj/embed/%.o,$(EMBED_FILES))
.PRECIOUS: $(BUILD)/gen/embed/%.c
$(BUILD)/gen/embed/%.c: datasets/%
	@mkdir -p $(@D)
	$(Q)sym=mlc_embed_$$(echo '$*' | tr '.-' '__'); \
	{ echo '/* generated from datasets/$* by the Makefile: do not edit */'; \
	  echo '#include <stddef.h>'; echo "extern const unsigned char $$sym[];"; \
	  echo "extern const size_t $${sym}_len;"; echo "const unsigned char $$sym[] = {"; \
	  od -An -v -tx1 $< | sed 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g'; echo '0};'; \
	  echo "const size_t $${sym}_len = sizeof $$sym - 1;"; } > $@.tmp && mv $@.tmp $@
$(BUILD)/obj/embed/%.o: $(BUILD)/gen/embed/%.c $(FLAGSTAMP)
	@mkdir -p $(@D)
	$(if $(Q),@echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(ALLCFLAGS) -c $< -o $@

# The opencl backend's kernels: the .cl files of kernels/opencl concatenated in dependency order
# (helpers, block formats, matmul, other ops) into one program source, embedded as `const unsigned char mlc_opencl_source[]`
# (NUL-terminated) and its length, written with od and sed like the datasets above. The ICD
# loader is opened with dlopen at run time (kernels/opencl/cl_api.c): nothing links libOpenCL.
ifneq ($(filter opencl,$(BACKENDS)),)
OPENCL_CL := $(addprefix kernels/opencl/,common.cl quant.cl matmul.cl ops.cl)
OPENCL_SRC_OBJ := $(BUILD)/obj/opencl-gen/source.o
LIB_OBJ += $(OPENCL_SRC_OBJ)
LDLIBS += -ldl
$(BUILD)/gen/opencl/source.c: $(OPENCL_CL)
	@mkdir -p $(@D)
	$(Q){ echo '/* generated from the .cl files of kernels/opencl by the Makefile: do not edit */'; \
	  echo '#include <stddef.h>'; echo 'extern const unsigned char mlc_opencl_source[];'; \
	  echo 'extern const size_t mlc_opencl_source_len;'; echo 'const unsigned char mlc_opencl_source[] = {'; \
	  cat $(OPENCL_CL) | od -An -v -tx1 | sed 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g'; echo '0};'; \
	  echo 'const size_t mlc_opencl_source_len = sizeof mlc_opencl_source - 1;'; } > $@.tmp && mv $@.tmp $@
$(OPENCL_SRC_OBJ): $(BUILD)/gen/opencl/source.c $(FLAGSTAMP)
	@mkdir -p $(@D)
	$(if $(Q),@echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(ALLCFLAGS) -c $< -o $@
endif

# Vulkan: the GLSL compute shaders of kernels/vulkan/shaders/ compiled to SPIR-V by glslc
# (the per-weight-type ones once per type, WT_<type> defined) and embedded as one C table
# (kernels/vulkan/vk_spirv.h). The loader is opened at run time (dlopen), not linked.
ifneq ($(filter vulkan,$(BACKENDS)),)
GLSLC ?= glslc
GLSLC_FLAGS := --target-env=vulkan1.2 -O -Werror
VK_TYPES := f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 iq4_nl q2_k q3_k q4_k q5_k q6_k iq4_xs
VK_TYPED := matvec matvec8 matmul get_rows matvecsg
VK_PLAIN := actq rms_norm rope kv_store attention ew gather
VK_GEN := $(BUILD)/gen/vulkan
VK_SPV := $(foreach s,$(VK_TYPED),$(VK_TYPES:%=$(VK_GEN)/$(s)_%.spv)) $(VK_PLAIN:%=$(VK_GEN)/%.spv)
VK_INC := $(wildcard kernels/vulkan/shaders/*.glsl)
VK_TYPED_SRC := matvec matmul get_rows
define VK_TYPED_RULE
$(VK_GEN)/$(1)_%.spv: kernels/vulkan/shaders/$(1).comp $(VK_INC)
	@mkdir -p $$(@D)
	$$(if $$(Q),@echo "  GLSLC   $$@")
	$$(Q)$(GLSLC) $(GLSLC_FLAGS) -DWT_$$* $$< -o $$@
endef
$(foreach s,$(VK_TYPED_SRC),$(eval $(call VK_TYPED_RULE,$(s))))
# matvec8: matvec.comp with 8 tokens per invocation (prefill on CPU devices)
$(VK_GEN)/matvec8_%.spv: kernels/vulkan/shaders/matvec.comp $(VK_INC)
	@mkdir -p $(@D)
	$(if $(Q),@echo "  GLSLC   $@")
	$(Q)$(GLSLC) $(GLSLC_FLAGS) -DWT_$* -DNC=8 $< -o $@
# matvecsg: matvec.comp with subgroup-arithmetic row sums (decode where the device has them)
$(VK_GEN)/matvecsg_%.spv: kernels/vulkan/shaders/matvec.comp $(VK_INC)
	@mkdir -p $(@D)
	$(if $(Q),@echo "  GLSLC   $@")
	$(Q)$(GLSLC) $(GLSLC_FLAGS) -DWT_$* -DSUBGROUP $< -o $@
$(VK_GEN)/%.spv: kernels/vulkan/shaders/%.comp $(VK_INC)
	@mkdir -p $(@D)
	$(if $(Q),@echo "  GLSLC   $@")
	$(Q)$(GLSLC) $(GLSLC_FLAGS) $< -o $@
$(VK_GEN)/vk_spirv.c: $(VK_SPV)
	$(Q){ echo '/* generated from kernels/vulkan/shaders by the Makefile: do not edit */'; \
	  echo '#include "vk_spirv.h"'; \
	  for f in $(VK_SPV); do n=$$(basename $$f .spv); echo "static const uint32_t spv_$$n[] = {"; \
	    od -An -v -tx4 $$f | sed 's/ *\([0-9a-f]\{8\}\)/0x\1u,/g'; echo '};'; done; \
	  echo 'const mlc_vk_spirv mlc_vk_spirv_table[] = {'; \
	  for f in $(VK_SPV); do n=$$(basename $$f .spv); echo "    {\"$$n\", spv_$$n, sizeof spv_$$n / 4},"; done; \
	  echo '};'; echo 'const int mlc_vk_spirv_count = (int)(sizeof mlc_vk_spirv_table / sizeof mlc_vk_spirv_table[0]);'; \
	} > $@.tmp && mv $@.tmp $@
$(BUILD)/obj/gen/vulkan/vk_spirv.o: $(VK_GEN)/vk_spirv.c kernels/vulkan/vk_spirv.h $(FLAGSTAMP)
	@mkdir -p $(@D)
	$(if $(Q),@echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) -Ikernels/vulkan $(ALLCFLAGS) -c $< -o $@
LIB_OBJ += $(BUILD)/obj/gen/vulkan/vk_spirv.o
LDLIBS += -ldl
endif

# CUDA and HIP: the .cu files of kernels/cuda, compiled by nvcc for the cuda backend and by
# hipcc (-DMLC_GPU_HIP, through kernels/cuda/hip_compat.h) for the hip backend; both may be
# in one binary (their C++ symbols live in different namespaces). The CUDA runtime is linked
# statically, so the binary needs no CUDA library to start; the driver (libcuda) is looked
# for at run time and its absence is a one-line "no device" reason. CUDA_ARCHS: real code for
# Ampere (sm_80) and Hopper (sm_90), PTX for compute_75 (Turing and anything newer JIT it).
NVCC ?= $(or $(shell command -v nvcc 2>/dev/null),/usr/local/cuda/bin/nvcc)
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))
CUDA_ARCHS ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
    -gencode arch=compute_75,code=compute_75
HIPCC ?= hipcc
HIP_ARCHS ?= --offload-arch=gfx90a --offload-arch=gfx1030
GPU_CU := $(wildcard kernels/cuda/*.cu)
GPU_DEPS := $(wildcard kernels/cuda/*.h kernels/cuda/*.cuh) engine/backend.h engine/backend_list.h
GPU_CXXFLAGS := -std=c++20 $(OPTFLAGS)
ifneq ($(filter cuda,$(BACKENDS)),)
CUDA_OBJ := $(GPU_CU:%.cu=$(BUILD)/obj/cuda/%.o)
LIB_OBJ += $(CUDA_OBJ)
LDLIBS += -L$(CUDA_HOME)/lib64 -lcudart_static -ldl -lrt -lstdc++
$(BUILD)/obj/cuda/%.o: %.cu $(GPU_DEPS) $(FLAGSTAMP)
	@mkdir -p $(@D)
	$(if $(Q),@echo "  NVCC    $<")
	$(Q)$(NVCC) $(CPPFLAGS) $(GPU_CXXFLAGS) $(CUDA_ARCHS) -fmad=false -Werror all-warnings \
	    -Xcompiler -Wall,-Wextra,-Werror -c $< -o $@
endif
ifneq ($(filter hip,$(BACKENDS)),)
HIP_OBJ := $(GPU_CU:%.cu=$(BUILD)/obj/hip/%.o)
LIB_OBJ += $(HIP_OBJ)
LDLIBS += -lamdhip64 -lstdc++
$(BUILD)/obj/hip/%.o: %.cu $(GPU_DEPS) $(FLAGSTAMP)
	@mkdir -p $(@D)
	$(if $(Q),@echo "  HIPCC   $<")
	$(Q)$(HIPCC) -x hip -DMLC_GPU_HIP $(CPPFLAGS) $(GPU_CXXFLAGS) $(HIP_ARCHS) $(HIP_HOST_ONLY) -ffp-contract=off -Wall -Wextra -Werror -c $< -o $@
# The host side has no kernels; clang's device pass would take its table (a constant
# initialized with host functions) for device memory.
$(BUILD)/obj/hip/kernels/cuda/cuda_backend.o: HIP_HOST_ONLY := --cuda-host-only
endif

$(LIB): $(LIB_OBJ)
	@rm -f $@
	$(if $(Q),@echo "  AR      $@")
	$(Q)$(AR) rcs $@ $^

$(BIN): $(BENCH_OBJ) $(LIB)
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CC) $(ALLCFLAGS) $(BENCH_OBJ) $(LIB) $(BENCH_LIBS) $(LDLIBS) -o $@

$(TBIN): $(TEST_OBJ) $(LIB)
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CC) $(ALLCFLAGS) $(TEST_OBJ) $(LIB) $(BENCH_LIBS) $(LDLIBS) -lcriterion -o $@

# Tests run from the repository root; MLC_SHARED points at ../shared (golden models, vocab),
# MLC_BIN at the CLI for end-to-end tests.
#
# With SANITIZE=1 every process (test children, the runner, mlc-bench started by tests)
# writes sanitizer reports to build/san/reports/; a leak whose stack passes through our
# sources fails the target. (Criterion itself keeps a small allocation at exit now and then,
# and a leak in a forked test would not fail that test by itself; this check covers both.)
#
# Criterion 2.4's runner exits 1 when any test logs at warning or error level, even when every
# test passes (seen: a sanitizer-build run with 301 of 301 passing exited 1 because the gate
# test logged its timings with cr_log_error). The verdict must come from assertions and
# sanitizer reports alone, so tests log with cr_log_info and this check keeps it that way.
CHECK_TEST_LOGS = @bad=$$(grep -nE 'cr_log_(warn|error)\b' $(TEST_SRC)); if [ -n "$$bad" ]; then \
	echo "$$bad"; echo "tests: cr_log_warn/cr_log_error make Criterion exit 1 although every test passed; use cr_log_info (failures come from cr_assert/cr_expect)"; exit 1; fi

ifeq ($(SANITIZE),1)
test: $(TBIN) $(BIN)
	$(CHECK_TEST_LOGS)
	@rm -rf $(BUILD)/reports && mkdir -p $(BUILD)/reports
	ASAN_OPTIONS=log_path=$(CURDIR)/$(BUILD)/reports/asan:allocator_may_return_null=1 LSAN_OPTIONS=exitcode=0 \
	MLC_SHARED=$(SHARED) MLC_BIN=$(BIN) $(TBIN) --jobs=$(shell nproc)
	@bad=$$(grep -lE '^ +#[0-9]+ .* (/[^ ]*/)?(tests|engine|bench|kernels|conformance|reports)/[a-z_0-9]+\.c:' $(BUILD)/reports/asan.* 2>/dev/null); \
	if [ -n "$$bad" ]; then cat $$bad; echo "sanitizer reports in our code: $$bad"; exit 1; fi; \
	echo "sanitizers: no report in our code ($$(ls $(BUILD)/reports | wc -l) report files, all outside it)"
else
test: $(TBIN) $(BIN)
	$(CHECK_TEST_LOGS)
	MLC_SHARED=$(SHARED) MLC_BIN=$(BIN) $(TBIN) --jobs=$(shell nproc)
endif

# The engine speed benchmark: the 110m shape in F16, Q8_0 and a Q4_K_M-like mix, with the
# Llama 2 vocabulary borrowed from ../shared, measured like llama-bench. Models are made once
# and kept in build/bench; results are stored in build/bench/bench.db (for `compare`).
# BENCH_ARGS overrides the micro options.
BENCH_VOCAB ?= $(SHARED)/vocab/ggml-vocab-llama-spm.gguf
BENCH_ARGS ?= -t 2 -p 128 -n 128 -r 5
BENCH_TYPES := f16 q8_0 q4_k_m
bench: $(BIN)
	@mkdir -p build/bench
	@for t in $(BENCH_TYPES); do f=build/bench/110m-$$t.gguf; [ -f $$f ] || \
	    $(BIN) model synth --preset 110m --vocab $(BENCH_VOCAB) --type $$t -o $$f || exit 1; done
	$(BIN) micro -m $(subst $(eval) ,$(comma),$(BENCH_TYPES:%=build/bench/110m-%.gguf)) --db build/bench/bench.db $(BENCH_ARGS)

# Ours against llama.cpp's CPU backend (llama-cpp-python 0.3.36's vendored llama.cpp, built on
# demand into build/peer; PEER_BIN=path reuses a llama-bench), alternately on the same files,
# a ratio per cell. Not part of test or CI. Options: scripts/bench-peer.sh.
.PHONY: bench-peer
bench-peer: $(BIN)
	BENCH_VOCAB=$(BENCH_VOCAB) MLC=$(BIN) scripts/bench-peer.sh

# The tests' scripted server as a process of its own (ts-server --tokens N --itl-ms Y), to
# try the client by hand against an endpoint that paces its tokens.
build/ts-server: tests/ts_main.c tests/testserver.c tests/testserver.h
	@mkdir -p $(@D)
	$(CC) -std=c11 -O2 $(WARN) -D_POSIX_C_SOURCE=200809L -Itests tests/ts_main.c tests/testserver.c \
	    -lmicrohttpd -lcjson -lpthread -lm -o $@

# The harness's client CPU per request and per streamed token against serve --engine null,
# next to guidellm and AIPerf when installed (scripts/bench-client.sh --install gets them).
bench-client: $(BIN)
	scripts/bench-client.sh

# libFuzzer target: clang only, its own objects (instrumented), seeds written by the test
# helper so they are always valid files of the current writer.
FUZZ_DIR := build/fuzz
FUZZ_FLAGS := -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -Iengine/include -Iengine -D_POSIX_C_SOURCE=200809L
FUZZ_LIB_SRC := engine/gguf.c engine/gguf_writer.c engine/outfile.c engine/quant.c engine/quant_k.c engine/status.c
$(FUZZ_DIR)/fuzz-gguf: tests/fuzz_gguf.c $(FUZZ_LIB_SRC) $(wildcard engine/include/mlc/*.h)
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_FLAGS) tests/fuzz_gguf.c $(FUZZ_LIB_SRC) -lm -o $@
$(FUZZ_DIR)/gguf-seeds: tests/fuzz_seeds.c $(FUZZ_LIB_SRC) $(wildcard engine/include/mlc/*.h)
	@mkdir -p $(@D)
	$(CC) -std=c11 -O1 $(WARN) -Iengine/include -D_POSIX_C_SOURCE=200809L tests/fuzz_seeds.c $(FUZZ_LIB_SRC) -lm -o $@
fuzz: $(FUZZ_DIR)/fuzz-gguf $(FUZZ_DIR)/gguf-seeds
	rm -rf $(FUZZ_DIR)/corpus $(FUZZ_DIR)/corpus-seeds
	mkdir -p $(FUZZ_DIR)/corpus $(FUZZ_DIR)/corpus-seeds $(FUZZ_DIR)/crashes
	$(FUZZ_DIR)/gguf-seeds $(FUZZ_DIR)/corpus-seeds
	cp $(FUZZ_DIR)/corpus-seeds/* $(FUZZ_DIR)/corpus/
	$(FUZZ_DIR)/fuzz-gguf -max_total_time=$(FUZZ_TIME) -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
	    -artifact_prefix=$(FUZZ_DIR)/crashes/ -print_final_stats=1 $(FUZZ_DIR)/corpus

# Debian packages of DESIGN.md. apt-get update runs once (stamp under /var/lib/apt/lists is
# not ours to write, so we check whether every package is already installed first).
DEB_PKGS := build-essential pkg-config clang libclang-rt-dev libcurl4-openssl-dev libcjson-dev \
    libsqlite3-dev libmicrohttpd-dev libcriterion-dev gnuplot-nox ocl-icd-opencl-dev \
    opencl-headers pocl-opencl-icd clinfo libvulkan-dev mesa-vulkan-drivers glslc vulkan-tools \
    vulkan-validationlayers chromium shellcheck python3-venv sqlite3 hipcc libamdhip64-dev
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
deps:
	@missing=$$(for p in $(DEB_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    echo "installing:" $$missing; \
	    $(SUDO) apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "deps: all Debian packages present"; fi
	@if [ -x "$(NVCC)" ]; then echo "deps: CUDA toolkit: $$($(NVCC) --version | tail -1)"; \
	 else echo "deps: no nvcc on PATH: the cuda backend will not be built (install the CUDA toolkit to get it)"; fi
	@if command -v hipcc >/dev/null 2>&1; then echo "deps: HIP compiler: hipcc $$(hipcc --version 2>/dev/null | sed -n 's/^HIP version: //p')"; \
	 else echo "deps: no hipcc on PATH: the hip backend will not be built (Debian: apt-get install hipcc libamdhip64-dev)"; fi

print-backends:
	@echo "detected: $(strip $(DETECTED_BACKENDS))"; echo "building: $(strip $(BACKENDS))"

install: $(BIN) $(LIB)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include/mlc
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/mlc-bench
	install -m 644 $(LIB) $(DESTDIR)$(PREFIX)/lib/libmlc.a
	install -m 644 engine/include/mlc/*.h $(DESTDIR)$(PREFIX)/include/mlc/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' mlc.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/mlc.pc

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(BENCH_OBJ:.o=.d) $(TEST_OBJ:.o=.d)

# Container images (docker/): DOCKER=podman works too. docker-cpu-test builds the CPU image's
# test stage (devices, conformance --quick on every backend, a run against serve --engine null);
# docker-podman builds and tests it with podman alone, on a machine without a Docker engine or
# registry access, as CI does (docker/build-cpu-image.sh). docker-lint: hadolint on all three.
DOCKER ?= docker
IMAGE ?= mlc-bench
DOCKER_ARGS = --build-arg VERSION=$(VERSION) --build-arg REVISION=$(shell git rev-parse HEAD 2>/dev/null || echo unknown)
HADOLINT ?= hadolint
.PHONY: docker-cpu docker-cpu-test docker-cuda docker-rocm docker-podman docker-lint
docker-cpu:
	$(DOCKER) build -f docker/Dockerfile.cpu --target runtime $(DOCKER_ARGS) -t $(IMAGE):cpu .
docker-cpu-test:
	$(DOCKER) build -f docker/Dockerfile.cpu --target test $(DOCKER_ARGS) -t $(IMAGE):cpu-test .
docker-cuda:
	$(DOCKER) build -f docker/Dockerfile.cuda $(DOCKER_ARGS) -t $(IMAGE):cuda .
docker-rocm:
	$(DOCKER) build -f docker/Dockerfile.rocm $(DOCKER_ARGS) -t $(IMAGE):rocm .
docker-podman:
	docker/build-cpu-image.sh test
docker-lint:
	$(HADOLINT) docker/Dockerfile.cpu docker/Dockerfile.cuda docker/Dockerfile.rocm
