#!/usr/bin/env bash
# Profiles the KES server with `perf` while kes-bench drives keep-alive `generate` requests, and
# prints where the server's CPU time goes, grouped (kernel/TCP, TLS record crypto, HTTP, JSON,
# KES sealing, allocation, runtime, ...) and per symbol.
#
# Usage: crates/kes-bench/profile.sh [OUT_DIR] [OP]
#   OUT_DIR  where perf.data and the reports go (default: target/kes-bench/profile)
#   OP       generate (default) or decrypt
#
# Needs `perf` (Debian: linux-perf) and permission to profile another process (root, or
# kernel.perf_event_paranoid <= 1). Builds the release binaries first. Everything runs on
# loopback and stops by itself (the benchmark phase is bounded to 20 s).
set -euo pipefail
cd "$(dirname "$0")/../.."

out="${1:-target/kes-bench/profile}"
op="${2:-generate}"
mkdir -p "$out"
target="${CARGO_TARGET_DIR:-target}"

cargo build --release -p kes -p kes-bench >&2
bench="$target/release/kes-bench"
kes="$target/release/kes"

# `ops` runs generate first, then decrypt; a long measured window leaves room to attach perf.
log="$out/kes-bench.log"
"$bench" --kes "$kes" --only ops --measure 20 --out "$out" >"$log" 2>&1 &
bench_pid=$!
trap 'kill "$bench_pid" 2>/dev/null || true' EXIT

pid=""
for _ in $(seq 1 100); do
  pid="$(sed -n 's/^kes server (pid \([0-9]*\)).*/\1/p' "$log" | head -n 1)"
  [ -n "$pid" ] && break
  sleep 0.1
done
[ -n "$pid" ] || { echo "profile.sh: the server did not start; see $log" >&2; exit 1; }

if [ "$op" = decrypt ]; then
  # Wait for the generate phase (1 s warm-up + 20 s) to end and the decrypt phase to warm up.
  sleep 23
else
  sleep 3
fi
perf record -F 1999 -g -p "$pid" -o "$out/perf.data" -- sleep 10 >&2 2>"$out/perf-record.log"
wait "$bench_pid" || true
trap - EXIT

perf report -i "$out/perf.data" --no-children --sort symbol --stdio -g none \
  --percent-limit 0 2>/dev/null >"$out/symbols.txt"

# Sum the self time of every symbol into a group.
awk '
  /^ *[0-9.]+%/ {
    pct = $1; sub(/%/, "", pct)
    kind = $2
    sym = $0; sub(/^ *[0-9.]+% +\[[^]]*\] +/, "", sym)
    g = "other"
    if (kind == "[k]") {
      if (sym ~ /tcp|skb|sock|ip_|__dev_|net_|loopback|inet|nf_|sk_|dst_/) g = "kernel: TCP/IP over loopback"
      else if (sym ~ /epoll|ep_poll|ep_|eventpoll/) g = "kernel: epoll"
      else if (sym ~ /futex|schedule|switch|wake|enqueue|dequeue|pick_|update_curr|sched|idle|hrtimer/) g = "kernel: scheduling, futex, timers"
      else if (sym ~ /copy_|memcpy|memset|clear_user/) g = "kernel: copies to/from user"
      else g = "kernel: syscall entry/exit, other"
    }
    else if (sym ~ /aws_lc.*(aes|gcm|ghash|gfmul|gmult|chacha|poly1305)/) g = "TLS record encryption (aws-lc AES-GCM)"
    else if (sym ~ /aws_lc|ring_core/) g = "TLS other crypto (aws-lc)"
    else if (sym ~ /rustls/) g = "TLS framing (rustls)"
    else if (sym ~ /aes::|aes_gcm|ghash|polyval|chacha20|poly1305|aead::/) g = "KES sealing (RustCrypto AES-GCM / ChaCha20)"
    else if (sym ~ /sha2::|hmac::|digest::|sha256/) g = "KES key derivation (HMAC-SHA256)"
    else if (sym ~ /hyper|httparse|http::|h2::/) g = "HTTP (hyper, httparse)"
    else if (sym ~ /serde|kes_api|base64|itoa|ryu/) g = "JSON and base64"
    else if (sym ~ /malloc|free|realloc|calloc|_int_|cfree|tcache|arena/) g = "allocation (glibc malloc)"
    else if (sym ~ /memcpy|memmove|memset|memcmp|bcmp|strlen/) g = "memcpy/memset (libc)"
    else if (sym ~ /tokio|mio::/) g = "async runtime (tokio, mio)"
    else if (sym ~ /getrandom|getentropy/) g = "getrandom"
    else if (sym ~ /zeroize/) g = "zeroize"
    else if (sym ~ /kes_server|kes_keystore|kes_policy|kes_crypto|parking_lot|arc_swap|percent_encoding/) g = "KES server logic (routing, cache, policy)"
    else if (sym ~ /pthread|__lll|syscall|__libc|_IO_|write|read|recv|send|epoll_wait/) g = "libc syscall wrappers"
    total[g] += pct
  }
  END { for (g in total) printf "%6.2f%%  %s\n", total[g], g }
' "$out/symbols.txt" | sort -rn >"$out/groups.txt"

echo "== server CPU by group ($op, keep-alive, 16 connections)"
cat "$out/groups.txt"
echo
echo "== top 40 symbols (self time)"
grep -E '^ *[0-9.]+%' "$out/symbols.txt" | head -n 40
echo
grep -E "^$op " "$log" || true
echo "full reports: $out/symbols.txt, $out/groups.txt; perf data: $out/perf.data"
