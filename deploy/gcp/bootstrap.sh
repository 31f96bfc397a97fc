#!/usr/bin/env bash
# Creates what Refit needs on Google Cloud, idempotently: each resource is
# looked up first and created only when missing, so re-running is safe.
#
#   deploy/gcp/bootstrap.sh PROJECT_ID BUCKET [REGION]
#
# Creates: the bucket (uniform access, no public access); the Pub/Sub
# topics and the workers' subscriptions, with a dead-letter policy; the
# bucket's notification (OBJECT_FINALIZE under incoming/ -> <prefix>-objects);
# an Artifact Registry repository for the image; the service accounts
# "refit" (the pods) and "refit-keda" (KEDA reading Managed Prometheus) with
# least-privilege roles, and their Workload Identity bindings.
# Settings: REFIT_TOPIC_PREFIX (default refit), REFIT_SERVICE_ACCOUNT
# (refit), REFIT_KEDA_SERVICE_ACCOUNT (refit-keda), KEDA_NAMESPACE (keda).
# Names follow the refit binary's Pub/Sub bus: topics <prefix>.<event>,
# bucket notifications on <prefix>-objects, subscriptions
# <prefix>.<group>.<topic without "<prefix>.">.
set -euo pipefail

usage() { echo "usage: $0 PROJECT_ID BUCKET [REGION]" >&2; exit 2; }
[[ $# -ge 2 && $# -le 3 ]] || usage
PROJECT=$1
BUCKET=$2
REGION=${3:-europe-west1}
PREFIX=${REFIT_TOPIC_PREFIX:-refit}
SA_NAME=${REFIT_SERVICE_ACCOUNT:-refit}
KEDA_SA_NAME=${REFIT_KEDA_SERVICE_ACCOUNT:-refit-keda}
KEDA_NAMESPACE=${KEDA_NAMESPACE:-keda}
SA="${SA_NAME}@${PROJECT}.iam.gserviceaccount.com"
KEDA_SA="${KEDA_SA_NAME}@${PROJECT}.iam.gserviceaccount.com"
# Pub/Sub settings the binary's bus uses too (internal/bus/pubsub.go).
ACK_DEADLINE=60
MAX_DELIVERY_ATTEMPTS=10
SUBSCRIBER_ROLE_ID=refitSubscriptionCreator

gc() { gcloud --project="$PROJECT" --quiet "$@"; }
# exists DESCRIBE-COMMAND...: true when the resource is there.
exists() { gc "$@" --format="value(name)" >/dev/null 2>&1; }
say() { printf '%-8s %s\n' "$1" "$2"; }

say "project" "$PROJECT (bucket gs://$BUCKET, region $REGION, topic prefix $PREFIX)"

gc services enable pubsub.googleapis.com storage.googleapis.com monitoring.googleapis.com \
  container.googleapis.com artifactregistry.googleapis.com iamcredentials.googleapis.com
PROJECT_NUMBER=$(gc projects describe "$PROJECT" --format="value(projectNumber)")
PUBSUB_AGENT="service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com"

# --- bucket -----------------------------------------------------------------
if exists storage buckets describe "gs://$BUCKET"; then
  say found "gs://$BUCKET"
else
  gc storage buckets create "gs://$BUCKET" --location="$REGION" \
    --uniform-bucket-level-access --public-access-prevention
  say created "gs://$BUCKET"
fi

# --- topics -----------------------------------------------------------------
OBJECT_TOPIC="${PREFIX}-objects"
DEAD_LETTER_TOPIC="${PREFIX}.dead-letter"
TOPICS=("$OBJECT_TOPIC" "$DEAD_LETTER_TOPIC" "${PREFIX}.correction.submitted" "${PREFIX}.rows.staged"
  "${PREFIX}.dataset.versioned" "${PREFIX}.blob.written" "${PREFIX}.model.trained" "${PREFIX}.model.promoted")
for topic in "${TOPICS[@]}"; do
  if exists pubsub topics describe "$topic"; then
    say found "topic $topic"
  else
    gc pubsub topics create "$topic"
    say created "topic $topic"
  fi
done
# Pub/Sub itself moves messages that keep failing to the dead-letter topic.
gc pubsub topics add-iam-policy-binding "$DEAD_LETTER_TOPIC" \
  --member="serviceAccount:$PUBSUB_AGENT" --role=roles/pubsub.publisher >/dev/null

# --- subscriptions: "group topic" -------------------------------------------
# The gateway replicas create their own (gateway-<id>) subscriptions at start.
SUBSCRIPTIONS=(
  "preprocess $OBJECT_TOPIC"
  "preprocess ${PREFIX}.correction.submitted"
  "version ${PREFIX}.rows.staged"
  "train ${PREFIX}.dataset.versioned"
  "train ${PREFIX}.blob.written"
  "promote ${PREFIX}.model.trained"
  "dead-letters $DEAD_LETTER_TOPIC"
)
for entry in "${SUBSCRIPTIONS[@]}"; do
  read -r group topic <<<"$entry"
  sub="${PREFIX}.${group}.${topic#"${PREFIX}."}"
  if exists pubsub subscriptions describe "$sub"; then
    say found "subscription $sub"
  else
    flags=(--topic="$topic" --ack-deadline="$ACK_DEADLINE" --min-retry-delay=10s --max-retry-delay=600s
      --expiration-period=never)
    if [[ $topic != "$DEAD_LETTER_TOPIC" ]]; then
      flags+=(--dead-letter-topic="$DEAD_LETTER_TOPIC" --max-delivery-attempts="$MAX_DELIVERY_ATTEMPTS")
    fi
    gc pubsub subscriptions create "$sub" "${flags[@]}"
    say created "subscription $sub"
  fi
  if [[ $topic != "$DEAD_LETTER_TOPIC" ]]; then
    # ... and must be able to take the message off the source subscription.
    gc pubsub subscriptions add-iam-policy-binding "$sub" \
      --member="serviceAccount:$PUBSUB_AGENT" --role=roles/pubsub.subscriber >/dev/null
  fi
done

# --- bucket notification ----------------------------------------------------
GCS_AGENT=$(gc storage service-agent)
gc pubsub topics add-iam-policy-binding "$OBJECT_TOPIC" \
  --member="serviceAccount:$GCS_AGENT" --role=roles/pubsub.publisher >/dev/null
notifications=$(gc storage buckets notifications list "gs://$BUCKET" --format="value(topic,object_name_prefix)")
if grep -Eq "/topics/${OBJECT_TOPIC}[[:space:]]+incoming/\$" <<<"$notifications"; then
  say found "notification gs://$BUCKET/incoming/* -> $OBJECT_TOPIC"
else
  gc storage buckets notifications create "gs://$BUCKET" --topic="$OBJECT_TOPIC" \
    --event-types=OBJECT_FINALIZE --object-prefix=incoming/ --payload-format=json
  say created "notification gs://$BUCKET/incoming/* -> $OBJECT_TOPIC"
fi

# --- image repository -------------------------------------------------------
if exists artifacts repositories describe refit --location="$REGION"; then
  say found "artifact registry $REGION-docker.pkg.dev/$PROJECT/refit"
else
  gc artifacts repositories create refit --location="$REGION" --repository-format=docker \
    --description="Refit images"
  say created "artifact registry $REGION-docker.pkg.dev/$PROJECT/refit"
fi

# --- service accounts -------------------------------------------------------
for name in "$SA_NAME" "$KEDA_SA_NAME"; do
  if exists iam service-accounts describe "${name}@${PROJECT}.iam.gserviceaccount.com"; then
    say found "service account ${name}@${PROJECT}.iam.gserviceaccount.com"
  else
    gc iam service-accounts create "$name" --display-name="Refit ($name)"
    say created "service account ${name}@${PROJECT}.iam.gserviceaccount.com"
  fi
done

# Gateway replicas create their own subscription: that one permission, not
# roles/pubsub.editor.
if exists iam roles describe "$SUBSCRIBER_ROLE_ID"; then
  say found "role $SUBSCRIBER_ROLE_ID"
else
  gc iam roles create "$SUBSCRIBER_ROLE_ID" --title="Refit subscription creator" \
    --description="Create Pub/Sub subscriptions (Refit gateway replicas)" \
    --permissions=pubsub.subscriptions.create --stage=GA
  say created "role $SUBSCRIBER_ROLE_ID"
fi

# --- least-privilege roles (adding a binding that exists changes nothing) ---
# Objects in Refit's bucket only (no bucket admin, no other bucket).
gc storage buckets add-iam-policy-binding "gs://$BUCKET" \
  --member="serviceAccount:$SA" --role=roles/storage.objectAdmin >/dev/null
# Publish and consume Refit's events; read topic and subscription metadata.
for role in roles/pubsub.publisher roles/pubsub.subscriber roles/pubsub.viewer \
  "projects/$PROJECT/roles/$SUBSCRIBER_ROLE_ID"; do
  gc projects add-iam-policy-binding "$PROJECT" --member="serviceAccount:$SA" \
    --role="$role" --condition=None >/dev/null
done
# KEDA reads Managed Prometheus (and Pub/Sub's metrics through it).
gc projects add-iam-policy-binding "$PROJECT" --member="serviceAccount:$KEDA_SA" \
  --role=roles/monitoring.viewer --condition=None >/dev/null
say granted "$SA: storage.objectAdmin on gs://$BUCKET; pubsub publisher, subscriber, viewer, $SUBSCRIBER_ROLE_ID"
say granted "$KEDA_SA: monitoring.viewer"

# --- Workload Identity: Kubernetes service accounts act as the Google ones --
for ksa in refit-ml/refit refit-web/refit; do
  gc iam service-accounts add-iam-policy-binding "$SA" --role=roles/iam.workloadIdentityUser \
    --member="serviceAccount:${PROJECT}.svc.id.goog[${ksa}]" >/dev/null
done
gc iam service-accounts add-iam-policy-binding "$KEDA_SA" --role=roles/iam.workloadIdentityUser \
  --member="serviceAccount:${PROJECT}.svc.id.goog[${KEDA_NAMESPACE}/keda-operator]" >/dev/null
say granted "workload identity: refit-ml/refit, refit-web/refit -> $SA; $KEDA_NAMESPACE/keda-operator -> $KEDA_SA"

cat <<NEXT

Done. Next:
  kubectl annotate serviceaccount keda-operator -n $KEDA_NAMESPACE iam.gke.io/gcp-service-account=$KEDA_SA --overwrite
  (and restart KEDA's operator), create the refit-secrets Secrets, set deploy/k8s/overlays/gke/settings.yaml
  (project: $PROJECT, bucket: $BUCKET), then: kubectl apply -k deploy/k8s/overlays/gke
  MongoDB collections: run 'refit setup' once with REFIT_PROFILE=gcp and your own credentials.
NEXT
