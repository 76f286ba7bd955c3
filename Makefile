# libcatanet: non-recursive Makefile; everything is built out of tree in $(BUILDDIR).
# ./configure writes build/config.mk; `make` runs it with defaults when it is missing.

BUILDDIR ?= build
CONFIG := $(BUILDDIR)/config.mk
-include $(CONFIG)

# shared data (reference cases, eval sets, clips): ../shared beside the checkout, or CATANET_SHARED
CATANET_SHARED ?= $(abspath ../shared)
export CATANET_SHARED

B := $(BUILDDIR)
CPPFLAGS := -Iinclude -Ikernels -Iengine -Itraining -Itools -I$(B) -MMD -MP

# libcatanet (static and shared) holds everything but the CUDA backend: engine/cuda_dl.c dlopens
# the CUDA plugin, libcatanet-cuda.so.$(SOMAJOR) (engine/cuda_plugin.h), on demand. The plugin is the
# backend (PLUGIN_C), the training plan's CUDA twin and kernels/cuda/*.cu, linked with cudart and
# cuBLAS and with its own copy of the library code it calls; it exports one symbol.
PLUGIN_C := engine/backend_cuda.c engine/cuda_plugin.c training/model_train_cuda.c
LIB_SRCS := $(filter-out $(PLUGIN_C),$(wildcard engine/*.c engine/pth/*.c kernels/cpu/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(B)/%.o)
LIB := $(B)/libcatanet.a
SOLIB := $(B)/libcatanet.so.$(VERSION)
SOLINKS := $(B)/libcatanet.so.$(SOMAJOR) $(B)/libcatanet.so
ALL_LIBS = $(LIB) $(LIBS)
ifeq ($(HAVE_CUDA),1)
CU_OBJS := $(patsubst %.cu,$(B)/%.cu.o,$(wildcard kernels/cuda/*.cu))
PLUGIN := $(B)/libcatanet-cuda.so.$(SOMAJOR)
PLUGIN_OBJS := $(PLUGIN_C:%.c=$(B)/%.o) $(CU_OBJS)
# the programs that call CUDA themselves besides the engine (the GPU twin test, the GPU benchmark)
CUDA_DIRECT_LIBS := $(CUDA_LIBS) -lstdc++
else
CU_OBJS :=
PLUGIN :=
CUDA_DIRECT_LIBS :=
endif

# the training module: training/*.c is a library (libcatanet_train.a) plus training/main.c
TRAIN_SRCS := $(filter-out training/main.c $(PLUGIN_C),$(wildcard training/*.c))
TRAIN_OBJS := $(TRAIN_SRCS:%.c=$(B)/%.o)
TRAIN_LIB := $(B)/libcatanet_train.a
TRAIN_BIN := $(if $(wildcard training/main.c),$(B)/training/catanet-train)

TOOLS := $(basename $(notdir $(wildcard tools/catanet-*.c)))
TOOL_BINS := $(TOOLS:%=$(B)/tools/%)
TOOL_COMMON := $(B)/tools/imageio.o $(B)/tools/cli.o

TEST_SRCS := $(wildcard tests/test_*.c)
TEST_BINS := $(TEST_SRCS:%.c=$(B)/%)
TEST_COMMON := $(B)/tests/testutil.o $(B)/tools/imageio.o $(B)/tools/cli.o

.PHONY: all check install uninstall clean distclean check-twins

all: $(LIB) $(SOLIB) $(SOLINKS) $(PLUGIN) $(TRAIN_LIB) $(TRAIN_BIN) $(TOOL_BINS) $(TEST_BINS) $(B)/tests/blas_threads

# keep the objects of programs (make would otherwise delete them as intermediates)
.SECONDARY:

$(CONFIG):
	./configure --builddir=$(BUILDDIR)

$(B)/%.o: %.c $(CONFIG)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(B)/%.cu.o: %.cu $(CONFIG)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCC_FLAGS) -Iinclude -Ikernels -Iengine -I$(B) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

# only the public API is exported: everything is compiled with -fvisibility=hidden and catanet.h marks
# the API CATANET_API; the version script made from those declarations also hides what GCC exports
# regardless (the ifunc symbols of target_clones functions)
$(B)/libcatanet.map: include/catanet.h
	{ echo '{ global:'; sed -n 's/^CATANET_API .*[ *]\(catanet_[a-z_0-9]*\)(.*/    \1;/p' $<; echo '  local: *; };'; } > $@
$(SOLIB): $(LIB_OBJS) $(B)/libcatanet.map
	$(CC) -shared -Wl,-soname,libcatanet.so.$(SOMAJOR) -Wl,--version-script=$(B)/libcatanet.map -Wl,-z,defs \
		$(LDFLAGS) $(LIB_OBJS) $(LIBS) -o $@
$(SOLINKS): $(SOLIB)
	ln -sf $(notdir $(if $(filter %.so,$@),$(B)/libcatanet.so.$(SOMAJOR),$(SOLIB))) $@

# the version script keeps the nvcc objects' symbols local too; no SONAME users link against
$(PLUGIN): $(PLUGIN_OBJS) $(TRAIN_LIB) $(LIB) engine/cuda_plugin.map
	$(CC) -shared -Wl,-soname,$(notdir $@) -Wl,--version-script=engine/cuda_plugin.map -Wl,--exclude-libs,ALL \
		-Wl,-z,defs $(LDFLAGS) $(PLUGIN_OBJS) $(TRAIN_LIB) $(LIB) $(LIBS) $(CUDA_LIBS) -lstdc++ -o $@

$(TRAIN_LIB): $(TRAIN_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(B)/training/catanet-train: $(B)/training/main.o $(TOOL_COMMON) $(TRAIN_LIB) $(LIB)
	$(CC) $(LDFLAGS) $< $(TOOL_COMMON) $(TRAIN_LIB) $(ALL_LIBS) $(PNG_LIBS) $(TRAIN_EXTRA_LIBS) -lpthread -o $@

$(B)/tools/%: $(B)/tools/%.o $(TOOL_COMMON) $(TRAIN_LIB) $(LIB)
	$(CC) $(LDFLAGS) $< $(TOOL_COMMON) $(TRAIN_LIB) $(ALL_LIBS) $(PNG_LIBS) $(TRAIN_EXTRA_LIBS) $(DIRECT) -lpthread -o $@

$(B)/tests/test_%: $(B)/tests/test_%.o $(TEST_COMMON) $(TRAIN_LIB) $(LIB)
	$(CC) $(LDFLAGS) $< $(TEST_COMMON) $(TRAIN_LIB) $(ALL_LIBS) $(PNG_LIBS) $(TRAIN_EXTRA_LIBS) $(DIRECT) -lpthread -o $@

# test_twins runs the kernels itself (the op table) and the engine through the plugin; it and
# test_train_cuda and catanet-gpubench also call the CUDA runtime: they alone link it (not installed)
$(B)/tests/test_twins: $(CU_OBJS)
$(B)/tests/test_twins: DIRECT = $(CU_OBJS) $(CUDA_DIRECT_LIBS)
$(B)/tests/test_train_cuda $(B)/tools/catanet-gpubench: DIRECT = $(CUDA_DIRECT_LIBS)

# run by tests/t_blas_threads.sh under each OpenBLAS build (not a test_ program: it needs its arguments)
$(B)/tests/blas_threads: $(B)/tests/blas_threads.o $(TEST_COMMON) $(TRAIN_LIB) $(LIB)
	$(CC) $(LDFLAGS) $< $(TEST_COMMON) $(TRAIN_LIB) $(ALL_LIBS) $(PNG_LIBS) $(TRAIN_EXTRA_LIBS) -lpthread -o $@

# The test suite: every tests/test_*.c binary, then the shell tests; tests/run.sh prints the summary.
check: all
	@sh tests/run.sh $(B)

check-twins:
	@sh tests/check_twins.sh

# make install [DESTDIR=...]: builds and installs the libraries (static, shared with its SONAME
# links, the CUDA plugin in LIBDIR/catanet), the header, catanet.pc, the tools (linked with the
# static library; not catanet-gpubench, a GPU developer benchmark that links the CUDA runtime) and
# the models (DATADIR/catanet). make uninstall removes exactly those (and the two catanet folders).
INST_TOOLS := $(filter-out catanet-gpubench,$(TOOLS)) $(if $(TRAIN_BIN),catanet-train)
INST_MODELS := $(notdir $(wildcard weights/*.safetensors))
INST_LIBS := libcatanet.a libcatanet.so.$(VERSION) libcatanet.so.$(SOMAJOR) libcatanet.so
D_LIB := $(DESTDIR)$(LIBDIR)
D_PLUGIN := $(DESTDIR)$(LIBDIR)/catanet
D_MODELS := $(DESTDIR)$(DATADIR)/catanet
install: $(LIB) $(SOLIB) $(SOLINKS) $(PLUGIN) $(B)/catanet.pc $(filter-out $(B)/tools/catanet-gpubench,$(TOOL_BINS)) \
		$(TRAIN_BIN)
	install -d $(D_LIB)/pkgconfig $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/bin $(D_MODELS)
	install -m 644 $(LIB) $(D_LIB)/
	install -m 755 $(SOLIB) $(D_LIB)/
	ln -sf libcatanet.so.$(VERSION) $(D_LIB)/libcatanet.so.$(SOMAJOR)
	ln -sf libcatanet.so.$(SOMAJOR) $(D_LIB)/libcatanet.so
	$(if $(PLUGIN),install -d $(D_PLUGIN) && install -m 755 $(PLUGIN) $(D_PLUGIN)/)
	install -m 644 include/catanet.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(B)/catanet.pc $(D_LIB)/pkgconfig/
	install -m 755 $(filter-out $(B)/tools/catanet-gpubench,$(TOOL_BINS)) $(TRAIN_BIN) $(DESTDIR)$(PREFIX)/bin/
	$(if $(INST_MODELS),install -m 644 $(INST_MODELS:%=weights/%) $(D_MODELS)/)

uninstall:
	rm -f $(INST_LIBS:%=$(D_LIB)/%) $(D_PLUGIN)/libcatanet-cuda.so.$(SOMAJOR) $(D_LIB)/pkgconfig/catanet.pc \
		$(DESTDIR)$(PREFIX)/include/catanet.h $(INST_TOOLS:%=$(DESTDIR)$(PREFIX)/bin/%) \
		$(INST_MODELS:%=$(D_MODELS)/%)
	-rmdir $(D_PLUGIN) $(D_MODELS) 2>/dev/null || true

clean:
	rm -rf $(B)/engine $(B)/kernels $(B)/tools $(B)/tests $(B)/emu $(LIB) $(SOLIB) $(SOLINKS) $(PLUGIN)

distclean:
	rm -rf $(B)

-include $(shell find $(B) -type f -name '*.d' 2>/dev/null)

# ==== fuzzing and sanitizers (tests/fuzz) ======================================================
# make fuzz            builds build-fuzz/fuzz_weights and build-fuzz/fuzz_images (clang, libFuzzer + ASan +
#                      UBSan) and their seed corpora
# make fuzz-smoke      runs each for FUZZ_TIME seconds (default 30) on the seeds
# make fuzz-run        the same for FUZZ_TIME (set it: e.g. make fuzz-run FUZZ_TIME=600)
# make fuzz-ckpt       builds build-fuzz/fuzz_ckpt (catanet-train's checkpoint metadata reader,
#                      training/ckpt.c) and runs it FUZZ_TIME seconds on tests/fuzz/ckpt_seeds
# make fuzz-short      fuzz_images for FUZZ_SHORT_TIME seconds (default 20): what make check runs
#                      (tests/t_fuzz_images.sh; the default tools/install-deps.sh installs clang for it)
# make check-sanitize  the C test programs in build-san (gcc, --sanitize=address,undefined, CPU only);
#                      tests see CATANET_SANITIZE=1 and may shrink their sizes (ASan makes them ~5-10x slower)
FUZZ_CC ?= clang
FUZZ_B := build-fuzz
FUZZ_TIME ?= 30
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -Iinclude -Ikernels -Iengine -I$(B) $(shell pkg-config --cflags jansson 2>/dev/null)
FUZZ_LIBS := $(shell pkg-config --libs jansson 2>/dev/null || echo -ljansson) -lm
# engine/modelpath.c: the model loader resolves names (its installed folder comes from $(B)/config.h)
FUZZ_LIB_SRCS := engine/safetensors.c $(wildcard engine/pth/*.c) engine/model.c engine/modelpath.c engine/error.c
FUZZ_REF := $(CATANET_SHARED)/reference/catanet/weights_x2_random.pth
FUZZ_SHORT_TIME ?= 20
FUZZ_IMG_SRCS := tools/imageio.c training/imgload.c training/bicubic.c engine/image.c engine/error.c
FUZZ_IMG_FLAGS := -Itools -Itraining $(shell pkg-config --cflags libpng 2>/dev/null)
FUZZ_IMG_LIBS := $(shell pkg-config --libs libpng 2>/dev/null || echo -lpng) -ljpeg -lm
FUZZ_IMG_RUN = ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 $(FUZZ_B)/fuzz_images -max_len=16384 \
	-rss_limit_mb=2048 -timeout=10 -print_final_stats=1 -artifact_prefix=$(FUZZ_B)/ $(FUZZ_B)/corpus_images \
	$(FUZZ_B)/image_seeds
SAN_B := build-san

.PHONY: fuzz fuzz-deps fuzz-smoke fuzz-run fuzz-ckpt fuzz-short check-sanitize

fuzz-deps:
	@sh tools/install-deps.sh --fuzz

$(FUZZ_B)/fuzz_weights: $(CONFIG) tests/fuzz/fuzz_weights.c $(FUZZ_LIB_SRCS) $(wildcard engine/*.h engine/pth/*.h)
	@mkdir -p $(FUZZ_B)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(FUZZ_SAN) tests/fuzz/fuzz_weights.c $(FUZZ_LIB_SRCS) $(FUZZ_LIBS) -o $@

$(FUZZ_B)/fuzz_ckpt: $(CONFIG) tests/fuzz/fuzz_ckpt.c training/ckpt.c training/ckpt.h $(FUZZ_LIB_SRCS) $(wildcard engine/*.h engine/pth/*.h)
	@mkdir -p $(FUZZ_B)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Itraining -fsanitize=fuzzer $(FUZZ_SAN) tests/fuzz/fuzz_ckpt.c training/ckpt.c \
		$(FUZZ_LIB_SRCS) $(FUZZ_LIBS) -o $@

$(FUZZ_B)/make_seeds: $(CONFIG) tests/fuzz/make_seeds.c $(FUZZ_LIB_SRCS) $(wildcard engine/*.h engine/pth/*.h)
	@mkdir -p $(FUZZ_B)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) tests/fuzz/make_seeds.c $(FUZZ_LIB_SRCS) $(FUZZ_LIBS) -o $@

$(FUZZ_B)/seeds/.done: $(FUZZ_B)/make_seeds
	@rm -rf $(FUZZ_B)/seeds && mkdir -p $(FUZZ_B)/seeds
	$(FUZZ_B)/make_seeds $(FUZZ_B)/seeds $(FUZZ_REF)
	@touch $@

$(FUZZ_B)/fuzz_images: tests/fuzz/fuzz_images.c $(FUZZ_IMG_SRCS) $(wildcard tools/*.h training/imgload.h engine/*.h)
	@mkdir -p $(FUZZ_B)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_IMG_FLAGS) -fsanitize=fuzzer $(FUZZ_SAN) tests/fuzz/fuzz_images.c $(FUZZ_IMG_SRCS) \
		$(FUZZ_IMG_LIBS) -o $@

$(FUZZ_B)/make_image_seeds: tests/fuzz/make_image_seeds.c
	@mkdir -p $(FUZZ_B)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_IMG_FLAGS) tests/fuzz/make_image_seeds.c $(FUZZ_IMG_LIBS) -o $@

$(FUZZ_B)/image_seeds/.done: $(FUZZ_B)/make_image_seeds
	@rm -rf $(FUZZ_B)/image_seeds && mkdir -p $(FUZZ_B)/image_seeds
	$(FUZZ_B)/make_image_seeds $(FUZZ_B)/image_seeds
	@touch $@

fuzz: fuzz-deps
	@$(MAKE) --no-print-directory $(FUZZ_B)/fuzz_weights $(FUZZ_B)/seeds/.done $(FUZZ_B)/fuzz_images $(FUZZ_B)/image_seeds/.done
	@echo "run: $(FUZZ_B)/fuzz_weights -dict=tests/fuzz/weights.dict -max_len=65536 $(FUZZ_B)/corpus $(FUZZ_B)/seeds"
	@echo "     $(FUZZ_B)/fuzz_images -max_len=16384 $(FUZZ_B)/corpus_images $(FUZZ_B)/image_seeds"

# the short run make check makes (no fuzz-deps: install-deps.sh has installed clang; no apt from a test)
fuzz-short: $(FUZZ_B)/fuzz_images $(FUZZ_B)/image_seeds/.done
	@mkdir -p $(FUZZ_B)/corpus_images
	$(FUZZ_IMG_RUN) -max_total_time=$(FUZZ_SHORT_TIME)

fuzz-ckpt: fuzz-deps
	@$(MAKE) --no-print-directory $(FUZZ_B)/fuzz_ckpt
	@mkdir -p $(FUZZ_B)/corpus-ckpt
	ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 $(FUZZ_B)/fuzz_ckpt -dict=tests/fuzz/ckpt.dict \
		-max_len=8192 -rss_limit_mb=2048 -timeout=10 -max_total_time=$(FUZZ_TIME) -print_final_stats=1 \
		-artifact_prefix=$(FUZZ_B)/ckpt- $(FUZZ_B)/corpus-ckpt tests/fuzz/ckpt_seeds

# new inputs go to build-fuzz/corpus (kept between runs); crashes to build-fuzz/crash-*
fuzz-smoke fuzz-run: fuzz
	@mkdir -p $(FUZZ_B)/corpus $(FUZZ_B)/corpus_images
	ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 $(FUZZ_B)/fuzz_weights -dict=tests/fuzz/weights.dict \
		-max_len=65536 -rss_limit_mb=2048 -timeout=10 -max_total_time=$(FUZZ_TIME) -print_final_stats=1 \
		-artifact_prefix=$(FUZZ_B)/ $(FUZZ_B)/corpus $(FUZZ_B)/seeds
	$(FUZZ_IMG_RUN) -max_total_time=$(FUZZ_TIME)

check-sanitize:
	@test -f $(SAN_B)/config.mk || ./configure --builddir=$(SAN_B) --sanitize=address,undefined --disable-cuda
	@$(MAKE) --no-print-directory BUILDDIR=$(SAN_B) -j2 all
	CATANET_SANITIZE=1 \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1 \
	LSAN_OPTIONS=suppressions=$(abspath tests/fuzz/lsan.supp):print_suppressions=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		sh tests/run.sh $(SAN_B) --programs-only

# ---- check-emu: the CUDA twins on the CPU, in a host emulator (tests/cuda_emu/emu.cpp) ----
# make check-emu   builds tests/test_twins.c, tests/test_train_cuda.c and catanet-train against
#                  kernels/cuda/*.cu compiled by g++ for the emulator (in $(B)/emu; no GPU, no CUDA
#                  toolkit needed) and runs them (make check runs the same as tests/t_cuda_emu.sh).
# Every kernels/cuda/*.cu is emulated (cluster.cu's warp intrinsics and atomicAdd included) and every
# op-table entry runs, except those tests/test_twins.c's emu_skip() names, printed as SKIP: today the
# fp16 tensor-core GEMM (its numerics are the point of that entry; the emulated cublasGemmEx computes
# in fp32). test_twins' engine parts run libcatanet's CUDA backend, engine/backend_cuda.c compiled
# against the emulator (its CUDA graph captured and replayed, caller streams and CUcontext), on the
# subset test_twins.c's EMU_SUBSET names (what is left prints SKIP): the op table ~20 s and the
# engine parts ~140 s of one core. The CPU twins come from $(B)'s objects (engine/*.c, engine/pth/*.c,
# kernels/cpu/*.c; the plugin loader cuda_dl.c but in test_twins), whatever HAVE_CUDA is there. The
# emulated programs link the backend directly: no plugin, no dlopen.
# EMU_SANITIZE=-fsanitize=address also catches out-of-bounds accesses past a host allocation.
EMU_B := $(B)/emu
EMU_CXX ?= g++
EMU_SANITIZE ?=
EMU_CU := $(wildcard kernels/cuda/*.cu)
EMU_SRC := $(patsubst kernels/cuda/%,$(EMU_B)/src/%,$(EMU_CU) $(wildcard kernels/cuda/*.cuh))
EMU_RT := $(EMU_B)/emu.o $(EMU_B)/emu_runtime.o
EMU_OBJS := $(EMU_CU:kernels/cuda/%.cu=$(EMU_B)/%.o) $(EMU_RT)
EMU_CPU_OBJS := $(LIB_OBJS)
# test_twins' engine parts: libcatanet's engine with engine/backend_cuda.c compiled against the emulator
EMU_ENGINE_OBJS := $(filter-out $(B)/engine/cuda_dl.o,$(EMU_CPU_OBJS)) $(EMU_B)/backend_cuda.o
EMU_INC := -Itests/cuda_emu/include -I$(EMU_B) -I$(EMU_B)/src -Iinclude -Ikernels -Iengine
EMU_CXXFLAGS := -std=c++17 -O2 -g -fPIC -ffp-contract=off -Wall -Wno-unknown-pragmas -Wno-unused-function -Wno-unused-parameter $(EMU_SANITIZE)

.PHONY: check-emu emu-build
check-emu: emu-build
	@sh tests/t_cuda_emu.sh --run-only

# (defined before emu-build: a rule's prerequisites are expanded when make reads it)
EMU_PLUGIN := $(EMU_B)/plugin/libcatanet-cuda.so.$(SOMAJOR)
emu-build: $(EMU_B)/test_twins $(EMU_B)/test_train_cuda $(EMU_B)/catanet-train $(EMU_B)/wmma_selftest \
           $(EMU_B)/exp2_selftest $(EMU_B)/catanet-gpubench $(EMU_B)/census $(EMU_PLUGIN)

$(EMU_B)/config.h: $(CONFIG)
	@mkdir -p $(dir $@)
	sed 's/^#define HAVE_CUDA 0$$/#define HAVE_CUDA 1/' $(B)/config.h > $@

$(EMU_B)/src/%: kernels/cuda/% tests/cuda_emu/prep.sh
	@mkdir -p $(dir $@)
	sh tests/cuda_emu/prep.sh $< $@

$(EMU_B)/%.o: $(EMU_B)/src/%.cu $(EMU_SRC) $(EMU_B)/config.h $(wildcard tests/cuda_emu/include/*.h)
	$(EMU_CXX) $(EMU_CXXFLAGS) $(EMU_INC) -MMD -MP -x c++ -c $< -o $@

$(EMU_B)/emu.o $(EMU_B)/emu_runtime.o: $(EMU_B)/%.o: tests/cuda_emu/%.cpp $(wildcard tests/cuda_emu/include/*.h)
	@mkdir -p $(dir $@)
	$(EMU_CXX) $(EMU_CXXFLAGS) -Itests/cuda_emu/include -c $< -o $@

# the emulator's own wmma/fp16 check (tests/cuda_emu/wmma_selftest.cu)
$(EMU_B)/wmma_selftest: tests/cuda_emu/wmma_selftest.cu tests/cuda_emu/prep.sh kernels/cuda/mma_16816.cuh $(EMU_RT) $(wildcard tests/cuda_emu/include/*.h)
	@mkdir -p $(EMU_B)/src
	sh tests/cuda_emu/prep.sh $< $(EMU_B)/src/wmma_selftest.cu
	$(EMU_CXX) $(EMU_CXXFLAGS) -Itests/cuda_emu/include -Ikernels/cuda -x c++ $(EMU_B)/src/wmma_selftest.cu -x none $(EMU_RT) -o $@

# attn_tc.cuh's exp2_fma against exp2 in double (tests/cuda_emu/exp2_selftest.cu)
$(EMU_B)/exp2_selftest: tests/cuda_emu/exp2_selftest.cu tests/cuda_emu/prep.sh $(EMU_SRC) $(EMU_RT) $(EMU_B)/config.h \
                        $(wildcard tests/cuda_emu/include/*.h)
	sh tests/cuda_emu/prep.sh $< $(EMU_B)/src/exp2_selftest.cu
	$(EMU_CXX) $(EMU_CXXFLAGS) $(EMU_INC) -x c++ $(EMU_B)/src/exp2_selftest.cu -x none $(EMU_RT) -o $@

# C sources that call CUDA (the tests, the CUDA training step) compiled against the stub headers
$(EMU_B)/test_%.o: tests/test_%.c $(EMU_B)/config.h $(wildcard tests/cuda_emu/include/*.h)
	$(CC) $(EMU_INC) $(CPPFLAGS) $(CFLAGS) $(EMU_SANITIZE) -c $< -o $@

$(EMU_B)/model_train_cuda.o: training/model_train_cuda.c $(EMU_B)/config.h $(wildcard tests/cuda_emu/include/*.h)
	$(CC) $(EMU_INC) $(CPPFLAGS) $(CFLAGS) $(EMU_SANITIZE) -c $< -o $@

$(EMU_B)/backend_cuda.o: engine/backend_cuda.c $(EMU_B)/config.h $(wildcard tests/cuda_emu/include/*.h)
	$(CC) $(EMU_INC) $(CPPFLAGS) $(CFLAGS) $(EMU_SANITIZE) -c $< -o $@

$(EMU_B)/test_twins: $(EMU_B)/test_twins.o $(EMU_OBJS) $(EMU_ENGINE_OBJS) $(TEST_COMMON) $(B)/training/imgload.o \
		$(B)/training/bicubic.o
	$(EMU_CXX) $(LDFLAGS) $(EMU_SANITIZE) $^ $(LIBS) $(PNG_LIBS) $(TRAIN_EXTRA_LIBS) -lpthread -o $@

# the CUDA plugin made of the emulated backend (hence -fPIC above): $(B)'s own programs load it through
# CATANET_CUDA_PLUGIN, so t_cuda_emu.sh runs the dlopen path, the plugin's table and the forwarding of
# engine and training calls end to end without a GPU
$(EMU_B)/cuda_plugin.o: engine/cuda_plugin.c $(EMU_B)/config.h $(wildcard tests/cuda_emu/include/*.h)
	$(CC) $(EMU_INC) $(CPPFLAGS) $(CFLAGS) $(EMU_SANITIZE) -c $< -o $@
$(EMU_PLUGIN): $(EMU_B)/cuda_plugin.o $(EMU_B)/backend_cuda.o $(EMU_B)/model_train_cuda.o $(EMU_OBJS) $(TRAIN_LIB) $(LIB) \
		engine/cuda_plugin.map
	@mkdir -p $(dir $@)
	$(EMU_CXX) -shared $(LDFLAGS) $(EMU_SANITIZE) -Wl,--version-script=engine/cuda_plugin.map -Wl,--exclude-libs,ALL \
		$(filter %.o,$^) $(TRAIN_LIB) $(LIB) $(LIBS) -lpthread -o $@

# the CUDA training step against the CPU one (training/*.o from $(B), model_train_cuda.c emulated)
EMU_TRAIN_OBJS := $(filter-out $(B)/training/train_cuda_dl.o,$(TRAIN_OBJS)) $(EMU_B)/model_train_cuda.o
$(EMU_B)/test_train_cuda: $(EMU_B)/test_train_cuda.o $(EMU_TRAIN_OBJS) $(EMU_OBJS) $(EMU_CPU_OBJS) $(TEST_COMMON)
	$(EMU_CXX) $(LDFLAGS) $(EMU_SANITIZE) $^ $(LIBS) $(PNG_LIBS) $(TRAIN_EXTRA_LIBS) -lpthread -o $@
# catanet-train with its CUDA parts emulated (main.c has no CUDA code: $(B)'s main.o), for
# t_cuda_emu.sh's `bench --device cuda` smoke run
$(EMU_B)/catanet-train: $(B)/training/main.o $(TOOL_COMMON) $(EMU_TRAIN_OBJS) $(EMU_OBJS) $(EMU_CPU_OBJS)
	$(EMU_CXX) $(LDFLAGS) $(EMU_SANITIZE) $^ $(LIBS) $(PNG_LIBS) $(TRAIN_EXTRA_LIBS) -lpthread -o $@
# catanet-gpubench on the emulator: gpu-check's bench step (kernel picks, the PROFILE table, the
# JSON line) run end to end off-GPU by tests/t_cuda_emu.sh
$(EMU_B)/catanet-gpubench.o: tools/catanet-gpubench.c $(EMU_B)/config.h $(wildcard tests/cuda_emu/include/*.h)
	$(CC) $(EMU_INC) $(CPPFLAGS) $(CFLAGS) $(EMU_SANITIZE) -c $< -o $@
$(EMU_B)/catanet-gpubench: $(EMU_B)/catanet-gpubench.o $(EMU_OBJS) $(EMU_ENGINE_OBJS) $(B)/tools/cli.o
	$(EMU_CXX) $(LDFLAGS) $(EMU_SANITIZE) $^ $(LIBS) -lpthread -o $@
# the launch census of one frame (tests/cuda_emu/census.c, tools/census.sh): shapes, not results
$(EMU_B)/census.o: tests/cuda_emu/census.c $(EMU_B)/config.h $(wildcard tests/cuda_emu/include/*.h)
	$(CC) $(EMU_INC) $(CPPFLAGS) $(CFLAGS) $(EMU_SANITIZE) -c $< -o $@
$(EMU_B)/census: $(EMU_B)/census.o $(EMU_OBJS) $(EMU_ENGINE_OBJS)
	$(EMU_CXX) $(LDFLAGS) $(EMU_SANITIZE) -rdynamic $^ $(LIBS) -lpthread -ldl -o $@
# make census [CENSUS_MODEL=file] [CENSUS_SIZE=WxH] [CENSUS_ARGS="fp16 primary"]: the table of
# tools/census.sh (one frame's launches and how full each keeps an sm_90 GPU; counted, not timed),
# by default for a random-weight 8-group x2 model at 960x540 (docs/roofline.md)
CENSUS_MODEL ?= $(B)/census/l8_x2.safetensors
CENSUS_SIZE ?= 960x540
CENSUS_ARGS ?= fp16 primary
.PHONY: census
census: $(EMU_B)/census $(B)/tools/catanet-mkmodel
	@mkdir -p $(B)/census
	@[ -f $(CENSUS_MODEL) ] || $(B)/tools/catanet-mkmodel -o $(CENSUS_MODEL) -s 2 -g 8
	sh tools/census.sh -b $(B) $(CENSUS_MODEL) $(CENSUS_SIZE) $(CENSUS_ARGS)
# ---- end check-emu ----

# ---- GPU check (tools/gpu-check.sh) ----
# make gpu-check OUT=dir    on a machine with an NVIDIA GPU and the CUDA toolkit: build for its GPU,
#                           twin tests, the model against the reference cases, benchmarks, memcheck,
#                           the FFmpeg CUDA-frames pipeline; logs and summary.txt in dir
# make gpu-stage            for a GPU machine without network access or without the shared data:
#                           a self-contained bundle in build/gpu-carry (the reference cases and images
#                           gpu-check reads, a training subset, the host libraries, FFmpeg's sources);
#                           copy the checkout with build/gpu-carry there and run make gpu-check
.PHONY: gpu-check gpu-stage
OUT ?= gpu-check-out
gpu-check:
	sh tools/gpu-check.sh $(OUT)
gpu-stage:
	sh tools/gpu-check.sh --stage
	sh tools/gpu-train.sh --stage || echo "gpu-stage: no training images staged (gpu-check's loop speed uses Set5)"
	sh tools/ffmpeg-gpu-check.sh --stage || echo "gpu-stage: the FFmpeg part was not staged (gpu-check will skip it)"
	@du -sh build/gpu-carry/* | sed 's/^/gpu-stage: /'
# ---- end GPU check ----

# ---- FFmpeg with catanet_xs (filter/, patches/, tools/ffmpeg-*.sh; see patches/README) ----
# ffmpeg:     FFmpeg from ./configure --ffmpeg-source=DIR, else Debian's source package of
#             this machine's suites (bookworm: 5.1.x), patched, built in $(B)/ffmpeg
# ffmpeg-new: the newer FFmpeg (Debian trixie: 7.1.x) in $(B)/ffmpeg-new
# patches:    regenerate patches/ffmpeg-* from filter/ for every fetched FFmpeg tree
# demo:       make regress's figures for the bundled clip (tests/data) with CATANET_MODEL, no
#             baseline: fps, PSNR/SSIM and temporal figures against bicubic, $(B)/demo/report.html
#             with a crop side by side (bicubic | catanet | original)
# fps:        make regress's figures, whole frames, for the 720p/1080p clips of
#             $(CATANET_SHARED)/data/video (1 frame each on the CPU): $(B)/fps/results.json
CATANET_MODEL ?= weights/catanet_xs_x2.safetensors
DEMO_CLIP ?= tests/data/flutter_bee_720p.mp4
.PHONY: ffmpeg ffmpeg-new patches demo fps
ffmpeg: $(LIB) $(PLUGIN)
	sh tools/ffmpeg-build.sh $(B) ffmpeg
ffmpeg-new: $(LIB) $(PLUGIN)
	sh tools/ffmpeg-build.sh $(B) ffmpeg-new trixie
patches:
	@test -d $(B)/ffmpeg-src-default || sh tools/ffmpeg-fetch.sh $(B) > /dev/null
	for t in $(B)/ffmpeg-src-*/ffmpeg-[0-9]*/ $(FFMPEG_SOURCE); do sh tools/gen-patches.sh $$t || exit 1; done
# catanet against the official PyTorch model, side by side in one run (tools/bench-official.py):
# CATANET_OFFICIAL=<checkout of github.com/EquationWalker/CATANet> make bench-official. The path
# reaches the script through the environment, never through a shell command line. PYTHON: an
# interpreter with torch (Debian's python3-torch is /usr/bin/python3's).
PYTHON ?= $(if $(wildcard /usr/bin/python3),/usr/bin/python3,python3)
.PHONY: bench-official
bench-official: all
	$(PYTHON) tools/bench-official.py --build $(B)

# regress: fps (end to end and filter alone), PSNR/SSIM and temporal stability of catanet_xs on
# sample clips, compared with a baseline of this machine and device (tools/regress.py; README
# "Regression tests on sample clips"). Variables: BASELINE=file (UPDATE=1 writes it), MODEL=,
# CLIPS=folder or clip, MATCH=regex, FULL=0|1, DEVICES=cpu,cuda, FORCE=1. They reach the tool through
# the environment, never through a shell command line.
.PHONY: regress
regress: export REGRESS_BASELINE = $(BASELINE)
regress: export REGRESS_UPDATE = $(UPDATE)
regress: export REGRESS_MODEL = $(or $(MODEL),$(CATANET_MODEL))
regress: export REGRESS_CLIPS = $(CLIPS)
regress: export REGRESS_MATCH = $(MATCH)
regress: export REGRESS_FULL = $(FULL)
regress: export REGRESS_DEVICES = $(DEVICES)
regress: export REGRESS_FORCE = $(FORCE)
regress: ffmpeg all
	$(PYTHON) tools/regress.py --build $(B)
demo fps: export REGRESS_MODEL = $(or $(MODEL),$(CATANET_MODEL))
demo: export REGRESS_CLIPS = $(DEMO_CLIP)
demo: ffmpeg all
	$(PYTHON) tools/regress.py --build $(B) --out $(B)/demo
fps: export REGRESS_MATCH = (720p|1080p)
fps: export REGRESS_FULL = 1
fps: ffmpeg all
	$(PYTHON) tools/regress.py --build $(B) --out $(B)/fps --frames-cpu 1
# ---- end FFmpeg ----
