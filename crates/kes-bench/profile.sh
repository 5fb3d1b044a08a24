#!/usr/bin/env bash
# Profiles the KES server with `perf` while kes-bench drives keep-alive `generate` requests, and
# prints where the server's CPU time goes, grouped (kernel/TCP, TLS record crypto, HTTP, JSON,
# KES sealing, allocation, runtime, ...) and per symbol.
#
# Usage: crates/kes-bench/profile.sh [OUT_DIR] [WHAT]
#   OUT_DIR  where perf.data and the reports go (default: target/kes-bench/profile)
#   WHAT     generate (default) or decrypt: keep-alive requests on 16 connections;
#            full or resumed: a new connection per generate request, full or resumed TLS
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

# `ops` runs generate first, then decrypt; `handshake` runs full, then resumed. Each phase is
# measured for 20 s, which leaves room to attach perf for 10 s.
case "$op" in
  generate) group=ops; delay=3; phase="generate " ;;
  decrypt) group=ops; delay=26; phase="decrypt " ;;
  full) group=handshake; delay=3; phase="new conn/req, full" ;;
  resumed) group=handshake; delay=26; phase="new conn/req, resumed" ;;
  *) echo "profile.sh: WHAT is generate, decrypt, full or resumed" >&2; exit 2 ;;
esac
# REPORT_ONLY=1 only redoes the report from an earlier perf.data in OUT_DIR.
if [ "${REPORT_ONLY:-}" != 1 ]; then
# Two builds, so that each binary gets only its own dependencies' features (as `kes-bench`
# itself builds the server).
cargo build --release -p kes >&2
cargo build --release -p kes-bench >&2
bench="$target/release/kes-bench"
kes="$target/release/kes"

log="$out/kes-bench.log"
"$bench" --kes "$kes" --only "$group" --measure 20 --out "$out" >"$log" 2>&1 &
bench_pid=$!
trap 'kill "$bench_pid" 2>/dev/null || true' EXIT

pid=""
for _ in $(seq 1 100); do
  pid="$(sed -n 's/^kes server (pid \([0-9]*\)).*/\1/p' "$log" | head -n 1)"
  [ -n "$pid" ] && break
  sleep 0.1
done
[ -n "$pid" ] || { echo "profile.sh: the server did not start; see $log" >&2; exit 1; }

# Let the phase warm up (or the phase before it end), then sample the server for 10 s.
sleep "$delay"
# DWARF call graphs: the release binary has no frame pointers, but its unwind tables suffice.
perf record -F 499 --call-graph dwarf,32768 -p "$pid" -o "$out/perf.data" -- sleep 10 \
  >"$out/perf-record.log" 2>&1
# The rest of the run is not needed; the server dies with the benchmark.
kill "$bench_pid" 2>/dev/null || true
wait "$bench_pid" 2>/dev/null || true
trap - EXIT
fi

perf report -i "$out/perf.data" --no-children --sort symbol --stdio -g none \
  --percent-limit 0 2>/dev/null >"$out/symbols.txt"
perf report -i "$out/perf.data" --children --sort symbol --stdio -g none \
  --percent-limit 0.5 2>/dev/null >"$out/inclusive.txt"

# Sum the self time of every symbol into a group. On loopback the sender's write also runs the
# receiver's TCP input path (softirq) and wakes the receiving thread, so "TCP/IP" includes the
# delivery of replies to the load generator.
awk '
  /^ *[0-9.]+%/ {
    pct = $1; sub(/%/, "", pct)
    kind = $2
    sym = $0; sub(/^ *[0-9.]+% +\[[^]]*\] +/, "", sym); sub(/ +-.*$/, "", sym)
    g = "other"
    if (kind == "[k]") {
      if (sym ~ /crng|chacha|get_random|urandom|getrandom/) g = "getrandom (kernel)"
      else if (sym ~ /^(finish_task_switch|__schedule|schedule|pick_|put_prev|set_next|enqueue|dequeue|update_|try_to_wake|ttwu|select_task|psi_|__switch_to|switch_mm|native_sched|sched_|resched|check_preempt|_raw_spin_unlock_irq$)/) g = "kernel: scheduler (context switches)"
      else if (sym ~ /^(futex|__futex|hrtimer|__hrtimer|timerqueue)/) g = "kernel: futex, timers"
      else if (sym ~ /^(tcp|__tcp|skb|__skb|kfree_skb|consume_skb|sock|__sock|sk_|__sk|ip_|__ip|inet|__inet|__dev|dev_|net_|__netif|netif|napi|__napi|process_backlog|loopback|nf_|dst_|validate_xmit|ipv4|raw_|__local_bh|do_softirq|handle_softirqs|__kfree_skb|lock_sock|release_sock|__release_sock|_raw_spin_unlock_irqrestore|__wake_up|ep_poll_callback|__x64_sys_(sendto|recvfrom|writev|readv))/) g = "kernel: TCP/IP over loopback, incl. waking the peer"
      else if (sym ~ /epoll|ep_/) g = "kernel: epoll"
      else if (sym ~ /copy_|memcpy|memset|clear_user|_copy_to_iter|_copy_from_iter/) g = "kernel: copies to/from user"
      else g = "kernel: syscall entry/exit, vfs, other"
    }
    else if (sym ~ /aws_lc.*(aes|gcm|ghash|gfmul|gmult|chacha|poly1305)|aead_aes_gcm|aes_hw_|aesni_|gcm_/) g = "TLS record encryption (aws-lc AES-GCM)"
    else if (sym ~ /aws_lc.*(sha512|sha384|SHA384|SHA512)/) g = "TLS handshake: SHA-384 (transcript, HKDF; aws-lc nohw on AMD)"
    else if (sym ~ /^L?(curve25519|x25519)|x25519/) g = "TLS handshake: X25519 key exchange"
    else if (sym ~ /^L?edwards25519|ed25519/) g = "TLS handshake: Ed25519 sign and verify"
    else if (sym ~ /aws_lc|ring_core|fiat_/) g = "TLS other crypto (aws-lc: HMAC, tickets, RNG)"
    else if (sym ~ /rustls/) g = "TLS framing (rustls)"
    else if (sym ~ /x509|der_parser|asn1_rs|nom::/) g = "certificate parsing (x509-parser)"
    else if (sym ~ /aes::|aes_gcm|ghash|polyval|chacha20|poly1305|kes_crypto::aead/) g = "KES sealing (RustCrypto AES-GCM / ChaCha20)"
    else if (sym ~ /sha2::|hmac::|digest::|sha256/) g = "HMAC-SHA256 (KES key derivation, hmac)"
    else if (sym ~ /hyper|httparse|http::|h2::|want::/) g = "HTTP (hyper, httparse)"
    else if (sym ~ /serde|kes_api|base64|itoa|ryu/) g = "JSON and base64 (kes-api, serde_json)"
    else if (sym ~ /malloc|free|realloc|calloc|_int_|cfree|tcache|arena|unlink_chunk/) g = "allocation (glibc malloc)"
    else if (sym ~ /memcpy|memmove|memset|memcmp|bcmp|strlen/) g = "memcpy/memset (libc)"
    else if (sym ~ /tokio|mio::/) g = "async runtime (tokio, mio)"
    else if (sym ~ /clock_gettime|vdso/) g = "clock reads (vDSO)"
    else if (sym ~ /getrandom|getentropy/) g = "getrandom (libc)"
    else if (sym ~ /zeroize/) g = "zeroize"
    else if (sym ~ /kes_server|kes_keystore|kes_policy|kes_crypto|parking_lot|arc_swap|percent_encoding|core::|alloc::|std::/) g = "KES server logic, std (routing, cache, policy)"
    else if (sym ~ /pthread|__lll|syscall|__libc|_IO_|writev|readv|recv|send|epoll_wait|__GI_/) g = "libc syscall wrappers"
    total[g] += pct
  }
  END { for (g in total) printf "%6.2f%%  %s\n", total[g], g }
' "$out/symbols.txt" | sort -rn >"$out/groups.txt"

echo "== server CPU by group ($op, 16 connections)"
cat "$out/groups.txt"
echo
echo "== top 40 symbols (self time)"
grep -E '^ *[0-9.]+%' "$out/symbols.txt" | sed 's/ *- *- *$//' | head -n 40
echo
echo "== top 60 user-space frames (inclusive time: the frame and everything it called)"
grep -E '^ *[0-9.]+%' "$out/inclusive.txt" | grep -F '[.]' | sed 's/ *- *- *$//' | cut -c1-180 \
  | head -n 60
echo
grep -F "$phase" "$out/kes-bench.log" || true
echo "full reports: $out/groups.txt, $out/symbols.txt, $out/inclusive.txt; perf data: $out/perf.data"
