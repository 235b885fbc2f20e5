# projections: CQRS read models maintained from event streams inside PostgreSQL
EXTENSION = projections
MODULE_big = projections
OBJS = src/projections.o src/settings.o src/registry.o src/keys.o src/handler.o src/shmem.o \
	src/launcher.o src/worker.o src/catalog.o src/apply.o src/inline.o src/events.o \
	src/rebuild.o src/api.o src/wait.o src/utility.o
DATA = $(wildcard projections--*.sql)
PG_CPPFLAGS = -I$(srcdir)/src

# pg_regress: the SQL surface (sql/, expected/), on a temporary preloaded server
REGRESS = setup $(filter-out setup,$(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql))))
REGRESS_OPTS = --temp-instance=tmp_check_regress --temp-config=$(srcdir)/test/regress.conf

# isolation specs: concurrency (test/isolation)
ISOLATION = $(patsubst test/isolation/specs/%.spec,%,$(sort $(wildcard test/isolation/specs/*.spec)))
ISOLATION_OPTS = --temp-instance=tmp_check_iso --temp-config=$(srcdir)/test/regress.conf \
	--inputdir=$(srcdir)/test/isolation --outputdir=output_iso

# Perl TAP: restarts, crashes, replicas (test/t)
TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl

EXTRA_CLEAN = tmp_check tmp_check_regress tmp_check_iso output_iso $(EXTENSION)-*.zip

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# the TAP tests' shared module
PROVE_FLAGS += -I $(srcdir)/test/perl

# every object depends on the headers (internal: not installed)
$(OBJS): $(wildcard $(srcdir)/src/*.h)

# pgTAP: behavioural unit tests (test/pgtap), through pg_prove on a throwaway cluster
.PHONY: pgtapcheck
pgtapcheck:
	$(srcdir)/test/pgtap.sh

.PHONY: regresscheck isolationcheck tapcheck
regresscheck:
	$(pg_regress_installcheck) $(REGRESS_OPTS) $(REGRESS)
isolationcheck:
	$(pg_isolation_regress_installcheck) $(ISOLATION_OPTS) $(ISOLATION)
tapcheck:
	$(prove_installcheck)

# PGXN: $(EXTENSION)-VERSION.zip of the committed tree (git archive, so it
# works from a clean clone and holds nothing that is not committed), VERSION
# from the committed META.json; scripts/pgxn_meta.py validates it
DIST_VERSION = $(shell cd $(srcdir) && git show HEAD:META.json 2>/dev/null | \
	perl -MJSON::PP -0777 -ne 'print decode_json($$_)->{version}')
.PHONY: dist
dist:
	@test -n "$(DIST_VERSION)" || \
		{ echo "make dist: no version in the committed META.json (not a git clone?)" >&2; exit 1; }
	cd $(srcdir) && git archive --format=zip --prefix=$(EXTENSION)-$(DIST_VERSION)/ \
		-o $(CURDIR)/$(EXTENSION)-$(DIST_VERSION).zip HEAD
