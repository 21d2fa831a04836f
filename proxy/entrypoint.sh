#!/bin/sh
# Entrypoint of the sandbox's egress proxy (Squid). POSIX sh; runs as the unprivileged `proxy` user on a
# read-only root filesystem.
#
# The configuration is not in the image: `sandbox` renders it per Expert (sandbox/render/_squid.py) and
# mounts it read-only at /etc/squid/sandbox, so one image serves every Expert. Without it we stop at once
# with a message, rather than run Squid's stock configuration.
#
# Readiness: once Squid answers, one line `sandbox-proxy/1 event=ready` goes to stdout (next to the access
# log), so a runner can wait for it instead of polling a healthcheck every 2 s. If Squid is not ready within
# $SANDBOX_PROXY_READY_TIMEOUT seconds (default 20) the container is stopped with an error.
set -eu

CONF_DIR=/etc/squid/sandbox
CONF="$CONF_DIR/squid.conf"
RUN_DIR=/run/squid
SNI_CERT="$RUN_DIR/sni-dummy.pem"
READY_HOST=sandbox-proxy-ready.invalid
PORT=3128

die() {
    echo "sandbox-proxy: FATAL: $*" >&2
    exit 78 # EX_CONFIG
}

[ -r "$CONF" ] || die "no configuration at $CONF: mount the files rendered by 'sandbox render' (proxy/config) read-only at $CONF_DIR"
for f in allowed_domains.txt hosts; do
    [ -r "$CONF_DIR/$f" ] || die "$CONF_DIR/$f is missing: mount the whole rendered proxy/config directory"
done

# The SNI check stage is an ssl-bump port, and Squid refuses to peek without a certificate even though
# nothing is ever decrypted or signed with it. A fresh throwaway key per start keeps private keys out of
# the image and the rendered files.
sni=0
if grep -q "tls-cert=$SNI_CERT" "$CONF"; then
    sni=1
    [ -d "$RUN_DIR" ] && [ -w "$RUN_DIR" ] || die "$RUN_DIR must be a writable tmpfs (the SNI check's throwaway key lives there)"
    umask 077
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
        -subj "/CN=sandbox-proxy SNI check (never used)" \
        -keyout "$RUN_DIR/sni-dummy.key" -out "$RUN_DIR/sni-dummy.crt" 2>/dev/null ||
        die "could not create the SNI check's throwaway certificate"
    cat "$RUN_DIR/sni-dummy.key" "$RUN_DIR/sni-dummy.crt" >"$SNI_CERT"
    rm -f "$RUN_DIR/sni-dummy.key" "$RUN_DIR/sni-dummy.crt"
fi

# Ask Squid for a CONNECT to a never-resolved name from 127.0.0.1; it is refused without any DNS query.
# Without the SNI stage the answer is 403. With it, the first stage hands the request to the SNI stage, an
# ssl-bump port, which answers a refusal with 200 and then TLS: so 200 proves both stages are up and TLS
# works there. (Had Squid quietly fallen back to a plain port, the answer would be 403 and we never get
# ready: the SNI check cannot switch itself off unnoticed.)
ready_status() {
    bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf "CONNECT %s:443 HTTP/1.1\r\nHost: %s:443\r\n\r\n" "$2" "$2" >&3
        IFS=" " read -r _ code _ <&3 || exit 1
        printf "%s" "$code"' sandbox-proxy-ready "$PORT" "$READY_HOST" 2>/dev/null || true
}

announce_ready() {
    want=403
    [ "$sni" = 1 ] && want=200
    deadline=$(($(date +%s) + ${SANDBOX_PROXY_READY_TIMEOUT:-20}))
    while [ "$(date +%s)" -le "$deadline" ]; do
        if [ "$(ready_status)" = "$want" ]; then
            echo "sandbox-proxy/1 event=ready"
            return 0
        fi
        sleep 0.02
    done
    echo "sandbox-proxy: FATAL: Squid did not become ready (expected $want for the readiness check); stopping" >&2
    kill -TERM "$$" 2>/dev/null || true
}

announce_ready &

exec squid -N -f "$CONF"
