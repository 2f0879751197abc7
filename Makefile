# Makefile - convenience targets around the CMake build.
#
#   make                     configure and build into $(BUILD)
#   make demo                install dependencies, build, run scripts/demo.sh
#   make check               install dependencies, build, run the tests
#   make check-asan          the same tests in $(BUILD)-asan with ASan/UBSan
#   make install PREFIX=DIR  install into DIR (default /usr/local)
#   make fuzz                run scripts/fuzz.sh
#   make bench               build, then run bench/run.sh
#   make deb                 Debian packages into $(DEB_DIR) (scripts/deb.sh)
#   make check-deb           make deb, then check the packages (tests/deb)
#   make clean               remove $(BUILD), $(BUILD)-asan, $(BUILD)-gocache
#                            and build-fuzz
#
# CC selects the compiler: `make CC=clang check`.  A compiler given on the
# command line gets its own build directory (build-clang), since CMake
# cannot switch compilers in a configured tree; BUILD overrides the name.
# CC from the environment is used when a build directory is first made.

ifeq ($(origin CC),command line)
BUILD ?= build-$(notdir $(firstword $(CC)))
else
BUILD ?= build
endif
BUILD_ASAN ?= $(BUILD)-asan
PREFIX ?= /usr/local
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE ?= cmake
CTEST ?= ctest
CMAKE_ARGS ?=
DEB_DIR ?= build-deb
# Both trees build the same vcsim (tests/vsphere) with one Go build cache:
# the second tree only links it.
VCSIM_GOCACHE ?= $(abspath $(BUILD))-gocache

# The CMake-generated makefiles run their own make: keep this make's flags
# and command-line variables (CC=..., PREFIX=...) out of it.
RUN_CMAKE = env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL $(CMAKE)
RUN_CTEST = env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL $(CTEST)

.PHONY: all build build-asan deps demo check check-asan install fuzz bench clean
.PHONY: deps-deb deb check-deb

all: build

# Configure once per build directory (CC is read only then); later builds
# re-run CMake by themselves when a CMakeLists.txt changes.
$(BUILD)/CMakeCache.txt:
	CC="$(CC)" $(RUN_CMAKE) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
	    -DVCSIM_GOCACHE=$(VCSIM_GOCACHE) $(CMAKE_ARGS)

$(BUILD_ASAN)/CMakeCache.txt:
	CC="$(CC)" $(RUN_CMAKE) -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug \
	    -DOPENVDDK_SANITIZE=ON -DVCSIM_GOCACHE=$(VCSIM_GOCACHE) $(CMAKE_ARGS)

build: $(BUILD)/CMakeCache.txt
	$(RUN_CMAKE) --build $(BUILD) --parallel $(JOBS)

build-asan: $(BUILD_ASAN)/CMakeCache.txt
	$(RUN_CMAKE) --build $(BUILD_ASAN) --parallel $(JOBS)

deps:
	sh scripts/deps.sh

# deps runs before the build: spell the order out for `make -j`.
demo: deps
	$(MAKE) build
	VDDK="$(abspath $(BUILD))/tools/vddk/vddk" sh scripts/demo.sh

check: deps
	$(MAKE) build
	cd $(BUILD) && $(RUN_CTEST) --output-on-failure -j2

check-asan: deps
	$(MAKE) build-asan
	cd $(BUILD_ASAN) && $(RUN_CTEST) --output-on-failure -j2

install: build
	DESTDIR="$(DESTDIR)" $(RUN_CMAKE) --install $(BUILD) --prefix "$(PREFIX)"

fuzz:
	sh scripts/fuzz.sh

bench: build
	BUILD="$(BUILD)" sh bench/run.sh

deps-deb:
	sh scripts/deps.sh deb

# Built in a temporary copy of the tree with dpkg-buildpackage, -j2.
deb: deps-deb
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL JOBS=$(JOBS) sh scripts/deb.sh $(DEB_DIR)

check-deb: deb
	sh tests/deb/check_deb.sh $(DEB_DIR)

# Only the directories these targets make (run `make clean CC=clang` for
# the clang ones); other build-* directories are left alone.
clean:
	rm -rf -- $(BUILD) $(BUILD_ASAN) $(VCSIM_GOCACHE) build-fuzz $(DEB_DIR)
