#!/usr/bin/env bash
# Benchmark smtpd side by side with Postfix, in the same run, both driven by
# Postfix's smtp-source: N messages of SIZE bytes over SESSIONS parallel
# sessions (one message per connection, smtp-source's default) to one local
# Maildir recipient. Reports the messages/second accepted (smtp-source's run
# time) and the time until all N are in the recipient's Maildir/new.
#
#   scripts/bench-smtpd.sh [N] [SIZE] [SESSIONS]      (defaults 5000 10240 20)
#
# ROUNDS (default 3) runs alternate between the two servers and the median
# of each is kept, so that a noisy neighbour on the machine skews both alike
# and one lucky round does not decide; the last lines give the ratios.
#
# On ext4 without a journal (this project's machines) a new file skips
# inodes freed in the last minutes, which gets slow after thousands of
# deletions: Postfix's own queue files, or a previous run's clean-up. Runs
# vary with that; the rounds move each Maildir aside rather than delete it.
#
# Needs root (Postfix's own instance, run as its postfix user), postfix and
# smtp-source (Debian: apt-get install postfix). Uses target/release/smtpd
# or $CLASSICD_BIN/smtpd. Everything lives in a throwaway directory.
# Same durability on both sides: every 250 after DATA follows an fsync.
set -euo pipefail

N=${1:-5000}
SIZE=${2:-10240}
SESSIONS=${3:-20}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${CLASSICD_BIN:-$ROOT/target/release}
SMTPD=$BIN/smtpd
# Free ports unless given (several people may bench on one machine).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT_C=${PORT_C:-$(free_port)}
PORT_P=${PORT_P:-$(free_port)}
DELIVERY_TIMEOUT=${DELIVERY_TIMEOUT:-300}
# ONLY=classicd or ONLY=postfix runs one side.
ONLY=${ONLY:-}
ROUNDS=${ROUNDS:-3}
# An untimed round of this many messages on each server first: a machine
# that was idle runs the first seconds of load slowly.
WARMUP=${WARMUP:-1000}
declare -A ACCEPTS DELIVERS

die() { echo "bench-smtpd: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (a private Postfix instance)"
command -v smtp-source >/dev/null || die "smtp-source missing (apt-get install postfix)"
command -v postfix >/dev/null || die "postfix missing (apt-get install postfix)"
[ -x "$SMTPD" ] || die "$SMTPD not built (make)"

W=$(mktemp -d "${BENCH_DIR:-/var/tmp}/bench-smtpd.XXXXXX")
chmod 755 "$W"
NOBODY_UID=$(id -u nobody)
NOBODY_GID=$(getent group nogroup | cut -d: -f3)
SMTPD_PID=
cleanup() {
    [ -n "$SMTPD_PID" ] && kill "$SMTPD_PID" 2>/dev/null && wait "$SMTPD_PID" 2>/dev/null
    postfix -c "$W/postfix/etc" stop >/dev/null 2>&1 || true
    sleep 1
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

count_new() { find "$1" -maxdepth 1 -type f 2>/dev/null | wc -l; }
now() { date +%s.%N; }

# wait_all DIR START: seconds from START until N files are in DIR
wait_all() {
    local dir=$1 start=$2 deadline=$(( $(date +%s) + DELIVERY_TIMEOUT ))
    while [ "$(count_new "$dir")" -lt "$N" ]; do
        [ "$(date +%s)" -lt "$deadline" ] || { echo "timeout"; return; }
        sleep 0.05
    done
    echo "$(now) - $start" | bc -l
}

# median TIMES...: the middle one; of an even count the slower middle one
# ("timeout" counts as the longest)
median() {
    printf '%s\n' "$@" | sed 's/^timeout$/999999/' | sort -g | awk '{v[NR]=$1} END {
        m = v[int(NR/2)+1]
        if (m >= 999999) print "timeout"; else print m }'
}

# run NAME PORT MAILDIR_NEW: smtp-source, then wait for delivery
run() {
    local name=$1 port=$2 new=$3 t0 t1 accept_s deliver_s
    # The last round's mail is moved aside, not deleted: on ext4 without a
    # journal, freshly freed inodes make new files slow to create for ~30 s.
    [ -d "$new" ] && mv "$(dirname "$new")" "$(dirname "$new").$(date +%s%N)"
    t0=$(now)
    smtp-source -s "$SESSIONS" -m "$N" -l "$SIZE" -f sender@client.test \
        -t bench@bench.test "127.0.0.1:$port" >"$W/$name-source.log" 2>&1 \
        || { cat "$W/$name-source.log"; die "$name: smtp-source failed"; }
    t1=$(now)
    accept_s=$(echo "$t1 - $t0" | bc -l)
    printf '%-10s %8.0f msg/s accepted (%.2f s)' "$name" "$(echo "$N / $accept_s" | bc -l)" "$accept_s"
    deliver_s=$(wait_all "$new" "$t0")
    if [ "$deliver_s" = timeout ]; then
        printf '   only %d of %d in new/ after %d s\n' "$(count_new "$new")" "$N" "$DELIVERY_TIMEOUT"
        [ "$name" = classicd ] && tail -5 "$C/smtpd.log"
    else
        printf '   all %d in new/ after %.2f s\n' "$N" "$deliver_s"
    fi
    ACCEPTS[$name]="${ACCEPTS[$name]:-} $accept_s"
    DELIVERS[$name]="${DELIVERS[$name]:-} $deliver_s"
}

# --- classicd smtpd -------------------------------------------------------
C=$W/classicd
mkdir -p "$C/home/bench" "$C/queue"
chown "$NOBODY_UID:$NOBODY_GID" "$C/home/bench"
echo "bench:*:$NOBODY_UID:$NOBODY_GID:bench:$C/home/bench:/bin/sh" >"$C/passwd"
: >"$C/aliases"
"$SMTPD" -F -o "listen=127.0.0.1:$PORT_C" -o log=stderr -o "passwd_file=$C/passwd" \
    -o "queue_dir=$C/queue" -o "aliases_file=$C/aliases" -o hostname=bench.test \
    -o local_domains=bench.test -o max_sessions=400 -o max_per_ip=400 \
    -o "mail_location=maildir:~/Maildir" >"$C/smtpd.log" 2>&1 &
SMTPD_PID=$!

# --- Postfix --------------------------------------------------------------
P=$W/postfix
mkdir -p "$P/etc" "$P/spool" "$P/data" "$P/mail"
chown postfix "$P/data"
chown "$NOBODY_UID:$NOBODY_GID" "$P/mail"
# Postfix's own master.cf, with smtpd on our port and no chroot (the
# instance lives outside the Debian chroot setup).
sed -e "s/^smtp \{1,\}inet .*/127.0.0.1:$PORT_P inet n - n - - smtpd/" /etc/postfix/master.cf |
    awk '/^[a-z0-9]/ && NF >= 8 && $5 == "y" { $5 = "n" } { print }' >"$P/etc/master.cf"
echo "bench@bench.test bench/Maildir/" >"$P/etc/vmailbox"
cat >"$P/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $P/spool
data_directory = $P/data
mail_owner = postfix
setgid_group = postdrop
myhostname = pf.bench.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
virtual_mailbox_domains = bench.test
virtual_mailbox_base = $P/mail
virtual_mailbox_maps = texthash:$P/etc/vmailbox
virtual_uid_maps = static:$NOBODY_UID
virtual_gid_maps = static:$NOBODY_GID
maillog_file = $P/maillog
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
anvil_rate_time_unit = 60s
EOF
postfix -c "$P/etc" start >"$W/postfix-start.log" 2>&1 \
    || { cat "$W/postfix-start.log" "$P/maillog" 2>/dev/null; die "postfix did not start"; }

sleep 0.5
kill -0 "$SMTPD_PID" 2>/dev/null || { cat "$C/smtpd.log"; die "smtpd did not start"; }
for port in "$PORT_C" "$PORT_P"; do
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
done

echo "$N messages of $SIZE bytes, $SESSIONS sessions, one local Maildir recipient; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$WARMUP" -gt 0 ]; then
    for name in classicd postfix; do
        [ -n "$ONLY" ] && [ "$ONLY" != "$name" ] && continue
        port=$PORT_C new=$C/home/bench/Maildir/new
        [ "$name" = postfix ] && port=$PORT_P new=$P/mail/bench/Maildir/new
        smtp-source -s "$SESSIONS" -m "$WARMUP" -l "$SIZE" -f sender@client.test \
            -t bench@bench.test "127.0.0.1:$port" >/dev/null 2>&1 || die "$name: warm-up failed"
        for _ in $(seq 600); do
            [ "$(count_new "$new")" -ge "$WARMUP" ] && break
            sleep 0.1
        done
    done
    echo "(warm-up: $WARMUP messages to each, not counted)"
fi
for round in $(seq "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then order="classicd postfix"; else order="postfix classicd"; fi
    for name in $order; do
        case $name in
        classicd) [ "$ONLY" = postfix ] || run classicd "$PORT_C" "$C/home/bench/Maildir/new" ;;
        postfix) [ "$ONLY" = classicd ] || run postfix "$PORT_P" "$P/mail/bench/Maildir/new" ;;
        esac
    done
done
echo "load at the end: $(cut -d" " -f1-3 /proc/loadavg)"
if [ -z "$ONLY" ]; then
    declare -A ACCEPT DELIVER
    for name in classicd postfix; do
        # shellcheck disable=SC2086
        ACCEPT[$name]=$(median ${ACCEPTS[$name]})
        # shellcheck disable=SC2086
        DELIVER[$name]=$(median ${DELIVERS[$name]})
    done
    echo "median of $ROUNDS rounds:"
    for name in classicd postfix; do
        printf '  %-10s %8.0f msg/s accepted   all in new/ after %s s\n' "$name" \
            "$(echo "$N / ${ACCEPT[$name]}" | bc -l)" "${DELIVER[$name]}"
    done
    if [ "${DELIVER[classicd]}" != timeout ] && [ "${DELIVER[postfix]}" != timeout ]; then
        printf 'ratios (classicd / Postfix): accepted %.2fx (target >= 2.5x); delivery time %.2f (target <= 0.5)\n' \
            "$(echo "${ACCEPT[postfix]} / ${ACCEPT[classicd]}" | bc -l)" \
            "$(echo "${DELIVER[classicd]} / ${DELIVER[postfix]}" | bc -l)"
    fi
fi
