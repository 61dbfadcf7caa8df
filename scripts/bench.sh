#!/usr/bin/env bash
# certgate speed check (DESIGN.md §4b). Not part of the test suite.
#
# Builds the shipped profile (release-lto), starts on loopback (free ports, one temp dir,
# all stopped on exit):
#   - certgate (its own CA, an mTLS listener, one user alice and one allow rule),
#   - nginx "main" (worker_processes 1) with three server blocks:
#       (a) auth_request -> certgate /verify  (upstream keepalive 32)
#       (b) auth_request -> stub              (the same location and upstream settings)
#       (c) no auth at all
#     protected content from root/try_files, never `return`; plus an mTLS server
#     (ssl_verify_client on) with certgate's server certificate and CA,
#   - nginx "stub" (its own master, worker_processes 1): `return 200` with the same
#     Remote-* headers certgate sends, so its CPU can be read from /proc like certgate's.
# Then asserts (a) refuses a request without the cookie and allows with it (and a bearer token
# from /token, refusing a forged one), and measures:
#   - wrk -t1 -c$CONNS -d$DURATION --latency, $ROUNDS interleaved rounds of a,b,e,f,c,d:
#     (a) and (b) with the session cookie, (e) = (a) and (f) = (b) with the bearer token in
#     Authorization instead (the stub gets the same request as certgate, so its nginx reads and
#     parses the same header), (d) = certgate /verify direct: requests/s, p50, p99, median
#     ratios a/b and e/f;
#   - CPU µs per check (utime+stime deltas from /proc/PID/stat over the same load /
#     requests): certgate in (a) and (e) vs the stub nginx (master + worker) in (b) and (f);
#   - mTLS handshakes/s: openssl s_time -new with the same client cert, certgate vs nginx
#     (not quite like for like: nginx verifies the client chain in the handshake, certgate
#     checks possession there and verifies the chain per request);
#   - CPU per /verify with 100 forged session-cookie values as a ratio to one forged value;
#   - revocations per second: $REVOKES sequential `certgate revoke --jti` runs (a process each:
#     load, open the database, commit with fsync) as a ratio to as many `certgate --version`
#     runs (process start alone, the floor); $REVOKES POST /admin/revoke with alice's
#     certificate through curl (one call per process, sequential, then $REVOKE_PARALLEL at once)
#     as a ratio to the same calls to GET /healthz (the same handshake, no write);
#   - OpenID Connect code exchanges per second on one worker (each signs an RS256 ID token)
#     as a ratio to RSA-2048 signatures per second on one core (openssl speed);
#   - certgate VmRSS idle, and with $REVOKED (1,000,000) revoked jtis in data_dir/certgate.db
#     (random 16-byte ids, as certgate mints them, written into the table by Python's sqlite3):
#     bytes per revoked jti from the RSS growth; then start-to-ready with those revocations: a
#     second certgate ("replica") on the same data_dir, from its start until /readyz answers
#     200 (it has read every row), median of $ROUNDS; with BASELINE_CG=/path/to/another/certgate,
#     that binary too, interleaved;
#
#   - /verify with [oidc] configured vs without: certgate /verify direct on a twin certgate
#     (the same configuration and data_dir plus an [oidc] section and client) against the
#     first one, $PAIR_ROUNDS interleaved rounds (the order alternating), median ratio;
#   - Redis (redis-server, no persistence) used_memory empty, with $HISTORY (200,000)
#     revocations in certgate's stream (1 in 200 live), and after a certgate with
#     store.backend = "redis" compacted them (the stream trimmed to its mark, the snapshot
#     holding the live ones): the share left, and bytes per live revocation;
#   - only with SECTIONS=baseline and BASELINE_CG: /verify direct on this build and on
#     BASELINE_CG (a twin on the same data_dir), cookie and bearer, $PAIR_ROUNDS rounds:
#     CPU per request as this build's / the baseline's.
# Missed targets print MISSED but do not fail; broken setup or a missing refusal exits non-zero.
#
# Environment: DURATION (5s), CONNS (16), ROUNDS (3), HS_TIME (3, seconds per s_time run),
# NGINX_WORKERS (1, main nginx), REVOKES (200, revocations per way of revoking),
# REVOKE_PARALLEL (4), EXCHANGES (15000, OIDC codes fetched before each 3 s round of
# exchanges), EXCHANGE_VIA (http: the plain listener, as behind a proxy; mtls), PAIR_ROUNDS (5,
# rounds of the [oidc]-vs-not /verify pair),
# BENCH_CRITERION=1 to also run `cargo bench --bench verify`, CERTGATE (a certgate binary to
# measure instead of building target/release-lto/certgate).
# SECTIONS (all): which measurements to run, comma-separated, of load (a-f), forged,
# handshakes, revocations, oidc (code exchanges), verify-oidc (the pair above), memory, redis,
# baseline (not in all); e.g.
# SECTIONS=oidc,verify-oidc scripts/bench.sh. The checks and the setup always run.
# REVOKED (1000000, revoked jtis for memory), BASELINE_CG (unset; see memory above):
# SECTIONS=memory BASELINE_CG=/tmp/old-certgate scripts/bench.sh takes about 20 s.
set -euo pipefail

DURATION=${DURATION:-5s}
CONNS=${CONNS:-16}
ROUNDS=${ROUNDS:-3}
HS_TIME=${HS_TIME:-3}
NGINX_WORKERS=${NGINX_WORKERS:-1}
REVOKES=${REVOKES:-200}
REVOKE_PARALLEL=${REVOKE_PARALLEL:-4}
EXCHANGES=${EXCHANGES:-15000}
PAIR_ROUNDS=${PAIR_ROUNDS:-5}
SECTIONS=${SECTIONS:-all}
SECTIONS=" ${SECTIONS//,/ } "
REVOKED=${REVOKED:-1000000}
BASELINE_CG=${BASELINE_CG:-}
HISTORY=${HISTORY:-200000}
HOST=app.example.com

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

die() {
	echo "bench.sh: $*" >&2
	exit 1
}
for tool in cargo nginx wrk openssl curl awk ss; do
	command -v "$tool" >/dev/null || die "$tool not found (wrk: apt-get install wrk)"
done
[[ $ROUNDS -ge 3 ]] || die "ROUNDS must be at least 3"
[[ $PAIR_ROUNDS -ge 3 ]] || die "PAIR_ROUNDS must be at least 3"
for section in $SECTIONS; do
	case $section in
	all | load | forged | handshakes | revocations | oidc | verify-oidc | memory | redis) ;;
	baseline) [[ -n $BASELINE_CG ]] || die "SECTIONS=baseline needs BASELINE_CG (another certgate binary)" ;;
	*) die "unknown section '$section' in SECTIONS (all, load, forged, handshakes, revocations, oidc, verify-oidc, memory, redis, baseline)" ;;
	esac
done
want() { [[ $SECTIONS == *" all "* || $SECTIONS == *" $1 "* ]]; } # section: whether to run it
((REVOKES >= REVOKE_PARALLEL && REVOKE_PARALLEL >= 1)) || die "REVOKES must be at least REVOKE_PARALLEL (>= 1)"

# The build the Dockerfile ships (Cargo.toml, [profile.release-lto]), or CERTGATE (another build
# of certgate, e.g. an earlier commit's, to compare with).
if [[ -n ${CERTGATE:-} ]]; then
	CG=$(realpath "$CERTGATE")
	[[ -x $CG ]] || die "CERTGATE=$CERTGATE is not an executable"
	echo "== certgate: $CG"
else
	echo "== cargo build --profile release-lto"
	cargo build --profile release-lto
	CG="$ROOT/target/release-lto/certgate"
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/certgate-bench.XXXXXX")
PIDS=()
cleanup() {
	local status=$?
	local pid
	for pid in "${PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if [[ $status -ne 0 ]]; then
		for log in "$T"/certgate.log "$T"/nginx-*/error.log; do
			[[ -s $log ]] && {
				echo "--- $log (last lines)" >&2
				tail -n 20 "$log" >&2
			}
		done
	fi
	rm -rf "$T"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- free loopback ports ---------------------------------------------------------------
TAKEN=" "
# Below the kernel's ephemeral range where it leaves room (a port a connection took as its
# local port cannot be bound by a server: seen as nginx "bind() ... Address already in use"),
# and never a port any socket uses.
read -r EPHEMERAL_LOW _ </proc/sys/net/ipv4/ip_local_port_range
if ((EPHEMERAL_LOW > 11000)); then
	PORT_LOW=10000 PORT_SPAN=$((EPHEMERAL_LOW - 10000))
else
	PORT_LOW=20000 PORT_SPAN=40000
fi
free_port() { # VAR: a loopback port no socket uses, and not handed out before
	local p
	while :; do
		p=$((PORT_LOW + RANDOM % PORT_SPAN))
		[[ $TAKEN == *" $p "* ]] && continue
		[[ -z $(ss -Htan "sport = :$p") ]] || continue
		TAKEN+="$p "
		printf -v "$1" '%s' "$p"
		return
	done
}
wait_port() { # port name [pid]: until something (with pid: that process) listens on port
	local i
	for ((i = 0; i < 100; i++)); do
		if [[ -n ${3:-} ]]; then
			kill -0 "$3" 2>/dev/null || die "$2 exited before it listened on 127.0.0.1:$1 (another program took the port?)"
			[[ $(ss -Htlnp "sport = :$1") == *"pid=$3,"* ]] && return 0
		else
			[[ -n $(ss -Htln "sport = :$1") ]] && return 0
		fi
		sleep 0.1
	done
	die "$2 is not listening on 127.0.0.1:$1"
}
for v in CG_HTTP CG_MTLS PORT_A PORT_B PORT_C PORT_STUB PORT_NGX_MTLS; do free_port "$v"; done

# --- PKI: certgate's own CA, alice's client certificate, one P-256 server certificate ---
DATA="$T/certgate-data"
PKI="$T/pki"
mkdir -p "$PKI"
"$CG" ca --data-dir "$DATA" init >/dev/null
issued=$("$CG" ca --data-dir "$DATA" issue --user alice --device bench --out "$PKI")
CLIENT_CERT=$(sed -n 's/^ *certificate: *//p' <<<"$issued")
CLIENT_KEY=$(sed -n 's/^ *key: *\([^ ]*\).*/\1/p' <<<"$issued")
[[ -s $CLIENT_CERT && -s $CLIENT_KEY ]] || die "certgate ca issue: no certificate/key in: $issued"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$PKI/server.key" -out "$PKI/server.csr" -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n' >"$PKI/server.ext"
openssl x509 -req -in "$PKI/server.csr" -CA "$DATA/ca.pem" -CAkey "$DATA/ca.key" \
	-CAcreateserial -days 2 -extfile "$PKI/server.ext" -out "$PKI/server.pem" 2>/dev/null

# --- certgate ---------------------------------------------------------------------------
# The configuration of certgate, listening on http-port and mtls-port; its [oidc] twin's differs
# only there (its public_url is certgate's: a session cookie is made for one public_url).
cg_config() { # http-port mtls-port
	cat <<EOF
public_url = "https://localhost:$CG_MTLS"
data_dir = "$DATA"

[listen]
http = "127.0.0.1:$1"
mtls = "127.0.0.1:$2"
metrics = ""

[tls]
cert = "$PKI/server.pem"
key = "$PKI/server.key"

[client_ca]
bundle = "$DATA/ca.pem"

[proxy]
trusted = ["127.0.0.1/32"]
cert_header = "nginx"

[[users]]
name = "alice"
groups = ["family"]

# alice may revoke (POST /admin/revoke, measured below).
[admin]
groups = ["family"]

[[rules]]
host = "$HOST"
groups = ["family"]
action = "allow"
EOF
}
cg_config "$CG_HTTP" "$CG_MTLS" >"$T/certgate.toml"
"$CG" check-config --config "$T/certgate.toml" >/dev/null || die "certgate check-config rejected the generated config"
"$CG" serve --config "$T/certgate.toml" >"$T/certgate.out" 2>"$T/certgate.log" &
CG_PID=$!
PIDS+=("$CG_PID")
wait_port "$CG_HTTP" certgate
wait_port "$CG_MTLS" "certgate mTLS"

# --- nginx instances ----------------------------------------------------------------------
mkdir -p "$T/www"
echo "protected content" >"$T/www/index.html"
chmod 711 "$T" # nginx workers started by root run as nobody: they must reach www/
chmod 755 "$T/www"

start_nginx() { # name workers http-block-text; sets NGX_PID
	local workers=$2 body=$3 p="$T/nginx-$1"
	mkdir -p "$p/tmp"
	cat >"$p/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes $workers;
pid $p/nginx.pid;
error_log $p/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $p/tmp/body;
    proxy_temp_path $p/tmp/proxy;
    fastcgi_temp_path $p/tmp/fastcgi;
    uwsgi_temp_path $p/tmp/uwsgi;
    scgi_temp_path $p/tmp/scgi;
$body
}
EOF
	nginx -t -q -p "$p" -c "$p/nginx.conf" || die "nginx -t rejected $p/nginx.conf"
	nginx -p "$p" -c "$p/nginx.conf" 2>"$p/stderr.log" &
	NGX_PID=$!
	PIDS+=("$NGX_PID")
}

# The auth-request location, the same for certgate and the stub but for the upstream name
# (as config/proxies/nginx.conf wires it).
auth_server() { # port upstream
	cat <<EOF
    server {
        listen 127.0.0.1:$1;
        server_name $HOST;
        root $T/www;
        location = /.certgate/verify {
            internal;
            proxy_pass http://$2/verify;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-SSL-Client-Cert "";
            proxy_set_header X-Original-URL \$scheme://\$host:\$server_port\$request_uri;
            proxy_set_header X-Original-Method \$request_method;
            proxy_set_header X-Forwarded-Method \$request_method;
            proxy_set_header X-Forwarded-For \$remote_addr;
            proxy_set_header X-Forwarded-Proto "";
            proxy_set_header X-Forwarded-Host "";
            proxy_set_header X-Forwarded-Uri "";
            proxy_set_header X-Original-URI "";
        }
        location / {
            auth_request /.certgate/verify;
            auth_request_set \$cg_user \$upstream_http_remote_user;
            auth_request_set \$cg_groups \$upstream_http_remote_groups;
            auth_request_set \$cg_email \$upstream_http_remote_email;
            auth_request_set \$cg_name \$upstream_http_remote_name;
            add_header X-Remote-User \$cg_user;
            try_files \$uri =404;
        }
    }
EOF
}

start_nginx main "$NGINX_WORKERS" "
    upstream certgate { server 127.0.0.1:$CG_HTTP; keepalive 32; }
    upstream stub { server 127.0.0.1:$PORT_STUB; keepalive 32; }
$(auth_server "$PORT_A" certgate)
$(auth_server "$PORT_B" stub)
    server {
        listen 127.0.0.1:$PORT_C;
        server_name $HOST;
        root $T/www;
        location / { try_files \$uri =404; }
    }
    server {
        listen 127.0.0.1:$PORT_NGX_MTLS ssl;
        ssl_certificate $PKI/server.pem;
        ssl_certificate_key $PKI/server.key;
        ssl_client_certificate $DATA/ca.pem;
        ssl_verify_client on;
        root $T/www;
        location / { try_files \$uri =404; }
    }"
MAIN_PID=$NGX_PID
start_nginx stub 1 "
    server {
        listen 127.0.0.1:$PORT_STUB;
        location = /verify {
            add_header Remote-User alice;
            add_header Remote-Groups family;
            add_header Remote-Email \"\";
            add_header Remote-Name alice;
            add_header Cache-Control no-store;
            return 200;
        }
    }"
STUB_PID=$NGX_PID
for port in "$PORT_A" "$PORT_B" "$PORT_C" "$PORT_NGX_MTLS"; do wait_port "$port" "nginx main"; done
wait_port "$PORT_STUB" "nginx stub"
kill -0 "$MAIN_PID" "$STUB_PID" "$CG_PID" 2>/dev/null || die "a server exited at start"

# --- a session cookie from certgate's mTLS /auth ------------------------------------------
login() { # prints the cookie pair name=value
	curl -sS -o /dev/null -D - --cacert "$DATA/ca.pem" --cert "$CLIENT_CERT" --key "$CLIENT_KEY" \
		"https://127.0.0.1:$CG_MTLS/auth" |
		tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: *\([^;]*\).*/\1/p' | head -n 1
}
COOKIE=$(login)
[[ $COOKIE == *=?* ]] || die "no Set-Cookie from https://127.0.0.1:$CG_MTLS/auth"

status() { # url [curl args...]
	local url=$1
	shift
	curl -sS -o /dev/null -w '%{http_code}' -H "Host: $HOST" "$@" "$url"
}
URL_A="http://127.0.0.1:$PORT_A/index.html"
URL_B="http://127.0.0.1:$PORT_B/index.html"
URL_C="http://127.0.0.1:$PORT_C/index.html"
URL_D="http://127.0.0.1:$CG_HTTP/verify"
ORIGINAL="X-Original-URL: http://$HOST:$PORT_A/index.html"

echo "== checks"
s=$(status "$URL_A")
[[ $s == 401 || $s == 403 ]] || die "(a) without the cookie answered $s, expected a refusal (401/403)"
echo "(a) without cookie: $s (refused)"
s=$(status "$URL_A" -H "Cookie: $COOKIE")
[[ $s == 200 ]] || die "(a) with the cookie answered $s, expected 200"
body=$(curl -sS -H "Host: $HOST" -H "Cookie: $COOKIE" "$URL_A")
[[ $body == "protected content" ]] || die "(a) with the cookie did not serve the protected file"
echo "(a) with cookie:    200 (protected file served)"
s=$(status "$URL_B")
[[ $s == 200 ]] || die "(b) answered $s, expected 200"
s=$(status "$URL_C")
[[ $s == 200 ]] || die "(c) answered $s, expected 200"
s=$(status "$URL_D" -H "$ORIGINAL")
[[ $s == 401 ]] || die "(d) without the cookie answered $s, expected 401"
s=$(status "$URL_D" -H "$ORIGINAL" -H "Cookie: $COOKIE")
[[ $s == 200 ]] || die "(d) with the cookie answered $s, expected 200"
echo "(b) stub 200, (c) no auth 200, (d) direct: 401 without / 200 with cookie"
# A bearer token from /token with alice's certificate, as a script or WebSocket client gets one.
TOKEN=$(curl -sS --cacert "$DATA/ca.pem" --cert "$CLIENT_CERT" --key "$CLIENT_KEY" -X POST \
	"https://127.0.0.1:$CG_MTLS/token" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
[[ -n $TOKEN ]] || die "no access_token from POST https://127.0.0.1:$CG_MTLS/token"
BEARER="Authorization: Bearer $TOKEN"
s=$(status "$URL_A" -H "Authorization: Bearer ${TOKEN%?}x")
[[ $s == 401 ]] || die "(e) with a forged bearer token answered $s, expected 401"
s=$(status "$URL_A" -H "$BEARER")
[[ $s == 200 ]] || die "(e) with the bearer token answered $s, expected 200"
echo "(e) bearer token: 401 forged / 200 real"

# --- measurement helpers ----------------------------------------------------------------
TCK=$(getconf CLK_TCK)
cpu_ticks() { # pid...: utime+stime of each process (all its threads), summed
	local total=0 pid stat
	for pid in "$@"; do
		stat=$(<"/proc/$pid/stat")
		stat=${stat##*) } # fields from 3 (state) on; comm may hold spaces
		read -r -a f <<<"$stat"
		total=$((total + f[11] + f[12]))
	done
	echo "$total"
}
nginx_pids() { # master pid: master and workers
	echo "$1 $(<"/proc/$1/task/$1/children")"
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
us_per() { awk -v t="$1" -v n="$2" -v k="$TCK" 'BEGIN { printf "%.2f", (n > 0) ? t * 1e6 / k / n : 0 }'; }
per_second() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.0f", n / (b - a) }'; } # n t0 t1
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }'; }
now() { date +%s.%N; }

# wrk once; prints "rps p50_ms p99_ms requests"
run_wrk() { # url [header...]
	local url=$1 out
	shift
	local args=(-t1 -c"$CONNS" -d"$DURATION" --latency -H "Host: $HOST")
	local h
	for h in "$@"; do args+=(-H "$h"); done
	out=$(wrk "${args[@]}" "$url") || die "wrk failed on $url"
	if grep -q -E 'Non-2xx|Socket errors' <<<"$out"; then
		echo "$out" >&2
		die "wrk on $url saw errors or non-2xx answers"
	fi
	awk '
		function ms(v) {
			if (v ~ /us$/) return v / 1000
			if (v ~ /ms$/) return v + 0
			if (v ~ /m$/) return v * 60000
			if (v ~ /s$/) return v * 1000
			return v + 0
		}
		$1 == "50%" { p50 = ms($2) }
		$1 == "99%" { p99 = ms($2) }
		$2 == "requests" && $3 == "in" { n = $1 }
		$1 == "Requests/sec:" { rps = $2 }
		END { printf "%.0f %.3f %.3f %d\n", rps, p50, p99, n }' <<<"$out"
}

# Each certgate target beside a stub target that gets the same request (the same credential
# header: the stub's nginx reads and parses it as certgate does), interleaved in pairs.
NAMES=(a b e f c d)
declare -A LABEL=(
	[a]="nginx auth_request -> certgate /verify"
	[b]="nginx auth_request -> nginx stub (floor)"
	[e]="(a) with a bearer token, not the cookie"
	[f]="(b) with the same bearer token"
	[c]="nginx, no auth"
	[d]="certgate /verify direct"
)
run_target() { # name
	case $1 in
	a) run_wrk "$URL_A" "Cookie: $COOKIE" ;;
	b) run_wrk "$URL_B" "Cookie: $COOKIE" ;;
	e) run_wrk "$URL_A" "$BEARER" ;;
	f) run_wrk "$URL_B" "$BEARER" ;;
	c) run_wrk "$URL_C" ;;
	d) run_wrk "$URL_D" "$ORIGINAL" "Cookie: $COOKIE" ;;
	esac
}

RSS_IDLE=$(rss_kib "$CG_PID")

if want load; then
	echo "== load: wrk -t1 -c$CONNS -d$DURATION --latency, $ROUNDS interleaved rounds (after a 1 s warm-up each)"
	for n in "${NAMES[@]}"; do DURATION=1s run_target "$n" >/dev/null; done
	# TICKS/REQS: the CPU ticks of the server measured (certgate in a, e, d; the stub nginx,
	# master and worker, in b, f) and the requests, summed over the rounds.
	declare -A RPS P50 P99 TICKS REQS ROUND
	for n in "${NAMES[@]}"; do TICKS[$n]=0 REQS[$n]=0; done
	declare -A RATIOS CPU_RATIOS # per pair (a/b, e/f): the per-round ratios
	printf '%-5s %-42s %12s %9s %9s\n' round target "requests/s" "p50 ms" "p99 ms"
	for ((r = 1; r <= ROUNDS; r++)); do
		for n in "${NAMES[@]}"; do
			stub_pids=$(nginx_pids "$STUB_PID")
			# shellcheck disable=SC2086
			cg0=$(cpu_ticks "$CG_PID") st0=$(cpu_ticks $stub_pids)
			res=$(run_target "$n")
			read -r rps p50 p99 reqs <<<"$res"
			# shellcheck disable=SC2086
			cg1=$(cpu_ticks "$CG_PID") st1=$(cpu_ticks $stub_pids)
			case $n in
			a | e | d) ticks=$((cg1 - cg0)) ;;
			b | f) ticks=$((st1 - st0)) ;;
			*) ticks=0 ;;
			esac
			TICKS[$n]=$((TICKS[$n] + ticks)) REQS[$n]=$((REQS[$n] + reqs)) ROUND[$n]="$ticks $reqs $rps"
			RPS[$n]+="$rps " P50[$n]+="$p50 " P99[$n]+="$p99 "
			printf '%-5s %-42s %12s %9s %9s\n' "$r" "(${n}) ${LABEL[$n]}" "$rps" "$p50" "$p99"
		done
		for pair in a/b e/f; do
			RATIOS[$pair]+="$(awk -v a="${ROUND[${pair%/*}]}" -v b="${ROUND[${pair#*/}]}" 'BEGIN { split(a, x, " "); split(b, y, " "); printf "%.3f", x[3] / y[3] }') "
			CPU_RATIOS[$pair]+="$(awk -v a="${ROUND[${pair%/*}]}" -v b="${ROUND[${pair#*/}]}" 'BEGIN { split(a, x, " "); split(b, y, " "); printf "%.2f", (y[1] > 0 && x[2] > 0) ? (x[1] / x[2]) / (y[1] / y[2]) : 999 }') "
		done
	done

	echo "== medians over $ROUNDS rounds"
	printf '%-46s %12s %9s %9s\n' target "requests/s" "p50 ms" "p99 ms"
	declare -A MED_P99 US
	for n in "${NAMES[@]}"; do
		# shellcheck disable=SC2086
		MED_P99[$n]=$(median ${P99[$n]})
		# shellcheck disable=SC2086
		printf '%-46s %12s %9s %9s\n' "(${n}) ${LABEL[$n]}" "$(median ${RPS[$n]})" "$(median ${P50[$n]})" "${MED_P99[$n]}"
		US[$n]=$(us_per "${TICKS[$n]}" "${REQS[$n]}")
	done
	# The machine's noise moves both sides between rounds: the per-round ratios show the spread.
	declare -A RATIO CPU_RATIO P99_RATIO
	for pair in a/b e/f; do
		x=${pair%/*} y=${pair#*/}
		# shellcheck disable=SC2086
		RATIO[$pair]=$(median ${RATIOS[$pair]})
		CPU_RATIO[$pair]=$(awk -v a="${US[$x]}" -v b="${US[$y]}" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 999 }')
		P99_RATIO[$pair]=$(ratio "${MED_P99[$x]}" "${MED_P99[$y]}")
		echo "($pair) throughput per round: ${RATIOS[$pair]% } median ${RATIO[$pair]}; CPU per check per round: ${CPU_RATIOS[$pair]% }"
		echo "($pair) CPU per check: certgate ${US[$x]} µs (${TICKS[$x]} ticks / ${REQS[$x]} checks), stub nginx ${US[$y]} µs (${TICKS[$y]} ticks / ${REQS[$y]} checks): ${CPU_RATIO[$pair]}x"
	done
	echo "certgate /verify direct (d): ${US[d]} µs per check"
fi

if want forged; then
	# --- forged session cookies ----------------------------------------------------------------
	# Forged values of the session cookie with the real header (typ, kid) and a real signature over
	# other claims: each one costs a signature check. certgate checks at most four values of its
	# cookie (src/http/extract.rs, MAX_SESSION_COOKIES), so 100 cost about what 4 do.
	forged_value() { # n: the real header and signature, a payload of {"n":n}
		local h=${COOKIE#*=} sig
		sig=${h##*.}
		h=${h%%.*}
		printf '%s.%s.%s' "$h" "$(printf '{"n":%d}' "$1" | base64 -w0 | tr '+/' '-_' | tr -d '=')" "$sig"
	}
	FORGED_ONE="Cookie: ${COOKIE%%=*}=$(forged_value 0)"
	FORGED_100="Cookie: "
	for ((i = 0; i < 100; i++)); do FORGED_100+="${COOKIE%%=*}=$(forged_value "$i"); "; done
	[[ $(status "$URL_D" -H "$ORIGINAL" -H "$FORGED_ONE") == 401 ]] || die "a forged cookie was not refused"
	[[ $(status "$URL_D" -H "$ORIGINAL" -H "$FORGED_100") == 401 ]] || die "100 forged cookies were not refused"
	# wrk counts the 401s as non-2xx: read CPU per request, not throughput.
	forged_cpu() { # header: certgate CPU µs per request over one wrk run
		local c0 c1 out n
		c0=$(cpu_ticks "$CG_PID")
		out=$(wrk -t1 -c"$CONNS" -d"$DURATION" -H "$ORIGINAL" -H "$1" "$URL_D") || die "wrk failed (forged cookies)"
		c1=$(cpu_ticks "$CG_PID")
		n=$(awk '$2 == "requests" && $3 == "in" { print $1 }' <<<"$out")
		us_per "$((c1 - c0))" "$n"
	}
	echo "== forged session cookies: certgate /verify direct, CPU µs per request; $ROUNDS interleaved rounds"
	FORGED_RATIOS=()
	for ((r = 1; r <= ROUNDS; r++)); do
		one=$(forged_cpu "$FORGED_ONE")
		hundred=$(forged_cpu "$FORGED_100")
		FORGED_RATIOS+=("$(awk -v a="$hundred" -v b="$one" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 999 }')")
		echo "round $r: one forged value $one µs, 100 forged values $hundred µs"
	done
	FORGED_RATIO=$(median "${FORGED_RATIOS[@]}")
	echo "100 forged values / one, per round: ${FORGED_RATIOS[*]}  median ${FORGED_RATIO}x"
fi

if want handshakes; then
	# --- mTLS handshakes ------------------------------------------------------------------------
	handshakes() { # port: handshakes per wall-clock second of one s_time run
		local t0 t1 out n
		t0=$(date +%s.%N)
		out=$(openssl s_time -new -connect "127.0.0.1:$1" -cert "$CLIENT_CERT" -key "$CLIENT_KEY" \
			-time "$HS_TIME" 2>&1 </dev/null) || die "openssl s_time failed on port $1: $out"
		t1=$(date +%s.%N)
		n=$(awk '/connections in .* real seconds/ { print $1 }' <<<"$out" | tail -n 1)
		[[ -n $n && $n -gt 0 ]] || die "openssl s_time made no connection to port $1: $out"
		awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }'
	}
	echo "== mTLS handshakes/s: openssl s_time -new -time $HS_TIME, same server cert (P-256), CA and client cert; $ROUNDS interleaved rounds"
	echo "   (nginx verifies the client chain in the handshake; certgate proves possession there and verifies the chain per request)"
	s=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$DATA/ca.pem" "https://127.0.0.1:$PORT_NGX_MTLS/" 2>/dev/null || true)
	[[ $s == 400 || $s == 000 ]] || die "nginx mTLS answered $s without a client certificate (expected a refusal)"
	s=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$DATA/ca.pem" --cert "$CLIENT_CERT" --key "$CLIENT_KEY" "https://127.0.0.1:$PORT_NGX_MTLS/index.html")
	[[ $s == 200 ]] || die "nginx mTLS answered $s with the client certificate"
	HS_CG=() HS_NGX=()
	for ((r = 1; r <= ROUNDS; r++)); do
		hs=$(handshakes "$CG_MTLS")
		HS_CG+=("$hs")
		hs=$(handshakes "$PORT_NGX_MTLS")
		HS_NGX+=("$hs")
	done
	HS_CG_MED=$(median "${HS_CG[@]}")
	HS_NGX_MED=$(median "${HS_NGX[@]}")
	HS_RATIO=$(awk -v a="$HS_CG_MED" -v b="$HS_NGX_MED" 'BEGIN { printf "%.2f", a / b }')
	echo "certgate: ${HS_CG[*]}  median $HS_CG_MED"
	echo "nginx:    ${HS_NGX[*]}  median $HS_NGX_MED"
	echo "certgate/nginx: $HS_RATIO"
fi

if want revocations; then
	# --- revocations per second ---------------------------------------------------------------------
	# Before the memory section's 1,000,000 rows: `certgate revoke` loads the revocations it extends,
	# and these figures are for a store of everyday size. Every call must succeed, and the database
	# must hold every revocation acknowledged.
	mtls_calls() { # count path [form-prefix]: one curl per call with alice's certificate (an API client:
		# no cookie, no Origin); prints each call's status. The form is the prefix and the call's number.
		local i data=()
		for ((i = 0; i < $1; i++)); do
			[[ -n ${3:-} ]] && data=(--data "$3$i")
			curl -sS -o /dev/null -w '%{http_code}\n' --cacert "$DATA/ca.pem" --cert "$CLIENT_CERT" \
				--key "$CLIENT_KEY" "${data[@]}" "https://127.0.0.1:$CG_MTLS$2" || true
		done
	}
	parallel_calls() { # path [form-prefix]: $REVOKE_PARALLEL mtls_calls loops at once, sharing $REVOKES
		local k pids=()
		for ((k = 0; k < REVOKE_PARALLEL; k++)); do
			mtls_calls "$((REVOKES / REVOKE_PARALLEL))" "$1" "${2:+$2$k-}" >"$T/calls.$k" &
			pids+=($!)
		done
		wait "${pids[@]}"
		cat "$T"/calls.[0-9]*
	}
	all_200() { # what: every status on stdin is 200
		awk '$1 != 200 { bad++ } END { if (NR == 0 || bad) { printf "%d of %d answered otherwise\n", bad, NR; exit 1 } }' ||
			die "$1: not every call answered 200"
	}
	PAR=$((REVOKES / REVOKE_PARALLEL * REVOKE_PARALLEL))
	echo "== revocations/s: $REVOKES per way, one certgate or curl process per revocation; sequential, then $REVOKE_PARALLEL loops at once; data_dir on $(stat -f -c %T "$DATA")"
	t0=$(now)
	for ((i = 0; i < REVOKES; i++)); do "$CG" --version >/dev/null || die "certgate --version failed"; done
	t1=$(now)
	for ((i = 0; i < REVOKES; i++)); do
		"$CG" revoke --config "$T/certgate.toml" --jti "revoke-bench-cli-$i" >/dev/null 2>"$T/revoke.err" ||
			die "certgate revoke failed: $(<"$T/revoke.err")"
	done
	t2=$(now)
	mtls_calls "$REVOKE_PARALLEL" /healthz | all_200 "GET /healthz (warm-up)"
	t3=$(now)
	mtls_calls "$REVOKES" /healthz >"$T/calls.floor"
	t4=$(now)
	mtls_calls "$REVOKES" /admin/revoke "jti=revoke-bench-api-" >"$T/calls.api"
	t5=$(now)
	parallel_calls /healthz >"$T/calls.floor-par"
	t6=$(now)
	parallel_calls /admin/revoke "jti=revoke-bench-par-" >"$T/calls.api-par"
	t7=$(now)
	all_200 "GET /healthz" <"$T/calls.floor"
	all_200 "POST /admin/revoke" <"$T/calls.api"
	all_200 "GET /healthz, $REVOKE_PARALLEL at once" <"$T/calls.floor-par"
	all_200 "POST /admin/revoke, $REVOKE_PARALLEL at once" <"$T/calls.api-par"
	stored=$(python3 - "$DATA/certgate.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True, timeout=10)
print(db.execute("""SELECT count(*) FROM revocations WHERE entry LIKE '%"id":"revoke-bench-%'""").fetchone()[0])
PY
	) || die "cannot read $DATA/certgate.db"
	((stored == 2 * REVOKES + PAR)) || die "$((2 * REVOKES + PAR)) revocations acknowledged, $stored in $DATA/certgate.db"
	CLI_FLOOR=$(per_second "$REVOKES" "$t0" "$t1") CLI_RPS=$(per_second "$REVOKES" "$t1" "$t2")
	API_FLOOR=$(per_second "$REVOKES" "$t3" "$t4") API_RPS=$(per_second "$REVOKES" "$t4" "$t5")
	PAR_FLOOR=$(per_second "$PAR" "$t5" "$t6") PAR_RPS=$(per_second "$PAR" "$t6" "$t7")
	printf '%-52s %10s %9s %6s\n' "way (floor)" "revoked/s" "floor/s" ratio
	printf '%-52s %10s %9s %6s\n' "certgate revoke (certgate --version)" "$CLI_RPS" "$CLI_FLOOR" "$(ratio "$CLI_RPS" "$CLI_FLOOR")"
	printf '%-52s %10s %9s %6s\n' "POST /admin/revoke, curl (GET /healthz, same cert)" "$API_RPS" "$API_FLOOR" "$(ratio "$API_RPS" "$API_FLOOR")"
	printf '%-52s %10s %9s %6s\n' "the same, $REVOKE_PARALLEL at once" "$PAR_RPS" "$PAR_FLOOR" "$(ratio "$PAR_RPS" "$PAR_FLOOR")"
fi

if want oidc; then
	# --- OpenID Connect code exchanges --------------------------------------------------------------
	# Each of $ROUNDS rounds starts a certgate of its own (a new data_dir: the codes a round leaves
	# unredeemed, and the minute's pruning of them, never weigh on the next) with one worker (one
	# core's worth) and an [oidc] client; fetches $EXCHANGES codes with alice's certificate (one
	# curl process, one connection; a code lives at most 60 s); redeems them through wrk at
	# /oidc/token for 3 s, each request its own code, each answer an RS256 ID token; stops that
	# certgate and lets openssl speed sign with RSA-2048 for 3 s on one core: an exchange signs
	# one ID token. The exchanges go to the plain listener, as an app's do behind the proxy (the
	# proxy terminates TLS: its handshakes are the proxy's cost, not certgate's);
	# EXCHANGE_VIA=mtls sends them to the mTLS listener instead, which answers each request with
	# `Connection: close` (src/http/front.rs), so every exchange is a TLS handshake there too.
	# openssl speed divides by its CPU (user) time; the target's figure divides the exchanges by
	# certgate's CPU time (all its threads, /proc) likewise.
	echo "== OIDC code exchanges/s on one worker (via the ${EXCHANGE_VIA:-http} listener) vs RSA-2048 signatures/s on one core (openssl speed); $ROUNDS rounds"
	OIDC_SECRET=bench-client-secret-0123456789
	OIDC_BASIC=$(printf 'bench:%s' "$OIDC_SECRET" | base64 -w0)
	cat >"$T/exchange.lua" <<LUA
local codes, n = {}, 0
for line in io.lines("$T/codes") do codes[#codes + 1] = line end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $OIDC_BASIC"
request = function()
	n = n + 1
	local code = codes[n] or "spent"
	return wrk.format(nil, "/oidc/token", nil,
		"grant_type=authorization_code&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb&code=" .. code)
end
LUA
	start_oidc() { # round: a certgate with [oidc] and a new data_dir; sets OIDC_PID, OIDC_MTLS, OIDC_HTTP
		local dir="$T/oidc-data-$1"
		free_port OIDC_HTTP
		free_port OIDC_MTLS
		mkdir -p "$dir"
		cat >"$T/oidc.toml" <<TOML
public_url = "https://localhost:$OIDC_MTLS"
data_dir = "$dir"
[listen]
http = "127.0.0.1:$OIDC_HTTP"
mtls = "127.0.0.1:$OIDC_MTLS"
metrics = ""
workers = 1
[tls]
cert = "$PKI/server.pem"
key = "$PKI/server.key"
[client_ca]
bundle = "$DATA/ca.pem"
[[users]]
name = "alice"
groups = ["family"]
[oidc]
[[oidc.clients]]
id = "bench"
secret = "$OIDC_SECRET"
redirect_uris = ["https://app.example.com/cb"]
scopes = ["openid", "profile"]
TOML
		"$CG" serve --config "$T/oidc.toml" >"$T/oidc.out" 2>"$T/oidc.log" &
		OIDC_PID=$!
		PIDS+=("$OIDC_PID")
		wait_port "$OIDC_MTLS" "certgate (OIDC)" "$OIDC_PID"
	}
	fetch_codes() { # $EXCHANGES fresh codes into $T/codes
		local authz="https://localhost:$OIDC_MTLS/oidc/authorize?response_type=code&client_id=bench&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb&scope=openid%20profile&state=s"
		for ((i = 0; i < EXCHANGES; i++)); do printf 'url = "%s"\noutput = "/dev/null"\n' "$authz"; done >"$T/authorize.curl"
		curl -sS --cacert "$DATA/ca.pem" --cert "$CLIENT_CERT" --key "$CLIENT_KEY" -w '%{redirect_url}\n' -K "$T/authorize.curl" |
			sed -n 's/.*[?&]code=\([^&]*\).*/\1/p' >"$T/codes"
		(($(wc -l <"$T/codes") == EXCHANGES)) || die "got $(wc -l <"$T/codes") codes of $EXCHANGES from /oidc/authorize: $(tail -3 "$T/oidc.log")"
	}
	# A fixed time, fewer requests than codes: each answer is a real exchange (a code past the last
	# would be refused, and is caught below).
	EX_RPS=() EX_CPU=() RSA_SIGNS=() EX_RATIOS=() EX_CPU_RATIOS=()
	printf '%-5s %12s %16s %14s %7s %11s %14s\n' round "exchanges/s" "per CPU-second" "RSA signs/s" ratio "CPU ratio" "wrk CPU/wall"
	for ((r = 1; r <= ROUNDS; r++)); do
		start_oidc "$r"
		fetch_codes
		c0=$(cpu_ticks "$OIDC_PID")
		ex_url="http://127.0.0.1:$OIDC_HTTP"
		[[ ${EXCHANGE_VIA:-http} == mtls ]] && ex_url="https://localhost:$OIDC_MTLS"
		wrk -t1 -c4 -d3s -s "$T/exchange.lua" "$ex_url" >"$T/exchange.out" 2>&1 &
		wrk_pid=$!
		wrk_cpu=0
		while kill -0 "$wrk_pid" 2>/dev/null; do # its CPU, last read just before it ends
			wrk_cpu=$(cpu_ticks "$wrk_pid" 2>/dev/null || echo "$wrk_cpu")
			sleep 0.2
		done
		wait "$wrk_pid" || die "wrk: $(cat "$T/exchange.out")"
		c1=$(cpu_ticks "$OIDC_PID")
		kill -TERM "$OIDC_PID" 2>/dev/null || true
		wait "$OIDC_PID" 2>/dev/null || true
		read -r EX_SENT EX_SECS < <(awk '/requests in/ { sub(/s,?$/, "", $4); print $1, $4 }' "$T/exchange.out")
		EX_FAILED=$(awk '/Non-2xx/ { print $NF }' "$T/exchange.out")
		((EX_SENT <= EXCHANGES)) || die "wrk sent $EX_SENT exchanges but only $EXCHANGES codes were fetched: raise EXCHANGES"
		((${EX_FAILED:-0} == 0)) || die "$EX_FAILED of $EX_SENT code exchanges failed: $(cat "$T/exchange.out"; tail -3 "$T/oidc.log")"
		rps=$(awk -v n="$EX_SENT" -v s="$EX_SECS" 'BEGIN { printf "%.0f", n / s }')
		per_cpu=$(awk -v n="$EX_SENT" -v t="$((c1 - c0))" -v k="$TCK" 'BEGIN { printf "%.0f", (t > 0) ? n * k / t : 0 }')
		wrk_share=$(awk -v t="$wrk_cpu" -v k="$TCK" -v s="$EX_SECS" 'BEGIN { printf "%.2f", t / k / s }')
		rsa=$(openssl speed -seconds 3 rsa2048 2>/dev/null | awk '/^rsa +2048/ { printf "%.0f", $(NF - 1) }')
		[[ -n $rsa ]] || die "openssl speed rsa2048 printed no rate"
		EX_RPS+=("$rps") EX_CPU+=("$per_cpu") RSA_SIGNS+=("$rsa")
		EX_RATIOS+=("$(ratio "$rps" "$rsa")") EX_CPU_RATIOS+=("$(ratio "$per_cpu" "$rsa")")
		printf '%-5s %12s %16s %14s %7s %11s %14s\n' "$r" "$rps" "$per_cpu" "$rsa" "${EX_RATIOS[r - 1]}" "${EX_CPU_RATIOS[r - 1]}" "$wrk_share"
	done
	EXCHANGE_RPS=$(median "${EX_RPS[@]}") EXCHANGE_CPU=$(median "${EX_CPU[@]}") RSA_SIGN=$(median "${RSA_SIGNS[@]}")
	EXCHANGE_RATIO=$(median "${EX_RATIOS[@]}") EXCHANGE_CPU_RATIO=$(median "${EX_CPU_RATIOS[@]}")
	echo "medians: code exchanges/s $EXCHANGE_RPS (wrk -c4, one worker), per certgate CPU-second $EXCHANGE_CPU; RSA-2048 signs/s $RSA_SIGN"
	echo "exchanges / RSA signs per round: ${EX_RATIOS[*]}  median $EXCHANGE_RATIO; per CPU-second: ${EX_CPU_RATIOS[*]}  median $EXCHANGE_CPU_RATIO"
fi

if want verify-oidc; then
	# --- /verify with [oidc] configured vs without ----------------------------------------------
	# A twin of certgate: the same configuration and data_dir (so the same session cookie) plus
	# an [oidc] section with one client, on its own ports, with its background work (the grant
	# sweep, the back-channel logout queue). certgate /verify direct on each, in pairs whose
	# order alternates between rounds; the twin is stopped afterwards.
	echo "== /verify with [oidc] configured vs without: certgate /verify direct, wrk -t1 -c$CONNS -d$DURATION, $PAIR_ROUNDS rounds"
	free_port TWIN_HTTP
	free_port TWIN_MTLS
	{
		cg_config "$TWIN_HTTP" "$TWIN_MTLS"
		printf '\n[oidc]\n[[oidc.clients]]\nid = "app"\nsecret = "bench-client-secret-0123456789"\n'
		printf 'redirect_uris = ["https://app.example.com/cb"]\nscopes = ["openid", "profile"]\n'
	} >"$T/twin.toml"
	"$CG" check-config --config "$T/twin.toml" >/dev/null || die "certgate check-config rejected the [oidc] twin's config"
	"$CG" serve --config "$T/twin.toml" >"$T/twin.out" 2>"$T/twin.log" &
	TWIN_PID=$!
	PIDS+=("$TWIN_PID")
	wait_port "$TWIN_HTTP" "certgate ([oidc] twin)" "$TWIN_PID"
	URL_TWIN="http://127.0.0.1:$TWIN_HTTP/verify"
	s=$(status "$URL_TWIN" -H "$ORIGINAL" -H "Cookie: $COOKIE")
	[[ $s == 200 ]] || die "the [oidc] twin's /verify answered $s with the cookie, expected 200"
	s=$(status "http://127.0.0.1:$TWIN_HTTP/.well-known/openid-configuration")
	[[ $s == 200 ]] || die "the [oidc] twin answered $s at discovery: is [oidc] configured?"
	s=$(status "http://127.0.0.1:$CG_HTTP/.well-known/openid-configuration")
	[[ $s == 404 ]] || die "certgate answered $s at discovery: [oidc] should not be configured"
	run_pair() { # which: wrk on /verify of certgate (plain) or its twin (oidc); prints requests/s
		# and the server's CPU µs per request
		local url=$URL_D pid=$CG_PID rps reqs c0 c1 _
		[[ $1 == oidc ]] && url=$URL_TWIN pid=$TWIN_PID
		c0=$(cpu_ticks "$pid")
		read -r rps _ _ reqs < <(run_wrk "$url" "$ORIGINAL" "Cookie: $COOKIE")
		c1=$(cpu_ticks "$pid")
		echo "$rps $(us_per "$((c1 - c0))" "$reqs")"
	}
	DURATION=1s run_pair plain >/dev/null
	DURATION=1s run_pair oidc >/dev/null
	PAIR_RATIOS=() PAIR_PLAIN=() PAIR_OIDC=() PAIR_CPU_RATIOS=()
	# The machine's other load moves throughput from one run to the next; CPU µs per request,
	# read from /proc like the checks' above, moves less: shown beside it.
	printf '%-5s %16s %16s %7s %20s %20s %9s\n' round "without req/s" "[oidc] req/s" ratio "without µs/request" "[oidc] µs/request" "CPU ratio"
	for ((r = 1; r <= PAIR_ROUNDS; r++)); do
		if ((r % 2)); then
			read -r plain plain_us < <(run_pair plain)
			read -r oidc oidc_us < <(run_pair oidc)
		else
			read -r oidc oidc_us < <(run_pair oidc)
			read -r plain plain_us < <(run_pair plain)
		fi
		PAIR_PLAIN+=("$plain") PAIR_OIDC+=("$oidc")
		PAIR_RATIOS+=("$(awk -v a="$oidc" -v b="$plain" 'BEGIN { printf "%.3f", (b > 0) ? a / b : 0 }')")
		# Like the throughput ratio, above 1 when [oidc] costs less: without's CPU / [oidc]'s.
		PAIR_CPU_RATIOS+=("$(awk -v a="$plain_us" -v b="$oidc_us" 'BEGIN { printf "%.3f", (b > 0) ? a / b : 0 }')")
		printf '%-5s %16s %16s %7s %20s %20s %9s\n' "$r" "$plain" "$oidc" "${PAIR_RATIOS[r - 1]}" "$plain_us" "$oidc_us" "${PAIR_CPU_RATIOS[r - 1]}"
	done
	PAIR_RATIO=$(median "${PAIR_RATIOS[@]}") PAIR_CPU_RATIO=$(median "${PAIR_CPU_RATIOS[@]}")
	echo "[oidc]/without per round: ${PAIR_RATIOS[*]}  median $PAIR_RATIO (medians $(median "${PAIR_OIDC[@]}") vs $(median "${PAIR_PLAIN[@]}") req/s)"
	echo "CPU per request, without/[oidc] per round: ${PAIR_CPU_RATIOS[*]}  median $PAIR_CPU_RATIO"
	kill -TERM "$TWIN_PID" 2>/dev/null || true
	wait "$TWIN_PID" 2>/dev/null || true
fi

# Not part of "all": only with BASELINE_CG.
if [[ $SECTIONS == *" baseline "* ]]; then
	# --- /verify of this build vs BASELINE_CG ----------------------------------------------------
	# The other binary as a twin on the same configuration and data_dir (the same keys, so the
	# same cookie and bearer token), on its own ports; certgate /verify direct on each with the
	# cookie, then with the bearer token, in pairs whose order alternates between rounds. CPU per
	# request read from /proc as above: what a change to the check's code costs or saves.
	echo "== /verify, this build vs $BASELINE_CG: direct, wrk -t1 -c$CONNS -d$DURATION, $PAIR_ROUNDS rounds"
	free_port BASE_HTTP
	free_port BASE_MTLS
	cg_config "$BASE_HTTP" "$BASE_MTLS" >"$T/base.toml"
	"$BASELINE_CG" serve --config "$T/base.toml" >"$T/base.out" 2>"$T/base.log" &
	BASE_PID=$!
	PIDS+=("$BASE_PID")
	wait_port "$BASE_HTTP" "certgate (baseline)" "$BASE_PID"
	URL_BASE="http://127.0.0.1:$BASE_HTTP/verify"
	for h in "Cookie: $COOKIE" "$BEARER"; do
		[[ $(status "$URL_BASE" -H "$ORIGINAL" -H "$h") == 200 ]] || die "the baseline's /verify refused ${h%%:*}"
	done
	run_one() { # url pid header: requests/s and the server's CPU µs per request
		local rps reqs c0 c1 _
		c0=$(cpu_ticks "$2")
		read -r rps _ _ reqs < <(run_wrk "$1" "$ORIGINAL" "$3")
		c1=$(cpu_ticks "$2")
		echo "$rps $(us_per "$((c1 - c0))" "$reqs")"
	}
	for cred in cookie bearer; do
		h="Cookie: $COOKIE"
		[[ $cred == bearer ]] && h=$BEARER
		DURATION=1s run_one "$URL_D" "$CG_PID" "$h" >/dev/null
		DURATION=1s run_one "$URL_BASE" "$BASE_PID" "$h" >/dev/null
		CPU_AB=()
		printf '%-5s %-7s %14s %14s %16s %16s %9s\n' round cred "this req/s" "base req/s" "this µs/request" "base µs/request" "CPU ratio"
		for ((r = 1; r <= PAIR_ROUNDS; r++)); do
			if ((r % 2)); then
				read -r new new_us < <(run_one "$URL_D" "$CG_PID" "$h")
				read -r old old_us < <(run_one "$URL_BASE" "$BASE_PID" "$h")
			else
				read -r old old_us < <(run_one "$URL_BASE" "$BASE_PID" "$h")
				read -r new new_us < <(run_one "$URL_D" "$CG_PID" "$h")
			fi
			CPU_AB+=("$(awk -v a="$new_us" -v b="$old_us" 'BEGIN { printf "%.3f", (b > 0) ? a / b : 0 }')")
			printf '%-5s %-7s %14s %14s %16s %16s %9s\n' "$r" "$cred" "$new" "$old" "$new_us" "$old_us" "${CPU_AB[r - 1]}"
		done
		echo "$cred: CPU per request, this build / baseline, per round: ${CPU_AB[*]}  median $(median "${CPU_AB[@]}")"
	done
	kill -TERM "$BASE_PID" 2>/dev/null || true
	wait "$BASE_PID" 2>/dev/null || true
fi

if want memory; then
	# --- memory -----------------------------------------------------------------------------------
	echo "== certgate RSS"
	RSS_LOADED=$(rss_kib "$CG_PID")
	# A second session, revoked by the store's LAST row: once it is refused, certgate has
	# read all $REVOKED rows before it.
	COOKIE2=$(login)
	[[ $COOKIE2 == *=?* && $COOKIE2 != "$COOKIE" ]] || die "no second session cookie"
	payload=${COOKIE2#*=}
	payload=${payload#*.}
	payload=${payload%%.*}
	payload=$(tr '_-' '/+' <<<"$payload")
	while ((${#payload} % 4)); do payload+="="; done
	claims=$(base64 -d <<<"$payload")
	JTI2=$(sed -n 's/.*"jti":"\([^"]*\)".*/\1/p' <<<"$claims")
	EXP2=$(sed -n 's/.*"exp":\([0-9]*\).*/\1/p' <<<"$claims")
	[[ -n $JTI2 && -n $EXP2 ]] || die "cannot read jti/exp from the session cookie: $claims"
	[[ $(status "$URL_D" -H "$ORIGINAL" -H "Cookie: $COOKIE2") == 200 ]] || die "second session not allowed"
	# The row format of src/revocation/table.rs (Entry as JSON, serde tag "kind"; `expires` its
	# `until`), written into data_dir/certgate.db by Python's sqlite3 while certgate runs, as a
	# second process would: ids like jwt::random_id's (16 random bytes, 22 base64url characters;
	# ids of another shape go to the view's map for odd ids and would not measure the table).
	UNTIL=$(($(date +%s) + 3600))
	python3 - "$DATA/certgate.db" "$REVOKED" "$UNTIL" "$JTI2" "$EXP2" <<'PY' || die "cannot write the revocations into $DATA/certgate.db"
import base64, json, os, sqlite3, sys
path, n, until_all, jti, until_jti = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
def rows():
    for _ in range(n - 1):
        i = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
        yield json.dumps({"kind": "jti", "id": i, "until": until_all}, separators=(",", ":")), until_all
    yield json.dumps({"kind": "jti", "id": jti, "until": until_jti}, separators=(",", ":")), until_jti
db = sqlite3.connect(path, timeout=10)
with db:
    db.executemany("INSERT OR IGNORE INTO revocations (entry, expires) VALUES (?, ?)", rows())
PY
	for ((i = 0; i < 300; i++)); do
		[[ $(status "$URL_D" -H "$ORIGINAL" -H "Cookie: $COOKIE2") != 200 ]] && break
		sleep 0.1
	done
	((i < 300)) || die "certgate did not pick up the revocations in $DATA/certgate.db within 30 s"
	sleep 3 # let the reader settle; then one more check
	[[ $(status "$URL_D" -H "$ORIGINAL" -H "Cookie: $COOKIE") == 200 ]] || die "the first session stopped working after the revocations"
	RSS_REVOKED=$(rss_kib "$CG_PID")
	PER_JTI=$(awk -v a="$RSS_REVOKED" -v b="$RSS_LOADED" -v n="$REVOKED" 'BEGIN { printf "%.1f", (a - b) * 1024 / n }')
	echo "idle (after start, before load): $RSS_IDLE KiB; after load: $RSS_LOADED KiB; with $REVOKED revoked jtis: $RSS_REVOKED KiB"
	echo "bytes per revoked jti: $PER_JTI (RSS growth over the load-warmed process / $REVOKED)"

	# --- start-to-ready with the revocations ------------------------------------------------------
	# A replica: a second certgate on the same data_dir (as on a restart, or a second process on
	# the host), from exec until /readyz answers 200, polled every 10 ms. Then it must refuse the
	# session revoked by the last row and allow the other.
	echo "== start-to-ready with $REVOKED revocations in data_dir/certgate.db (median of $ROUNDS)"
	start_to_ready() { # binary: prints milliseconds, leaves the replica checked and stopped
		local bin=$1 port mtls pid t0 t1 i
		free_port port
		free_port mtls
		sed -e "s/127.0.0.1:$CG_HTTP/127.0.0.1:$port/" -e "s/127.0.0.1:$CG_MTLS/127.0.0.1:$mtls/" \
			"$T/certgate.toml" >"$T/replica.toml"
		t0=$(date +%s%N)
		"$bin" serve --config "$T/replica.toml" >"$T/replica.out" 2>"$T/replica.log" &
		pid=$!
		for ((i = 0; i < 3000; i++)); do
			[[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz") == 200 ]] && break
			kill -0 "$pid" 2>/dev/null || die "the replica ($bin) exited: $(tail -3 "$T/replica.log")"
			sleep 0.01
		done
		t1=$(date +%s%N)
		((i < 3000)) || die "the replica ($bin) was not ready within 30 s"
		local r="http://127.0.0.1:$port/verify"
		[[ $(status "$r" -H "$ORIGINAL" -H "Cookie: $COOKIE2") != 200 ]] || die "the replica ($bin) allowed a revoked session"
		[[ $(status "$r" -H "$ORIGINAL" -H "Cookie: $COOKIE") == 200 ]] || die "the replica ($bin) refused a live session"
		kill -TERM "$pid"
		wait "$pid" 2>/dev/null || true
		echo $(((t1 - t0) / 1000000))
	}
	READY=() BASE_READY=()
	for ((r = 1; r <= ROUNDS; r++)); do
		READY+=("$(start_to_ready "$CG")")
		[[ -z $BASELINE_CG ]] || BASE_READY+=("$(start_to_ready "$BASELINE_CG")")
	done
	READY_MS=$(median "${READY[@]}")
	echo "start-to-ready: ${READY[*]} ms (median $READY_MS ms)"
	if [[ -n $BASELINE_CG ]]; then
		BASE_READY_MS=$(median "${BASE_READY[@]}")
		echo "baseline $BASELINE_CG: ${BASE_READY[*]} ms (median $BASE_READY_MS ms)"
	fi
fi

if want redis; then
	# --- Redis after compaction ------------------------------------------------------------------
	# A Redis (no persistence) seeded with $HISTORY revocations in certgate's stream, one in 200
	# live for an hour and the rest expired long ago (as months of use leave them), then a
	# certgate with store.backend = "redis" (its own data_dir): the first replica to read the
	# history compacts it into the snapshot and trims the stream (src/revocation/redis.rs).
	# Redis's used_memory empty, with the history and after the compaction.
	for tool in redis-server redis-cli python3; do
		command -v "$tool" >/dev/null || die "$tool not found (apt-get install redis-server python3)"
	done
	echo "== Redis after compaction: $HISTORY revocations ($((HISTORY / 200)) live), then one certgate with store.backend = \"redis\""
	free_port REDIS_PORT
	redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no >"$T/redis.log" 2>&1 &
	REDIS_PID=$!
	PIDS+=("$REDIS_PID")
	wait_port "$REDIS_PORT" redis-server "$REDIS_PID"
	rcli() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }
	used_memory() { rcli INFO memory | tr -d '\r' | awk -F: '$1 == "used_memory" { print $2 }'; }
	REDIS_EMPTY=$(used_memory)
	# The entries as src/revocation/entry.rs writes them, sent as RESP through redis-cli --pipe.
	cat >"$T/history.py" <<'PYTHON'
import sys
n, until = int(sys.argv[1]), int(sys.argv[2])
out = sys.stdout.buffer
for i in range(n):
    if i % 200 == 0:
        e = '{"kind":"jti","id":"live-%d","until":%d}' % (i, until)
    else:
        e = '{"kind":"jti","id":"old-%d","until":1600000100}' % i
    args = ["XADD", "certgate:revocations", "1600000000000-%d" % i, "e", e]
    out.write(("*%d\r\n" % len(args)).encode())
    for a in args:
        out.write(("$%d\r\n%s\r\n" % (len(a), a)).encode())
PYTHON
	python3 "$T/history.py" "$HISTORY" "$(($(date +%s) + 3600))" | rcli --pipe >"$T/redis-pipe.out" ||
		die "redis-cli --pipe failed: $(cat "$T/redis-pipe.out")"
	grep -q "errors: 0, replies: $HISTORY" "$T/redis-pipe.out" || die "seeding Redis: $(cat "$T/redis-pipe.out")"
	REDIS_BEFORE=$(used_memory)
	XLEN_BEFORE=$(rcli XLEN certgate:revocations)
	free_port RC_HTTP
	free_port RC_MTLS
	{
		cg_config "$RC_HTTP" "$RC_MTLS" | sed "s|^data_dir = .*|data_dir = \"$T/redis-data\"|"
		printf '\n[store]\nbackend = "redis"\nredis_url = "redis://127.0.0.1:%s"\n' "$REDIS_PORT"
	} >"$T/redis.toml"
	t0=$(date +%s%N)
	"$CG" serve --config "$T/redis.toml" >"$T/redis-cg.out" 2>"$T/redis-cg.log" &
	RC_PID=$!
	PIDS+=("$RC_PID")
	for ((i = 0; i < 600; i++)); do
		[[ $(rcli XLEN certgate:revocations) == 1 && -n $(rcli GET certgate:revocations:snapshot) ]] && break
		kill -0 "$RC_PID" 2>/dev/null || die "certgate (redis) exited: $(tail -3 "$T/redis-cg.log")"
		sleep 0.05
	done
	t1=$(date +%s%N)
	((i < 600)) || die "the stream was not trimmed within 30 s: XLEN $(rcli XLEN certgate:revocations); $(tail -3 "$T/redis-cg.log")"
	[[ $(status "http://127.0.0.1:$RC_HTTP/readyz") == 200 ]] || die "certgate (redis) not ready after the compaction"
	REDIS_AFTER=$(used_memory)
	rcli GET certgate:revocations:snapshot >"$T/snapshot"
	SNAPSHOT_IDS=$(grep -c '"id":' "$T/snapshot" || true)
	if ((SNAPSHOT_IDS != HISTORY / 200 || $(grep -c '"id":"live-' "$T/snapshot") != SNAPSHOT_IDS)); then
		die "the snapshot holds $SNAPSHOT_IDS revocations, expected the $((HISTORY / 200)) live ones: $(grep -v '"id":"live-' "$T/snapshot" | head -3)"
	fi
	kill -TERM "$RC_PID" "$REDIS_PID" 2>/dev/null || true
	wait "$RC_PID" "$REDIS_PID" 2>/dev/null || true
	REDIS_SHARE=$(awk -v a="$REDIS_AFTER" -v b="$REDIS_BEFORE" -v e="$REDIS_EMPTY" 'BEGIN { printf "%.3f", (a - e) / (b - e) }')
	REDIS_PER_LIVE=$(awk -v a="$REDIS_AFTER" -v e="$REDIS_EMPTY" -v n="$SNAPSHOT_IDS" 'BEGIN { printf "%.0f", (a - e) / n }')
	echo "used_memory: empty $REDIS_EMPTY, with the history $REDIS_BEFORE (stream $XLEN_BEFORE entries), after compaction $REDIS_AFTER (stream 1 entry, snapshot $SNAPSHOT_IDS ids) bytes"
	echo "compacted $(((t1 - t0) / 1000000)) ms after certgate started; above an empty Redis: after/before $REDIS_SHARE, $REDIS_PER_LIVE bytes per live revocation"
fi

# --- summary ------------------------------------------------------------------------------------
verdict() { awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN { ok = (op == ">=") ? (v >= t) : (v <= t); print ok ? "MET" : "MISSED" }'; }
RSS_IDLE_MIB=$(awk -v k="$RSS_IDLE" 'BEGIN { printf "%.1f", k / 1024 }')
echo "== targets"
target() { printf '%-7s %-52s %s\n' "$(verdict "$1" "$2" "$3")" "$4" "$5"; } # value op threshold what shown
if want load; then
	# Issue 19's targets: the tail and the CPU of a check next to the floor (nginx to a stub
	# given the same request), for the session cookie (a/b) and the bearer token (e/f).
	for pair in a/b e/f; do
		x=${pair%/*} y=${pair#*/}
		what="cookie"
		[[ $pair == e/f ]] && what="bearer"
		target "${RATIO[$pair]}" '>=' 0.95 "$what: throughput $pair >= 0.95" "median ${RATIO[$pair]}"
		target "${CPU_RATIO[$pair]}" '<=' 1.15 "$what: CPU per check <= 1.15x the stub's ($pair)" \
			"${CPU_RATIO[$pair]}x (${US[$x]} µs vs ${US[$y]} µs)"
		target "${P99_RATIO[$pair]}" '<=' 1.2 "$what: p99 of ($x) <= 1.2x the stub's ($y)" \
			"median p99 ${MED_P99[$x]} vs ${MED_P99[$y]} ms (${P99_RATIO[$pair]}x)"
	done
fi
want handshakes && target "$HS_RATIO" '>=' 1 "certgate mTLS handshakes/s >= nginx's" "$HS_CG_MED vs $HS_NGX_MED (${HS_RATIO}x)"
target "$RSS_IDLE_MIB" '<=' 30 "RSS idle <= 30 MiB" "$RSS_IDLE_MIB MiB"
if want memory; then
	target "$PER_JTI" '<=' 48 "<= 48 bytes per revoked jti (at $REVOKED)" "$PER_JTI bytes"
	target "$READY_MS" '<=' 1000 "replica with $REVOKED revocations ready <= 1 s" "$READY_MS ms"
fi
want forged && target "$FORGED_RATIO" '<=' 5 "100 forged cookies <= 5x one (at most 4 checked)" "${FORGED_RATIO}x"
if want oidc; then
	target "$EXCHANGE_CPU_RATIO" '>=' 0.5 "OIDC exchanges >= 0.5x RSA-2048 signs, per CPU-second" \
		"$EXCHANGE_CPU vs $RSA_SIGN (${EXCHANGE_CPU_RATIO}x)"
	target "$EXCHANGE_RATIO" '>=' 0.5 "the same per wall-clock second (wrk-bound, see above)" \
		"$EXCHANGE_RPS vs $RSA_SIGN (${EXCHANGE_RATIO}x)"
fi
if want redis; then
	# Bounded by the live revocations (1 in 200 of the history): what is left above an empty
	# Redis is about their share, with room for the snapshot's and the scripts' own.
	target "$REDIS_SHARE" '<=' 0.05 "Redis after compaction <= 0.05x before (above empty)" \
		"${REDIS_SHARE}x ($REDIS_AFTER vs $REDIS_BEFORE bytes; $REDIS_PER_LIVE bytes per live revocation)"
fi
want verify-oidc && target "$PAIR_RATIO" '>=' 0.98 "/verify with [oidc] >= 0.98x without (paired)" \
	"median ${PAIR_RATIO}x (CPU per request: without/[oidc] ${PAIR_CPU_RATIO}x)"
echo "(sections run:${SECTIONS% })"

# --- optional: criterion micro-benchmark of token verification ------------------------------
if [[ ${BENCH_CRITERION:-0} == 1 ]]; then
	echo "== cargo bench --bench verify"
	cargo bench --bench verify 2>&1 | tee "$T/criterion.txt" | grep -E '^(verify|revoked_1m|[[:space:]]+time:)' || true
	# criterion prints "name  time: [low mid high]"; take each benchmark's middle estimate in ns.
	awk '
		function ns(v, u) { return v * ((u == "ps") ? 0.001 : (u == "ns") ? 1 : (u ~ /^(µs|us)$/) ? 1000 : (u == "ms") ? 1e6 : 1e9) }
		/^verify\// { name = $1 }
		/time:/ {
			for (i = 1; i <= NF; i++) if ($i == "time:") { v = $(i + 3); u = $(i + 4) }
			t[name] = ns(v, u); name = ""
		}
		END {
			h = t["verify/hs256_jsonwebtoken"]; c = t["verify/certgate_eddsa_cached"]; u = t["verify/certgate_eddsa_uncached"]
			if (h > 0 && c > 0) printf "HS256 time / cached EdDSA time: %.2f (>= 0.9: cached EdDSA within 0.9 of HS256)\n", h / c
			else print "could not read the criterion numbers; see `cargo bench --bench verify`"
			if (h > 0 && u > 0) printf "HS256 time / uncached EdDSA time: %.2f\n", h / u
		}' "$T/criterion.txt"
else
	echo "(criterion micro-benchmark not run; BENCH_CRITERION=1 scripts/bench.sh, or: cargo bench --bench verify)"
fi

