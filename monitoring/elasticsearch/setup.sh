#!/bin/sh
# Compose's es-setup (a one-shot curl container): Elasticsearch's users and the log data stream,
# idempotent. Kibana logs in as kibana_system, Filebeat as logs_writer (may only add documents to
# logs-pipeline-*); the lifecycle policy deletes old logs. The local log shipper installs the same
# policy and template (monitoring/shipper.py) from these files.
set -eu
ES=http://elasticsearch:9200
auth="elastic:${ELASTIC_PASSWORD}"

call() { # method path [json file | json text]
  method=$1 path=$2
  if [ -f "${3:-}" ]; then body="@$3"; else body=${3:-'{}'}; fi
  curl -fsS -u "$auth" -X "$method" "$ES$path" -H 'Content-Type: application/json' \
    --data-binary "$body" -o /dev/null
  echo "es-setup: $method $path"
}

until curl -fsS -u "$auth" "$ES/_cluster/health?wait_for_status=yellow&timeout=30s" -o /dev/null; do
  sleep 2
done
call POST /_security/user/kibana_system/_password "{\"password\":\"${KIBANA_SYSTEM_PASSWORD}\"}"
call PUT /_ilm/policy/pipeline-logs /setup/ilm-policy.json
call PUT /_index_template/pipeline-logs /setup/index-template.json
call PUT /_security/role/pipeline_logs_writer /setup/writer-role.json
call PUT /_security/user/logs_writer \
  "{\"password\":\"${LOGS_WRITER_PASSWORD}\",\"roles\":[\"pipeline_logs_writer\"]}"
