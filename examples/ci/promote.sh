#!/usr/bin/env bash
# Promote a model version from a CI/CD pipeline (Jenkins, GitLab CI, a cron job, GitHub Actions: see
# github-actions.yml next to this file), gated on the console's own view, and rolled back when the
# post-deploy check fails. Every step goes through the same guarded, audited path as a person at the
# console: the registry's READY check, the expected-current guard, the deploy hook and its verification.
#
#   MODEL=iris VERSION=3 examples/ci/promote.sh
#
# Environment (the console's own settings come from MLOPS_CONSOLE_CONFIG, as for every command):
#   MODEL, VERSION       what to promote (required)
#   ALIAS                the alias to move (default: production)
#   CANDIDATE_ENDPOINT   optional: an endpoint already serving the candidate (staging, shadow); its latest
#                        inference-log window must show no invalid predictions, no inputs breaking the
#                        signature and no stuck model
#   POST_DEPLOY_CHECK    optional: a command run after the promote (your smoke test); if it fails, the
#                        alias is rolled back. Default: every endpoint of MODEL is up and serves VERSION
#   POST_DEPLOY_TIMEOUT  seconds the default check waits for that (default: 60)
#   CI_PIPELINE_URL      recorded as the reason in the audit trail and the registry's tags
#   MLOPS_CONSOLE        the command (default: mlops-console)
#   PYTHON               reads the JSON answers (default: python3)
# Exit: 0 promoted (and verified, where the endpoints have deploy hooks); 1 a gate refused, the promote
# was refused or failed, or it was rolled back; 2 a usage error.
set -euo pipefail

MC=${MLOPS_CONSOLE:-mlops-console}
PY=${PYTHON:-python3}
: "${MODEL:?set MODEL to the registered model name}" "${VERSION:?set VERSION to the version to promote}"
ALIAS=${ALIAS:-production}
REASON=${CI_PIPELINE_URL:-pipeline run by ${USER:-ci}}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

say() { printf '%s\n' "promote.sh: $*" >&2; }

# Reads one JSON document (file $1) with a short Python expression over `doc`; prints the result.
json() { "$PY" - "$1" "$2" <<'PYEOF'
import json, os, sys
try:
    doc = json.load(open(sys.argv[1]))
except ValueError:  # the command failed before it could answer (an argument error): it said why
    print("no answer (see above)")
    sys.exit(0)
env = os.environ
result = eval(sys.argv[2], {"doc": doc, "env": env})
print(result if isinstance(result, str) else json.dumps(result))
PYEOF
}
export MODEL VERSION ALIAS CANDIDATE_ENDPOINT="${CANDIDATE_ENDPOINT:-}"

# -- gates -------------------------------------------------------------------------------------------
# `status` exits 1 when any endpoint is down; the gate looks at this model's endpoints only.
"$MC" status --json >"$WORK/status.json" || true
down=$(json "$WORK/status.json" \
  "' '.join(e['name'] for e in doc if e['model'] == env['MODEL'] and e['health'] == 'down')")
if [ -n "$down" ]; then
  say "gate: endpoints of $MODEL are down: $down; not promoting"
  exit 1
fi

# Open alerts on this model's endpoints block the promote (acknowledge or resolve them first). A store
# that cannot be read (exit 3) fails the gate: the pipeline cannot tell whether something is firing.
if ! "$MC" alerts list --state firing --json >"$WORK/alerts.json"; then
  say "gate: cannot read the console's alerts (see above); not promoting"
  exit 1
fi
firing=$(json "$WORK/alerts.json" \
  "' '.join(f\"#{a['id']}:{a['rule']}@{a['endpoint']}\" for a in doc if a['model'] == env['MODEL'])")
if [ -n "$firing" ]; then
  say "gate: alerts firing on $MODEL: $firing; not promoting"
  exit 1
fi

if [ -n "$CANDIDATE_ENDPOINT" ]; then
  problem=$(json "$WORK/status.json" "next((
    'no such endpoint' if e is None else
    'no inference log' if e['quality'] is None else
    e['quality']['error'] or
    (f\"{e['quality']['invalid_rows']} invalid predictions\" if e['quality']['invalid_rows'] else '') or
    (f\"{e['quality']['broken_rows']} inputs breaking the signature\" if e['quality']['broken_rows'] else '') or
    ('stuck on one prediction' if e['quality']['stuck'] else '')
    for e in [next((x for x in doc if x['name'] == env['CANDIDATE_ENDPOINT']), None)]), '')")
  if [ -n "$problem" ]; then
    say "gate: candidate endpoint $CANDIDATE_ENDPOINT: $problem; not promoting"
    exit 1
  fi
fi

# -- promote -----------------------------------------------------------------------------------------
"$MC" models --json >"$WORK/models.json"
current=$(json "$WORK/models.json" \
  "next((m['aliases'].get(env['ALIAS'], 'none') for m in doc if m['name'] == env['MODEL']), 'none')")
say "promoting $MODEL $ALIAS: v$current -> v$VERSION"
# --expect-current: refused, not overwritten, if someone moved the alias since it was read.
if ! "$MC" promote "$MODEL" "$VERSION" --alias "$ALIAS" --expect-current "$current" \
  --reason "$REASON" --yes --json >"$WORK/promote.json"; then
  say "promote refused or failed: $(json "$WORK/promote.json" "doc.get('message') or doc.get('error')")"
  exit 1
fi
verified=$(json "$WORK/promote.json" "doc['verified']")
changed=$(json "$WORK/promote.json" "doc['changed']")

# -- post-deploy check, and the rollback when it fails -----------------------------------------------
check_served() {
  local deadline=$((SECONDS + ${POST_DEPLOY_TIMEOUT:-60}))
  while :; do
    "$MC" status --json >"$WORK/after.json" || true
    wrong=$(json "$WORK/after.json" "' '.join(
      f\"{e['name']}({e['health']}, v{e['served_version']})\" for e in doc
      if e['model'] == env['MODEL'] and e['alias'] == env['ALIAS']
      and (e['health'] != 'up' or e['served_version'] not in (None, env['VERSION'])))")
    [ -z "$wrong" ] && return 0
    if [ "$SECONDS" -ge "$deadline" ]; then
      say "post-deploy check: not serving v$VERSION: $wrong"
      return 1
    fi
    sleep 2
  done
}

failed=""
if [ "$verified" = "false" ]; then
  failed="the deploy was not verified"
elif [ -n "${POST_DEPLOY_CHECK:-}" ]; then
  bash -c "$POST_DEPLOY_CHECK" || failed="POST_DEPLOY_CHECK failed"
else
  check_served || failed="endpoints do not serve v$VERSION"
fi

if [ -z "$failed" ]; then
  say "$(json "$WORK/promote.json" "doc['message']")"
  exit 0
fi
if [ "$changed" != "true" ]; then
  say "post-deploy check failed ($failed), and this run moved nothing: nothing to roll back"
  exit 1
fi
say "post-deploy check failed ($failed): rolling back"
# --expect-current: only this run's promote is undone, never a change someone made since.
if "$MC" rollback "$MODEL" --alias "$ALIAS" --expect-current "$VERSION" --reason "post-deploy check failed: $failed ($REASON)" \
  --yes --json >"$WORK/rollback.json"; then
  say "$(json "$WORK/rollback.json" "doc['message']")"
else
  say "ROLLBACK FAILED: $(json "$WORK/rollback.json" "doc.get('message') or doc.get('error')")"
fi
exit 1
