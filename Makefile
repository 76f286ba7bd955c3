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

LIB_SRCS := $(wildcard engine/*.c) $(wildcard kernels/cpu/*.c)
ifeq ($(HAVE_CUDA),1)
LIB_SRCS := $(filter-out engine/backend_nocuda.c,$(LIB_SRCS))
CU_SRCS := $(wildcard kernels/cuda/*.cu)
else
LIB_SRCS := $(filter-out engine/backend_cuda.c,$(LIB_SRCS))
CU_SRCS :=
endif
LIB_OBJS := $(LIB_SRCS:%.c=$(B)/%.o) $(CU_SRCS:%.cu=$(B)/%.cu.o)
LIB := $(B)/libcatanet.a
ALL_LIBS = $(LIB) $(LIBS) $(if $(filter 1,$(HAVE_CUDA)),$(CUDA_LIBS) -lstdc++)

# the training module: training/*.c is a library (libcatanet_train.a) plus training/main.c
TRAIN_SRCS := $(filter-out training/main.c,$(wildcard training/*.c))
TRAIN_OBJS := $(TRAIN_SRCS:%.c=$(B)/%.o)
TRAIN_LIB := $(B)/libcatanet_train.a
TRAIN_BIN := $(if $(wildcard training/main.c),$(B)/training/catanet-train)

TOOLS := $(basename $(notdir $(wildcard tools/catanet-*.c)))
TOOL_BINS := $(TOOLS:%=$(B)/tools/%)
TOOL_COMMON := $(B)/tools/imageio.o

TEST_SRCS := $(wildcard tests/test_*.c)
TEST_BINS := $(TEST_SRCS:%.c=$(B)/%)
TEST_COMMON := $(B)/tests/testutil.o $(B)/tools/imageio.o

.PHONY: all check install uninstall clean distclean check-twins

all: $(LIB) $(TRAIN_LIB) $(TRAIN_BIN) $(TOOL_BINS) $(TEST_BINS)

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

$(TRAIN_LIB): $(TRAIN_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(B)/training/catanet-train: $(B)/training/main.o $(TOOL_COMMON) $(TRAIN_LIB) $(LIB)
	$(CC) $(LDFLAGS) $< $(TOOL_COMMON) $(TRAIN_LIB) $(ALL_LIBS) $(PNG_LIBS) $(TRAIN_EXTRA_LIBS) -lpthread -o $@

$(B)/tools/%: $(B)/tools/%.o $(TOOL_COMMON) $(TRAIN_LIB) $(LIB)
	$(CC) $(LDFLAGS) $< $(TOOL_COMMON) $(TRAIN_LIB) $(ALL_LIBS) $(PNG_LIBS) $(TRAIN_EXTRA_LIBS) -lpthread -o $@

$(B)/tests/test_%: $(B)/tests/test_%.o $(TEST_COMMON) $(TRAIN_LIB) $(LIB)
	$(CC) $(LDFLAGS) $< $(TEST_COMMON) $(TRAIN_LIB) $(ALL_LIBS) $(PNG_LIBS) $(TRAIN_EXTRA_LIBS) -lpthread -o $@

# The test suite: every tests/test_*.c binary, then the shell tests; tests/run.sh prints the summary.
check: all
	@sh tests/run.sh $(B)

check-twins:
	@sh tests/check_twins.sh

install: $(LIB)
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig \
		$(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/catanet
	install -m 644 $(LIB) $(DESTDIR)$(PREFIX)/lib/
	install -m 644 include/catanet.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(B)/catanet.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/
	install -m 755 $(TOOL_BINS) $(DESTDIR)$(PREFIX)/bin/
	for f in weights/*.safetensors; do [ -f "$$f" ] && install -m 644 "$$f" $(DESTDIR)$(PREFIX)/share/catanet/; done; true

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/lib/libcatanet.a $(DESTDIR)$(PREFIX)/include/catanet.h \
		$(DESTDIR)$(PREFIX)/lib/pkgconfig/catanet.pc $(TOOLS:%=$(DESTDIR)$(PREFIX)/bin/%)

clean:
	rm -rf $(B)/engine $(B)/kernels $(B)/tools $(B)/tests $(LIB)

distclean:
	rm -rf $(B)

-include $(shell find $(B) -name '*.d' 2>/dev/null)
