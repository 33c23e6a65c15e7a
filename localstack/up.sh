#!/usr/bin/env bash
# up.sh — run the whole flowlake pipeline on this machine, without Docker:
#
#   MinIO (the object store; installed with `go install` at the pinned version
#   when missing), the bucket, its notification rules (new objects of raw/,
#   status/ and secrets/ go to a webhook), and `flowlake functions serve`
#   (the functions host that receives that webhook and parses the segments).
#
# Both run in the background; their pid files, logs and data live in
# $FLOWLAKE_LOCALSTACK_DIR (default ./.localstack). Running it again starts
# only what is not running, with the settings of the first run unless the
# environment changes them. localstack/down.sh stops everything.
#
# Settings (environment):
#   FLOWLAKE_BIN             the flowlake binary (default ./bin/flowlake; `make up` builds it)
#   FLOWLAKE_LOCALSTACK_DIR  state directory (default ./.localstack)
#   MINIO_ADDR               MinIO S3 API address (default 127.0.0.1:9000)
#   MINIO_CONSOLE_ADDR       MinIO console address (default 127.0.0.1:9001)
#   FLOWLAKE_ADDR            functions host address (default 127.0.0.1:9490)
#   FLOWLAKE_BUCKET          bucket (default flowlake)
#   MINIO_VERSION            MinIO module version to install when minio is missing
#                            (default: the one internal/store/minio.mk pins)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
state=${FLOWLAKE_LOCALSTACK_DIR:-$root/.localstack}
flowlake=${FLOWLAKE_BIN:-$root/bin/flowlake}
# The addresses and bucket of the first run are kept, so that a later run
# finds what is running; the environment overrides them.
if [ -f "$state/settings" ]; then
	# shellcheck source=/dev/null
	. "$state/settings"
fi
minio_addr=${MINIO_ADDR:-127.0.0.1:9000}
console_addr=${MINIO_CONSOLE_ADDR:-127.0.0.1:9001}
host_addr=${FLOWLAKE_ADDR:-127.0.0.1:9490}
bucket=${FLOWLAKE_BUCKET:-flowlake}
target_id=FLOWLAKE

die() { echo "localstack/up.sh: $*" >&2; exit 1; }

command -v curl >/dev/null || die "curl is needed to wait for the servers (apt-get install curl)"
[ -x "$flowlake" ] || die "$flowlake not found: run 'make build' or set FLOWLAKE_BIN"
mkdir -p "$state"
state=$(cd "$state" && pwd)

# running NAME: the pid in NAME.pid is alive and runs the expected program.
running() {
	local pidfile=$state/$1.pid pid
	[ -f "$pidfile" ] || return 1
	pid=$(cat "$pidfile")
	[ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "$2"
}

# wait_url URL WHAT NAME: wait until URL answers 200, or fail with the log.
wait_url() {
	local i
	for ((i = 0; i < 300; i++)); do
		if curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null; then
			return 0
		fi
		if ! running "$3" "$4"; then
			echo "$2 exited; the end of $state/$3.log:" >&2
			tail -n 30 "$state/$3.log" >&2 || true
			exit 1
		fi
		sleep 0.2
	done
	echo "$2 did not answer at $1 within a minute; the end of $state/$3.log:" >&2
	tail -n 30 "$state/$3.log" >&2 || true
	exit 1
}

cat >"$state/settings" <<SETTINGS
MINIO_ADDR=\${MINIO_ADDR:-$minio_addr}
MINIO_CONSOLE_ADDR=\${MINIO_CONSOLE_ADDR:-$console_addr}
FLOWLAKE_ADDR=\${FLOWLAKE_ADDR:-$host_addr}
FLOWLAKE_BUCKET=\${FLOWLAKE_BUCKET:-$bucket}
SETTINGS

# Credentials: made once, kept in the state directory (mode 600).
if [ ! -f "$state/credentials" ]; then
	(
		umask 077
		user=flowlake-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
		pass=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
		token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
		printf 'MINIO_USER=%s\nMINIO_PASSWORD=%s\nWEBHOOK_TOKEN=%s\n' "$user" "$pass" "$token" >"$state/credentials"
	)
fi
# shellcheck source=/dev/null
. "$state/credentials"

# MinIO: on PATH, in GOBIN/GOPATH/bin, or installed there now.
minio=$(command -v minio || true)
if [ -z "$minio" ]; then
	gobin=$(go env GOBIN 2>/dev/null || true)
	[ -n "$gobin" ] || gobin=$(go env GOPATH 2>/dev/null)/bin
	minio=$gobin/minio
	if [ ! -x "$minio" ]; then
		version=${MINIO_VERSION:-$(sed -n 's/^MINIO_VERSION := //p' "$root/internal/store/minio.mk")}
		[ -n "$version" ] || die "no MinIO version: set MINIO_VERSION"
		echo "installing MinIO $version with go install (a few minutes, once) ..."
		GOBIN=$gobin go install "github.com/minio/minio@$version"
	fi
fi

if running minio "minio server"; then
	echo "MinIO already running (pid $(cat "$state/minio.pid"))"
else
	# The webhook target: events for the functions host, kept in a queue
	# directory while the host is down or restarting.
	mapfile -t notify_env < <("$flowlake" functions minio-env --id "$target_id" \
		--webhook "http://$host_addr/minio/events" --webhook-token "$WEBHOOK_TOKEN" \
		--queue-dir "$state/minio-events" 2>/dev/null)
	[ "${#notify_env[@]}" -gt 0 ] || die "flowlake functions minio-env printed nothing"
	mkdir -p "$state/minio-data"
	env "${notify_env[@]}" \
		MINIO_ROOT_USER="$MINIO_USER" MINIO_ROOT_PASSWORD="$MINIO_PASSWORD" \
		MINIO_REGION=us-east-1 MINIO_UPDATE=off MINIO_CI_CD=on MINIO_BROWSER_REDIRECT=off \
		setsid nohup "$minio" server "$state/minio-data" --address "$minio_addr" --console-address "$console_addr" \
		>"$state/minio.log" 2>&1 </dev/null &
	echo $! >"$state/minio.pid"
	wait_url "http://$minio_addr/minio/health/ready" MinIO minio "minio server"
fi

export AWS_ACCESS_KEY_ID=$MINIO_USER AWS_SECRET_ACCESS_KEY=$MINIO_PASSWORD AWS_REGION=us-east-1 \
	AWS_ENDPOINT_URL_S3=http://$minio_addr AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_SESSION_TOKEN
cat >"$state/env" <<ENV
# source this file to reach the local MinIO with flowlake, the AWS CLI or any AWS SDK
export AWS_ACCESS_KEY_ID=$MINIO_USER
export AWS_SECRET_ACCESS_KEY=$MINIO_PASSWORD
export AWS_REGION=us-east-1
export AWS_ENDPOINT_URL_S3=http://$minio_addr
export AWS_EC2_METADATA_DISABLED=true
ENV
chmod 600 "$state/env"

"$flowlake" functions notify --store "s3://$bucket" --create-bucket \
	--arn "arn:minio:sqs::$target_id:webhook" >"$state/notify.log" 2>&1 ||
	{ cat "$state/notify.log" >&2; die "could not configure the bucket notifications"; }

if running functions "functions serve"; then
	echo "functions host already running (pid $(cat "$state/functions.pid"))"
else
	FLOWLAKE_WEBHOOK_TOKEN=$WEBHOOK_TOKEN setsid nohup "$flowlake" functions serve \
		--store "s3://$bucket" --addr "$host_addr" >"$state/functions.log" 2>&1 </dev/null &
	echo $! >"$state/functions.pid"
	wait_url "http://$host_addr/healthz" "the functions host" functions "functions serve"
fi

rel=${state#"$PWD"/}
cat <<MSG

flowlake local stack is up (state, logs and pid files in $rel/)

  MinIO S3 API    http://$minio_addr     pid $(cat "$state/minio.pid"), log $rel/minio.log
  MinIO console   http://$console_addr
    user          $MINIO_USER
    password      $MINIO_PASSWORD
  bucket          s3://$bucket           new objects of raw/, status/, secrets/ -> webhook
  functions host  http://$host_addr      pid $(cat "$state/functions.pid"), log $rel/functions.log
                  POST /minio/events (MinIO's webhook), GET /healthz

Try it:

  source $rel/env    # AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL_S3
  ${flowlake#"$PWD"/} segment --store s3://$bucket --agent demo localstack/samples/*.pcap*
  curl -s http://$host_addr/healthz    # ingested / committed counters
  tail -f $rel/functions.log          # one "parsed segment" line per segment

The lake is at s3://$bucket/lake/ (checkpoints in state/). 'make down' stops everything.
MSG
