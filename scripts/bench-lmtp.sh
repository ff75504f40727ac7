#!/usr/bin/env bash
# Benchmark smtpd as an LMTP front end beside Postfix, in the same run, into
# the same Dovecot LMTP server (dovecot-lmtpd): N messages of SIZE bytes sent
# by Postfix's smtp-source over SESSIONS parallel sessions to one local
# recipient, accepted and queued (fsync) by the front end, then handed over
# LMTP to Dovecot, which writes them into the recipient's Maildir. Reports
# the time until all N are in the Maildir, and the ratio.
#
#   scripts/bench-lmtp.sh [N] [SIZE] [SESSIONS]      (defaults 5000 10240 20)
#
# smtpd: mail_location = lmtp:127.0.0.1:PORT (the queue's LMTP workers, one
# connection per batch). Postfix: virtual_transport = lmtp:inet:127.0.0.1:PORT
# (Dovecot's own recommended setup, with Postfix's connection cache).
# ROUNDS (default 3) alternate between the two; the median of each is kept.
# ONLY=classicd or ONLY=postfix runs one side; KEEP=1 keeps the directory.
#
# Needs root (a private Postfix instance and Dovecot), postfix, smtp-source
# and dovecot-lmtpd. Everything lives in a throwaway directory.
set -euo pipefail

N=${1:-5000}
SIZE=${2:-10240}
SESSIONS=${3:-20}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${CLASSICD_BIN:-$ROOT/target/release}
SMTPD=$BIN/smtpd
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT_C=$(free_port)
PORT_P=$(free_port)
PORT_D=$(free_port)
DELIVERY_TIMEOUT=${DELIVERY_TIMEOUT:-600}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-500}
declare -A TIMES

die() { echo "bench-lmtp: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (private Postfix and Dovecot instances)"
command -v smtp-source >/dev/null || die "smtp-source missing (apt-get install postfix)"
command -v postfix >/dev/null || die "postfix missing (apt-get install postfix)"
[ -x /usr/lib/dovecot/lmtp ] || die "Dovecot's LMTP missing (apt-get install dovecot-lmtpd)"
[ -x "$SMTPD" ] || die "$SMTPD not built (make)"

W=$(mktemp -d "${BENCH_DIR:-/var/tmp}/bench-lmtp.XXXXXX")
chmod 755 "$W"
NOBODY_UID=$(id -u nobody)
NOBODY_GID=$(getent group nogroup | cut -d: -f3)
SMTPD_PID= DOVECOT_PID=
cleanup() {
    [ -n "$SMTPD_PID" ] && kill "$SMTPD_PID" 2>/dev/null && wait "$SMTPD_PID" 2>/dev/null
    postfix -c "$W/postfix/etc" stop >/dev/null 2>&1 || true
    [ -n "$DOVECOT_PID" ] && kill "$DOVECOT_PID" 2>/dev/null && wait "$DOVECOT_PID" 2>/dev/null
    sleep 1
    [ -n "${KEEP:-}" ] || rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
# The recipient's messages: Dovecot writes new/ (cur/ once seen).
count() { { find "$W/home/bench/Maildir/new" "$W/home/bench/Maildir/cur" -maxdepth 1 -type f 2>/dev/null || true; } | wc -l; }

median() {
    printf '%s\n' "$@" | sed 's/^timeout$/999999/' | sort -g | awk '{v[NR]=$1} END {
        m = v[int(NR/2)+1]
        if (m >= 999999) print "timeout"; else print m }'
}

# --- the back end: Dovecot's LMTP on the bench account's Maildir ------------
mkdir -p "$W/home/bench" "$W/dovecot/run" "$W/trash"
chown "$NOBODY_UID:$NOBODY_GID" "$W/home/bench"
echo "bench:*:$NOBODY_UID:$NOBODY_GID:bench:$W/home/bench:/bin/sh" >"$W/passwd"
cat >"$W/dovecot/dovecot.conf" <<EOF
base_dir = $W/dovecot/run
state_dir = $W/dovecot/state
log_path = $W/dovecot/dovecot.log
protocols = lmtp
listen = 127.0.0.1
ssl = no
first_valid_uid = 1
mail_location = maildir:~/Maildir
auth_username_format = %Ln
passdb {
  driver = passwd-file
  args = $W/passwd
}
userdb {
  driver = passwd-file
  args = $W/passwd
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $PORT_D
  }
}
EOF
dovecot -F -c "$W/dovecot/dovecot.conf" >"$W/dovecot/stdout" 2>&1 &
DOVECOT_PID=$!

# --- classicd smtpd, mailboxes behind LMTP ---------------------------------
C=$W/classicd
mkdir -p "$C/queue"
: >"$C/aliases"
"$SMTPD" -F -o "listen=127.0.0.1:$PORT_C" -o log=stderr -o "passwd_file=$W/passwd" \
    -o "queue_dir=$C/queue" -o "aliases_file=$C/aliases" -o hostname=bench.test \
    -o local_domains=bench.test -o max_sessions=400 -o max_per_ip=400 \
    -o "mail_location=lmtp:127.0.0.1:$PORT_D" >"$C/smtpd.log" 2>&1 &
SMTPD_PID=$!

# --- Postfix, mailboxes behind LMTP ----------------------------------------
P=$W/postfix
mkdir -p "$P/etc" "$P/spool" "$P/data"
chown postfix "$P/data"
sed -e "s/^smtp \{1,\}inet .*/127.0.0.1:$PORT_P inet n - n - - smtpd/" /etc/postfix/master.cf |
    awk '/^[a-z0-9]/ && NF >= 8 && $5 == "y" { $5 = "n" } { print }' >"$P/etc/master.cf"
echo "bench@bench.test ok" >"$P/etc/vmailbox"
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
virtual_mailbox_maps = texthash:$P/etc/vmailbox
virtual_transport = lmtp:inet:127.0.0.1:$PORT_D
maillog_file = $P/maillog
maillog_file_prefixes = $P
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
EOF
postfix -c "$P/etc" start >"$W/postfix-start.log" 2>&1 \
    || { cat "$W/postfix-start.log" "$P/maillog" 2>/dev/null; die "postfix did not start"; }

sleep 0.5
kill -0 "$SMTPD_PID" 2>/dev/null || { cat "$C/smtpd.log"; die "smtpd did not start"; }
kill -0 "$DOVECOT_PID" 2>/dev/null || { cat "$W/dovecot/stdout"; die "dovecot did not start"; }
for port in "$PORT_C" "$PORT_P" "$PORT_D"; do
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
done

# run NAME PORT COUNT: smtp-source, then wait until the Maildir has COUNT
# more messages; prints the seconds from the first connection.
run() {
    local name=$1 port=$2 n=$3 before t0 t1 deadline accept_s deliver_s
    # Each run starts from an empty mailbox (Dovecot makes it again at the
    # first delivery): otherwise later rounds deliver into a Maildir of
    # tens of thousands of files, and whoever runs later pays for it. The
    # old one is moved aside, not removed, until the end: on ext4 without a
    # journal (this machine's) every new inode is found by scanning past
    # each inode freed in the last minute or more of its group, so 5,000
    # files removed here would slow whichever server runs next.
    [ -d "$W/home/bench/Maildir" ] && mv "$W/home/bench/Maildir" "$W/trash/$(date +%s%N)"
    # And with the disk quiet: what the last run (and that rm) left dirty
    # is written back now, not during this run.
    sync
    sleep 1
    before=$(count)
    t0=$(now)
    smtp-source -s "$SESSIONS" -m "$n" -l "$SIZE" -f sender@client.test \
        -t bench@bench.test "127.0.0.1:$port" >"$W/$name-source.log" 2>&1 \
        || { cat "$W/$name-source.log"; die "$name: smtp-source failed"; }
    t1=$(now)
    accept_s=$(echo "$t1 - $t0" | bc -l)
    deadline=$(( $(date +%s) + DELIVERY_TIMEOUT ))
    while [ "$(count)" -lt $((before + n)) ]; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "timeout"
            return
        fi
        sleep 0.05
    done
    deliver_s=$(echo "$(now) - $t0" | bc -l)
    printf '%-10s accepted in %6.2f s, all %d in the Maildir after %6.2f s (%4.0f msg/s)\n' \
        "$name" "$accept_s" "$n" "$deliver_s" "$(echo "$n / $deliver_s" | bc -l)" >&2
    echo "$deliver_s"
}

echo "$N messages of $SIZE bytes, $SESSIONS sessions, into Dovecot's LMTP; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$WARMUP" -gt 0 ]; then
    run classicd "$PORT_C" "$WARMUP" >/dev/null
    run postfix "$PORT_P" "$WARMUP" >/dev/null
    echo "(warm-up: $WARMUP messages through each, not counted)"
fi
for round in $(seq "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then order="classicd postfix"; else order="postfix classicd"; fi
    for name in $order; do
        [ -n "${ONLY:-}" ] && [ "$ONLY" != "$name" ] && continue
        port=$PORT_C
        [ "$name" = postfix ] && port=$PORT_P
        t=$(run "$name" "$port" "$N")
        [ "$t" = timeout ] && { echo "$name: not all delivered after $DELIVERY_TIMEOUT s"; tail -5 "$C/smtpd.log"; }
        TIMES[$name]="${TIMES[$name]:-} $t"
    done
done
echo "load at the end: $(cut -d" " -f1-3 /proc/loadavg)"
# shellcheck disable=SC2086
c=$(median ${TIMES[classicd]})
# shellcheck disable=SC2086
p=$(median ${TIMES[postfix]})
echo "median of $ROUNDS rounds: classicd $c s, Postfix $p s"
if [ "$c" != timeout ] && [ "$p" != timeout ]; then
    printf 'ratio (Postfix time / classicd time): %.2fx (target >= 1.5x)\n' "$(echo "$p / $c" | bc -l)"
fi
