# azd postdeploy hook (Windows / PowerShell): same as postdeploy.sh, see there for the why.
# Subscribes the blob trigger (function_app.py on_training_data, source=EventGrid) to BlobCreated events
# of the training container through its webhook; idempotent. Needs the Azure CLI signed in (az login).
# Errors are handled explicitly (exit codes): with 'Stop', Windows PowerShell 5.1 turns redirected native
# stderr into terminating errors.
$ErrorActionPreference = 'Continue'

foreach ($name in 'AZURE_RESOURCE_GROUP', 'AZURE_FUNCTION_APP_NAME', 'EVENTGRID_SYSTEM_TOPIC_NAME', 'TRAINING_CONTAINER') {
    if (-not [Environment]::GetEnvironmentVariable($name)) {
        Write-Error "postdeploy: $name is not set: run through azd, or set the values of azd env get-values"
        exit 1
    }
}
if (-not (Get-Command az -ErrorAction SilentlyContinue)) {
    Write-Error 'postdeploy: the Azure CLI (az) is required to create the Event Grid subscription; see infra/README.md'
    exit 1
}

$resourceGroup = $env:AZURE_RESOURCE_GROUP
$app = $env:AZURE_FUNCTION_APP_NAME
$functionName = if ($env:BLOB_TRIGGER_FUNCTION) { $env:BLOB_TRIGGER_FUNCTION } else { 'on_training_data' }
$subscriptionName = if ($env:EVENTGRID_SUBSCRIPTION_NAME) { $env:EVENTGRID_SUBSCRIPTION_NAME } else { 'training-data-created' }
$attempts = if ($env:HOOK_ATTEMPTS) { [int]$env:HOOK_ATTEMPTS } else { 20 }
$delay = if ($env:HOOK_DELAY_SECONDS) { [int]$env:HOOK_DELAY_SECONDS } else { 15 }
$subscriptionArgs = @()
if ($env:AZURE_SUBSCRIPTION_ID) { $subscriptionArgs = @('--subscription', $env:AZURE_SUBSCRIPTION_ID) }

$hostName = $env:AZURE_FUNCTION_APP_HOSTNAME
if (-not $hostName) {
    $hostName = az functionapp show --resource-group $resourceGroup --name $app --query defaultHostName --output tsv @subscriptionArgs
}

$key = ''
for ($i = 1; $i -le $attempts; $i++) {
    $key = az functionapp keys list --resource-group $resourceGroup --name $app `
        --query 'systemKeys.blobs_extension' --output tsv @subscriptionArgs 2>$null
    if ($key) { break }
    Write-Host "postdeploy: waiting for the blobs_extension system key of $app ($i/$attempts)"
    Start-Sleep -Seconds $delay
}
if (-not $key) {
    Write-Error "postdeploy: no blobs_extension system key on $app; is the app deployed and running (function $functionName indexed)? Re-run: azd hooks run postdeploy"
    exit 1
}

$endpoint = "https://$hostName/runtime/webhooks/blobs?functionName=Host.Functions.$functionName&code=$key"
$subject = "/blobServices/default/containers/$($env:TRAINING_CONTAINER)/blobs/"
# On Windows az is a .cmd script: cmd.exe would split the URL at '&' unless it arrives quoted.
$endpointArg = if ($IsWindows -or $PSVersionTable.PSEdition -eq 'Desktop') { '"' + $endpoint + '"' } else { $endpoint }

for ($i = 1; ; $i++) {
    az eventgrid system-topic event-subscription create `
        --name $subscriptionName `
        --resource-group $resourceGroup `
        --system-topic-name $env:EVENTGRID_SYSTEM_TOPIC_NAME `
        --endpoint-type webhook `
        --endpoint $endpointArg `
        --event-delivery-schema eventgridschema `
        --included-event-types Microsoft.Storage.BlobCreated `
        --subject-begins-with $subject `
        --max-delivery-attempts 30 `
        --event-ttl 1440 `
        --output none @subscriptionArgs
    if ($LASTEXITCODE -eq 0) { break }
    if ($i -ge 3) {
        Write-Error "postdeploy: could not create Event Grid subscription $subscriptionName; re-run: azd hooks run postdeploy"
        exit 1
    }
    Write-Host "postdeploy: subscription create failed (attempt $i/3), retrying"
    Start-Sleep -Seconds $delay
}

Write-Host "postdeploy: Event Grid subscription $subscriptionName delivers BlobCreated under $subject to $functionName on $app"
