#!/bin/sh
# azd postdeploy hook: deliver BlobCreated events of the training container to the blob trigger
# (function_app.py on_training_data, source=EventGrid) through its webhook:
#   https://<host>/runtime/webhooks/blobs?functionName=Host.Functions.on_training_data&code=<blobs_extension key>
# Runs after every `azd deploy` / `azd up`; idempotent (create is create-or-update).
# Needs the Azure CLI signed in (az login) with rights on the resource group.
#
# Why here and not in Bicep: the URL carries the host's `blobs_extension` system key, which exists once the
# deployed host has started with an Event Grid blob trigger, and Event Grid validates the endpoint when the
# subscription is created, which only the deployed app can answer.
#
# Inputs (azd environment values, i.e. outputs of infra/main.bicep): AZURE_RESOURCE_GROUP,
# AZURE_FUNCTION_APP_NAME, AZURE_FUNCTION_APP_HOSTNAME, EVENTGRID_SYSTEM_TOPIC_NAME, TRAINING_CONTAINER;
# optional AZURE_SUBSCRIPTION_ID (set by azd), BLOB_TRIGGER_FUNCTION, EVENTGRID_SUBSCRIPTION_NAME,
# HOOK_ATTEMPTS, HOOK_DELAY_SECONDS. The key is never printed.
set -eu

: "${AZURE_RESOURCE_GROUP:?not set: run through azd, or export the values of azd env get-values}"
: "${AZURE_FUNCTION_APP_NAME:?not set: run through azd, or export the values of azd env get-values}"
: "${EVENTGRID_SYSTEM_TOPIC_NAME:?not set: run through azd, or export the values of azd env get-values}"
: "${TRAINING_CONTAINER:?not set: run through azd, or export the values of azd env get-values}"

FUNCTION_NAME="${BLOB_TRIGGER_FUNCTION:-on_training_data}"
SUBSCRIPTION_NAME="${EVENTGRID_SUBSCRIPTION_NAME:-training-data-created}"
ATTEMPTS="${HOOK_ATTEMPTS:-20}"
DELAY="${HOOK_DELAY_SECONDS:-15}"

if ! command -v az >/dev/null 2>&1; then
  echo "postdeploy: the Azure CLI (az) is required to create the Event Grid subscription; see infra/README.md" >&2
  exit 1
fi

# az, pinned to the azd environment's subscription when known.
az_() {
  if [ -n "${AZURE_SUBSCRIPTION_ID:-}" ]; then
    az "$@" --subscription "$AZURE_SUBSCRIPTION_ID"
  else
    az "$@"
  fi
}

HOST="${AZURE_FUNCTION_APP_HOSTNAME:-}"
if [ -z "$HOST" ]; then
  HOST=$(az_ functionapp show --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_FUNCTION_APP_NAME" \
    --query defaultHostName --output tsv)
fi

# The host creates the key when it first starts with the blob trigger: wait for it after a fresh deploy.
key=""
i=1
while [ "$i" -le "$ATTEMPTS" ]; do
  key=$(az_ functionapp keys list --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_FUNCTION_APP_NAME" \
    --query "systemKeys.blobs_extension" --output tsv 2>/dev/null || true)
  if [ -n "$key" ]; then
    break
  fi
  echo "postdeploy: waiting for the blobs_extension system key of $AZURE_FUNCTION_APP_NAME ($i/$ATTEMPTS)"
  sleep "$DELAY"
  i=$((i + 1))
done
if [ -z "$key" ]; then
  echo "postdeploy: no blobs_extension system key on $AZURE_FUNCTION_APP_NAME; is the app deployed and running" \
    "(function $FUNCTION_NAME indexed)? Re-run: azd hooks run postdeploy" >&2
  exit 1
fi

endpoint="https://${HOST}/runtime/webhooks/blobs?functionName=Host.Functions.${FUNCTION_NAME}&code=${key}"
subject="/blobServices/default/containers/${TRAINING_CONTAINER}/blobs/"

# Event Grid validates the webhook on create; a cold host can be slow to answer, so try a few times.
i=1
while :; do
  if az_ eventgrid system-topic event-subscription create \
    --name "$SUBSCRIPTION_NAME" \
    --resource-group "$AZURE_RESOURCE_GROUP" \
    --system-topic-name "$EVENTGRID_SYSTEM_TOPIC_NAME" \
    --endpoint-type webhook \
    --endpoint "$endpoint" \
    --event-delivery-schema eventgridschema \
    --included-event-types Microsoft.Storage.BlobCreated \
    --subject-begins-with "$subject" \
    --max-delivery-attempts 30 \
    --event-ttl 1440 \
    --output none; then
    break
  fi
  if [ "$i" -ge 3 ]; then
    echo "postdeploy: could not create Event Grid subscription $SUBSCRIPTION_NAME; re-run: azd hooks run postdeploy" >&2
    exit 1
  fi
  echo "postdeploy: subscription create failed (attempt $i/3), retrying"
  sleep "$DELAY"
  i=$((i + 1))
done

echo "postdeploy: Event Grid subscription $SUBSCRIPTION_NAME delivers BlobCreated under $subject" \
  "to $FUNCTION_NAME on $AZURE_FUNCTION_APP_NAME"
