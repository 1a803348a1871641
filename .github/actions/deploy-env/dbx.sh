#!/usr/bin/env bash
# Databricks REST calls of a deploy, authenticated with an Entra ID token of the azure/login session.
# The token is masked, kept in a private header file, and never printed.
#
#   dbx.sh read-record FILE     write the environment's deploy record to FILE (empty when there is none)
#                               and print whether the streaming job exists (true/false)
#   dbx.sh rollout              upload the wheel, then restart (or reset and restart) the streaming job
#   dbx.sh smoke                the jobs use the new wheel; the streaming job is healthy (or paused)
#   dbx.sh write-record FILE    store FILE as the environment's deploy record
set -euo pipefail

# The AzureDatabricks first-party application: the audience of a workspace token.
DATABRICKS_RESOURCE=2ff814a6-3304-4ab8-85cb-cd0e6f879c1d
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

authenticate() {
  local token
  token=$(az account get-access-token --resource "$DATABRICKS_RESOURCE" --query accessToken -o tsv)
  echo "::add-mask::$token"
  umask 077
  printf 'Authorization: Bearer %s\n' "$token" > "$WORK/auth-header"
}

# api METHOD PATH [JSON-FILE]: prints the body; fails on any non-2xx answer.
api() {
  local args=(--silent --show-error --fail-with-body -H "@$WORK/auth-header" -X "$1")
  if [ $# -ge 3 ]; then args+=(-H "Content-Type: application/json" --data "@$3"); fi
  curl "${args[@]}" "${DATABRICKS_URL%/}$2"
}

# The workspace API addresses files without the /Workspace prefix that clusters and libraries use.
api_path() { printf '%s' "${1#/Workspace}"; }
urlencode() { jq -rn --arg v "$1" '$v|@uri'; }
# The pipeline job's pause status: a continuous job's, or a scheduled job's (pipeline_mode in infra/config.py).
PAUSE_STATUS='(.settings.continuous // .settings.schedule).pause_status // "UNPAUSED"'

job_id() {
  local id
  id=$(api GET "/api/2.1/jobs/list?name=$(urlencode "$1")" | jq -r '.jobs[0].job_id // empty')
  [ -n "$id" ] || { echo "::error::no Databricks job named $1" >&2; return 1; }
  printf '%s' "$id"
}

upload_file() { # upload_file LOCAL /Volumes/...|/Workspace/... : creates the folder, overwrites the file
  local target
  if [[ "$2" == /Volumes/* ]]; then # the deployer-only artifacts volume: Files API (creates the folders)
    curl --silent --show-error --fail-with-body -H "@$WORK/auth-header" -X PUT \
      -H "Content-Type: application/octet-stream" --data-binary "@$1" \
      "${DATABRICKS_URL%/}/api/2.0/fs/files$2?overwrite=true" > /dev/null
    echo "uploaded $(basename "$1") to $2"; return 0
  fi
  target=$(api_path "$2")
  jq -n --arg path "$(dirname "$target")" '{path: $path}' > "$WORK/mkdirs.json"
  api POST /api/2.0/workspace/mkdirs "$WORK/mkdirs.json" > /dev/null
  base64 -w0 "$1" > "$WORK/content.b64"
  jq -n --arg path "$target" --rawfile content "$WORK/content.b64" \
    '{path: $path, format: "AUTO", overwrite: true, content: $content}' > "$WORK/import.json"
  api POST /api/2.0/workspace/import "$WORK/import.json" > /dev/null
  echo "uploaded $(basename "$1") to $2"
}

wait_until_idle() { # wait_until_idle JOB_ID
  for _ in $(seq 1 60); do
    active=$(api GET "/api/2.1/jobs/runs/list?job_id=$1&active_only=true" | jq '.runs // [] | length')
    [ "$active" = "0" ] && return 0
    sleep 10
  done
  echo "::error::runs of job $1 did not stop within 10 minutes"; return 1
}

set_pause() { # set_pause JOB_ID STATUS: the continuous/schedule/trigger block keeps the rest as terraform set it
  api GET "/api/2.1/jobs/get?job_id=$1" \
    | jq --argjson id "$1" --arg s "$2" '{job_id: $id, new_settings: (.settings
        | with_entries(select(.key == "continuous" or .key == "schedule" or .key == "trigger"))
        | map_values(. + {pause_status: $s}))}' \
    > "$WORK/pause.json"
  api POST /api/2.1/jobs/update "$WORK/pause.json" > /dev/null
}

reset_checkpoints() { # moves the changed jobs' checkpoints aside on a cluster inside the VNet
  local id=$1 script="${WHEEL_URI%%/wheels/*}/deploy/reset_checkpoints.py" run_id state
  upload_file "$(dirname "$0")/reset_checkpoints.py" "$script"
  api GET "/api/2.1/jobs/get?job_id=$id" | jq --arg script "$script" --arg whl "$WHEEL_URI" \
    --arg stamp "$COMMIT" --arg jobs "$RESET_JOBS" '{
      run_name: ("pulse state reset " + $stamp),
      tasks: [{
        task_key: "reset",
        new_cluster: .settings.job_clusters[0].new_cluster,
        libraries: [{whl: $whl}],
        spark_python_task: {python_file: $script, parameters: ([$stamp] + ($jobs | split(" ")))}
      }]
    }' > "$WORK/submit.json"
  run_id=$(api POST /api/2.1/jobs/runs/submit "$WORK/submit.json" | jq -r .run_id)
  echo "reset run $run_id: moving the checkpoints of $RESET_JOBS aside"
  for _ in $(seq 1 120); do
    state=$(api GET "/api/2.1/jobs/runs/get?run_id=$run_id" | jq -r '.state.life_cycle_state')
    case "$state" in TERMINATED|SKIPPED|INTERNAL_ERROR) break ;; esac
    sleep 15
  done
  result=$(api GET "/api/2.1/jobs/runs/get?run_id=$run_id" | jq -r '.state.result_state // "NONE"')
  [ "$result" = "SUCCESS" ] || { echo "::error::state reset run $run_id ended $state/$result"; return 1; }
}

rollout() {
  authenticate
  upload_file "$WHEEL_PATH" "$WHEEL_URI"
  local id pause
  id=$(job_id "$PIPELINE_JOB")
  if [ -n "${RESET_JOBS:-}" ]; then
    # The applied plan holds the job PAUSED (scripts/hold_paused.py), so the new wheel never runs on the
    # old checkpoints; the status to resume with is the configured one, never the live (paused) one.
    pause=${PIPELINE_PAUSE:?PIPELINE_PAUSE: the configured pause status, from scripts/hold_paused.py}
    set_pause "$id" PAUSED
    api POST /api/2.1/jobs/runs/cancel-all <(jq -n --argjson id "$id" '{job_id: $id}') > /dev/null
    wait_until_idle "$id"
    reset_checkpoints "$id" # on failure the deploy stops here, the job still paused
    set_pause "$id" "$pause"
    echo "checkpoints of $RESET_JOBS reset; the job resumes as configured ($pause)"
  else
    pause=$(api GET "/api/2.1/jobs/get?job_id=$id" | jq -r "$PAUSE_STATUS")
    # A continuous job starts a new run, with the new settings, as soon as its run is cancelled: every
    # stream resumes from its checkpoint on the new wheel.
    api POST /api/2.1/jobs/runs/cancel-all <(jq -n --argjson id "$id" '{job_id: $id}') > /dev/null
    echo "streaming job $PIPELINE_JOB ($pause) restarted from its checkpoints onto $WHEEL_URI"
  fi
}

check_wheel() { # every task of the job installs the new wheel
  local stale
  stale=$(api GET "/api/2.1/jobs/get?job_id=$1" | jq -r --arg whl "$WHEEL_URI" \
    '[.settings.tasks[] | select(([.libraries[]?.whl] | index($whl)) == null) | .task_key] | join(" ")')
  [ -z "$stale" ] || { echo "::error::tasks not on $WHEEL_URI: $stale"; return 1; }
}

smoke() {
  authenticate
  local id maint pause deadline run stable=0
  id=$(job_id "$PIPELINE_JOB")
  maint=$(job_id "$MAINTENANCE_JOB")
  check_wheel "$id"
  check_wheel "$maint"
  pause=$(api GET "/api/2.1/jobs/get?job_id=$id" | jq -r "$PAUSE_STATUS")
  if [ "$pause" = "PAUSED" ]; then
    echo "pipeline job is paused in this environment: its configuration was checked, no run expected"
    return 0
  fi
  if api GET "/api/2.1/jobs/get?job_id=$id" | jq -e '.settings.continuous == null' > /dev/null; then
    echo "pipeline job runs on its schedule (pipeline_mode=scheduled): its configuration was checked"
    return 0
  fi
  deadline=$(( $(date +%s) + ${SMOKE_TIMEOUT:-900} ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    run=$(api GET "/api/2.1/jobs/runs/list?job_id=$id&active_only=true&expand_tasks=true" | jq -c '.runs[0] // {}')
    if jq -e '[.tasks[]?.state.result_state] | any(. == "FAILED" or . == "TIMEDOUT")' <<< "$run" > /dev/null; then
      echo "::error::a streaming task failed: $(jq -r .run_page_url <<< "$run")"; return 1
    fi
    if jq -e '.state.life_cycle_state == "RUNNING" and (.tasks | length > 0)
              and ([.tasks[].state.life_cycle_state] | all(. == "RUNNING"))' <<< "$run" > /dev/null; then
      stable=$((stable + 1))
      # Healthy = every stream still running three polls (~90 s) in a row, past its first micro-batches.
      if [ "$stable" -ge 3 ]; then echo "streaming job healthy: $(jq -r .run_page_url <<< "$run")"; return 0; fi
    else
      stable=0
    fi
    sleep 30
  done
  echo "::error::the streaming job did not become healthy within ${SMOKE_TIMEOUT:-900} s"; return 1
}

read_record() { # read_record FILE: the record goes to FILE; stdout says whether $PIPELINE_JOB exists
  : > "$1"
  # Before the first deploy there is no workspace, hence no record and no job: a first deploy.
  if [ "$(az group exists -n "$RESOURCE_GROUP")" != "true" ]; then
    echo "no resource group yet" >&2; echo false; return 0
  fi
  local host
  host=$(az resource list -g "$RESOURCE_GROUP" --resource-type Microsoft.Databricks/workspaces \
    --query "[?name=='$WORKSPACE_NAME'].id" -o tsv)
  if [ -z "$host" ]; then echo "no workspace yet" >&2; echo false; return 0; fi
  host=$(az resource show --ids "$host" --query properties.workspaceUrl -o tsv)
  DATABRICKS_URL="https://$host"
  authenticate
  local status jobs
  local url="$DATABRICKS_URL/api/2.0/fs/files$DEPLOY_RECORD" # the artifacts volume (Files API)
  if [[ "$DEPLOY_RECORD" != /Volumes/* ]]; then
    url="$DATABRICKS_URL/api/2.0/workspace/export?direct_download=true&path=$(urlencode "$(api_path "$DEPLOY_RECORD")")"
  fi
  status=$(curl --silent --show-error -o "$WORK/record.json" -w '%{http_code}' -H "@$WORK/auth-header" "$url")
  case "$status" in
    200) cp "$WORK/record.json" "$1" ;;
    404) echo "no deploy record yet in $DATABRICKS_URL" >&2 ;;
    *) echo "::error::reading the deploy record answered HTTP $status" >&2; return 1 ;;
  esac
  # Without a record, an existing job means a deploy outside the pipeline, not a first deploy.
  jobs=$(api GET "/api/2.1/jobs/list?name=$(urlencode "$PIPELINE_JOB")" | jq '.jobs // [] | length')
  if [ "$jobs" -gt 0 ]; then echo true; else echo false; fi
}

write_record() {
  authenticate
  upload_file "$1" "$DEPLOY_RECORD"
}

case "${1:-}" in
  read-record) read_record "$2" ;;
  rollout) rollout ;;
  smoke) smoke ;;
  write-record) write_record "$2" ;;
  *) echo "usage: dbx.sh read-record FILE|rollout|smoke|write-record FILE" >&2; exit 2 ;;
esac
