#!/usr/bin/env bash
# init.sh — the init service of docker-compose.yml (untested here; `make up`
# does the same without Docker): build flowlake into /flowlake-bin, wait for
# MinIO, create the bucket and point its notifications at the FLOWLAKE
# webhook target. The AWS_ and FLOWLAKE_STORE variables come from the
# compose file.
set -euo pipefail

cd /src
go build -o /flowlake-bin/flowlake ./cmd/flowlake

for ((i = 0; i < 120; i++)); do
	if curl -fsS -o /dev/null "$AWS_ENDPOINT_URL_S3/minio/health/ready"; then
		break
	fi
	sleep 1
done
curl -fsS -o /dev/null "$AWS_ENDPOINT_URL_S3/minio/health/ready" || { echo "MinIO not ready at $AWS_ENDPOINT_URL_S3" >&2; exit 1; }

/flowlake-bin/flowlake functions notify --store "$FLOWLAKE_STORE" --create-bucket \
	--arn arn:minio:sqs::FLOWLAKE:webhook
