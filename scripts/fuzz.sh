#!/bin/sh
# make fuzz: each cargo-fuzz target in turn (one process, niced), seeded
# from fuzz/corpus/<target> (read only, in git) with what it finds kept in
# fuzz/work/<target> (not in git). Crashes land in fuzz/artifacts/<target>.
#
#   FUZZ_SECONDS=60    time per target
#   FUZZ_RUNS=N        stop each target after N executions instead
#   FUZZ_TARGETS="a b" only these (default: every fuzz/fuzz_targets/*.rs)
#   FUZZ_SANITIZER=none  (address for ASan: slower; our code has no unsafe)
#
# An input slower than 10 s counts as a crash (timeout-*).
# Each target's libFuzzer log is fuzz/logs/<target>.log; the last line
# printed per target is its final stats (executions, coverage).
set -eu
cd "$(dirname "$0")/../fuzz"
seconds=${FUZZ_SECONDS:-60}
sanitizer=${FUZZ_SANITIZER:-none}
targets=${FUZZ_TARGETS:-$(ls fuzz_targets | sed -n 's/\.rs$//p')}
if [ -n "${FUZZ_RUNS:-}" ]; then
    limit="-runs=$FUZZ_RUNS"
else
    limit="-max_total_time=$seconds"
fi
mkdir -p logs
status=0
for t in $targets; do
    # Line protocols and codecs: short inputs; whole files and DNS
    # messages: longer.
    case $t in
        mbox) max=16384 ;;
        dns_reply | config | aliases | smtp_client) max=8192 ;;
        *) max=4096 ;;
    esac
    mkdir -p "work/$t" "corpus/$t"
    echo "== $t ($limit, max_len $max)"
    # -jobs=1 -workers=1: one fuzzing process, its output in fuzz-0.log.
    if (cd logs && nice -n 10 cargo +nightly fuzz run --fuzz-dir .. -a -s "$sanitizer" \
        "$t" "../work/$t" "../corpus/$t" -- \
        $limit -max_len=$max -timeout=10 -jobs=1 -workers=1 -print_final_stats=1 \
        >/dev/null 2>&1); then
        :
    else
        status=1
    fi
    mv logs/fuzz-0.log "logs/$t.log" 2>/dev/null || true
    grep -E "stat::number_of_executed_units|Done [0-9]+ runs|ERROR|panicked" "logs/$t.log" | tail -3 || true
done
exit $status
