# coder_health: build with PGXS against the PostgreSQL named by PG_CONFIG.
#
#   make                 build the extension
#   make install         install it into that PostgreSQL (as root)
#   make demo            install what is missing, build, start a throwaway
#                        cluster, run a Coder-shaped workload, show the views
#   make demo-stop       stop and remove the demo cluster
#   make test            install what is missing, build with -Werror, run every
#                        suite against real servers; ends "N passed, N failed"
#   make test-matrix     the same suites on PostgreSQL 13, 17 and 18, each in a
#                        cached Debian root (test/matrix.sh; root only)
#   make bench           overhead / accuracy benchmarks (ratios, not pass/fail)
#   make soak            10-minute soak under the Coder workload (SOAK_SECONDS),
#                        then the regression suite under valgrind memcheck

EXTENSION    = coder_health
MODULE_big   = coder_health
EXTVERSION   = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" coder_health.control)
# src/coder_health.c (the entry point: _PG_init and the module list, the
# only file naming the features), src/core (loading, shared memory,
# collector, persistence, history, status), src/pg (PostgreSQL version shims), src/lib (plain C,
# unit-tested alone) and one folder per feature; see docs/architecture.md.
OBJS         = $(patsubst %.c,%.o,$(wildcard src/*.c src/*/*.c))
PG_CPPFLAGS += -I$(srcdir)/src
# The install script is assembled from one fragment per feature
# (sql/install/NN_feature.sql), in name order.
DATA_built   = sql/coder_health--$(EXTVERSION).sql
INSTALL_SQL  = $(sort $(wildcard sql/install/*.sql))
# Install scripts of released versions, kept as they were, and the update
# scripts between versions (ALTER EXTENSION coder_health UPDATE)
DATA         = $(wildcard sql/released/*.sql) $(wildcard sql/update/*.sql)
PGFILEDESC   = "coder_health - health of the PostgreSQL behind Coder"

# pg_regress tests (sql/*.sql, expected/*.out), in the order of
# test/regress/schedule; they need a server with coder_health preloaded:
# test/run.sh starts one (test/regress/regress.conf).
REGRESS_OPTS = --temp-config=test/regress/regress.conf --schedule=test/regress/schedule

PG_CONFIG   ?= pg_config

# Warnings that matter.  PostgreSQL's own headers are not clean under
# -Wextra's unused-parameter and missing-field-initializers checks, so those two
# are left out; everything else is on, and WERROR=1 (used by make test and CI)
# turns warnings into errors.
PG_CFLAGS   += -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers \
               -Wno-sign-compare -DCODER_HEALTH_VERSION='"$(EXTVERSION)"'
ifeq ($(WERROR),1)
PG_CFLAGS   += -Werror
endif
SHLIB_LINK  += -lm

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS knows no header dependencies: every object is rebuilt when any of
# our headers changes (a stale object with an old struct layout in shared
# memory is a crash, not a warning).
$(OBJS): $(wildcard src/*.h src/*/*.h)

$(DATA_built): $(INSTALL_SQL) coder_health.control
	cat $(INSTALL_SQL) > $@

.PHONY: demo demo-stop test test-matrix bench format lint workload soak

demo:
	bash scripts/demo.sh

demo-stop:
	bash scripts/demo.sh --stop

test:
	bash test/run.sh

test-matrix:
	bash test/matrix.sh

bench:
	bash bench/run.sh

soak:
	bash test/soak.sh

workload:
	$(MAKE) -C workload PG_CONFIG=$(PG_CONFIG)

format:
	clang-format -i src/*.c src/*/*.c src/*/*.h workload/*.c workload/coderd/*.[ch] test/unit/*.c

lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
		--inline-suppr --suppress=missingIncludeSystem \
		-I src -I $(shell $(PG_CONFIG) --includedir-server) src/lib/sketch.c src/lib/sketch_quantile.c test/unit/*.c
