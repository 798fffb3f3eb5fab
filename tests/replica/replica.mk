# tests/replica/replica.mk - the long replication test, -included by the Makefile.
#
#   make test-long           every long test (this file adds the replication one)
#   make test-long-replica   tests/cli/test_replica.sh with REPLICA_LONG=1: 1 M events appended
#                            while `replicate` runs, a NATS node and `replicate` killed -9 and
#                            restarted, `follow` killed -9 20 times (-O2 build)
#
# The short version (about 46 k events, 5 follow kills) runs in `make test` with both builds.

.PHONY: test-long test-long-replica
test-long: test-long-replica

test-long-replica: all
	REPLICA_LONG=1 ACCRUE=build/accrue bash tests/cli/test_replica.sh
