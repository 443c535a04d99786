// Model retraining on Azure Functions (Flex Consumption), for `azd up`. See infra/README.md.
//
// Creates, in one resource group: a user-assigned identity; a storage account without shared keys
// (containers training-data + retrain-outputs + the deployment package, the four step queues, the
// three state tables); a Key Vault for the ML service keys; Log Analytics + Application Insights;
// the Flex Consumption plan and Function App with identity-based app settings; the role assignments;
// the Event Grid system topic on the storage account; and, unless turned off, an Event Grid custom topic
// (CloudEvents 1.0) the app publishes its events to. The Event Grid subscription for the blob trigger is
// created by the postdeploy hook (infra/hooks/postdeploy.sh), after the code is deployed.

targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name: names the resource group and seeds the unique resource token.')
param environmentName string

@minLength(1)
@description('Region for all resources; it must offer the Flex Consumption plan (az functionapp list-flexconsumption-locations).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object id of the deploying user (azd sets AZURE_PRINCIPAL_ID): may write Key Vault secrets and upload training data. Empty to skip.')
param principalId string = ''

@description('Resource group name; default rg-<environmentName>.')
param resourceGroupName string = ''

@description('Names of the app settings that hold ML service keys (a model definition\'s training.key_setting and endpoints[].key_setting); each must be named RETRAIN_SECRET_<NAME> (retrain/secrets.py). Each becomes a Key Vault reference to the secret of the same name with "_" replaced by "-".')
param mlKeySettingNames array = []

// --- app settings read by the app (retrain/settings.py) and by function_app.py (%NAME%) ---------------

@description('TRAINING_CONTAINER: the container the blob trigger watches.')
param trainingContainerName string = 'training-data'

@description('OUTPUT_CONTAINER: where BES writes trained models and metrics; never the watched container.')
param outputContainerName string = 'retrain-outputs'

@description('RETRAIN_TABLE_PREFIX: tables <prefix>models, <prefix>runs, <prefix>promotions, <prefix>skipped, <prefix>audit.')
param tablePrefix string = 'retrain'

@description('RETRAIN_SCHEDULE: NCRONTAB (six fields, seconds first, UTC) of the scheduled retrain.')
param retrainSchedule string = '0 0 2 * * *'

@description('SWEEP_SCHEDULE: NCRONTAB of the sweeper that re-drives overdue runs.')
param sweepSchedule string = '0 */5 * * * *'

param runTimeoutMinutes int = 120
param checkInitialDelaySeconds int = 5
param checkMaxDelaySeconds int = 300
param transientRetryLimit int = 8
param sweepGraceSeconds int = 300
param modelSasMinutes int = 60

@description('RETRAIN_FUNCTION_KEY_ROLES: app roles a caller with only a function key (automation, no signed-in principal) holds, comma-separated (Retrain.Approver, Retrain.Admin); empty: none.')
param functionKeyRoles string = ''

@description('ALLOWED_SERVICE_HOSTS: extra hosts (host, host:port or *.domain, comma-separated) that may receive ML credentials, e.g. a private deployment; Azure\'s own domains need no entry. See docs/security.md.')
param allowedServiceHosts string = ''

@description('RETRAIN_ARM_HOST: the ARM host of this cloud (management.usgovcloudapi.net, management.chinacloudapi.cn for sovereign clouds).')
param armHost string = 'management.azure.com'

@description('ARM id of an Azure ML workspace the app trains and serves in (/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/workspaces/{ws}); the app\'s identity gets AzureML Data Scientist on it. Empty: no Azure ML role.')
param azureMlWorkspaceId string = ''

@description('Publish the app\'s events (retrain.run.promoted, ...) to an Event Grid custom topic (CloudEvents 1.0) this template creates, with the app\'s identity as EventGrid Data Sender; false: webhooks only.')
param eventGridEventsEnabled bool = true

// --- hosting --------------------------------------------------------------------------------------

@allowed(['3.10', '3.11', '3.12'])
param pythonVersion string = '3.11'

@minValue(1)
@maxValue(1000)
@description('Flex Consumption scale-out cap (instances).')
param maximumInstanceCount int = 40

@allowed([512, 2048, 4096])
param instanceMemoryMB int = 2048

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var serviceName = 'retrain' // the service key in azure.yaml
var functionAppName = 'func-retrain-${resourceToken}'
var keyVaultName = 'kv-${resourceToken}'
var deploymentContainerName = 'app-package'
// function_app.py binds one queue-triggered step to each (retrain/queues.py Step.queue).
var stepQueueNames = [
  'retrain-submit'
  'retrain-check'
  'retrain-evaluate'
  'retrain-promote'
  // retrain/events/sender.py QUEUE: event fan-out and webhook / Event Grid deliveries.
  'retrain-events'
]
// retrain/context.py: {prefix}models, {prefix}runs, {prefix}promotions, {prefix}skipped, {prefix}audit, {prefix}events.
var tableNames = [
  '${tablePrefix}models'
  '${tablePrefix}runs'
  '${tablePrefix}promotions'
  '${tablePrefix}skipped'
  '${tablePrefix}audit'
  '${tablePrefix}events'
]

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'core/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-retrain-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'core/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-${resourceToken}'
    applicationInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'core/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'st${resourceToken}'
    location: location
    tags: tags
    containerNames: [
      deploymentContainerName
      trainingContainerName
      outputContainerName
    ]
    queueNames: stepQueueNames
    tableNames: tableNames
  }
}

module keyVault 'core/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: keyVaultName
    location: location
    tags: tags
  }
}

module eventGridTopic 'core/eventgrid-topic.bicep' = {
  name: 'eventgrid-topic'
  scope: rg
  params: {
    name: 'evgt-${resourceToken}'
    location: location // a system topic lives in its source's region
    tags: tags
    storageAccountName: storage.outputs.name
  }
}

// The app's own events (retrain/events/sinks.py): a custom topic, and the app identity's sender role on it.
module eventsTopic 'core/eventgrid-events-topic.bicep' = if (eventGridEventsEnabled) {
  name: 'eventgrid-events-topic'
  scope: rg
  params: {
    name: 'evgt-events-${resourceToken}'
    location: location
    tags: tags
    identityPrincipalId: identity.outputs.principalId
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    identityPrincipalId: identity.outputs.principalId
    deployerPrincipalId: principalId
  }
}

// The workspace may live in another resource group or subscription: the role is assigned at its own scope.
// (With no workspace the module is skipped; the placeholder id keeps its scope expression evaluable.)
var azureMlWorkspace = split(!empty(azureMlWorkspaceId) ? azureMlWorkspaceId : '/subscriptions/${subscription().subscriptionId}/resourceGroups/unused/providers/Microsoft.MachineLearningServices/workspaces/unused', '/')

module azureMlRbac 'app/azureml-rbac.bicep' = if (!empty(azureMlWorkspaceId)) {
  name: 'azureml-rbac'
  scope: resourceGroup(azureMlWorkspace[2], azureMlWorkspace[4])
  params: {
    workspaceName: last(azureMlWorkspace)
    identityPrincipalId: identity.outputs.principalId
  }
}

// Every app setting the app reads. Storage is identity-based for both the host and the app: the exact
// settings AzureWebJobsStorage / RETRAIN_STORAGE (connection strings) are deliberately absent, since an
// exact setting would win over the __ prefix.
var appSettings = {
  AzureWebJobsStorage__blobServiceUri: storage.outputs.blobEndpoint
  AzureWebJobsStorage__queueServiceUri: storage.outputs.queueEndpoint
  AzureWebJobsStorage__tableServiceUri: storage.outputs.tableEndpoint
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identity.outputs.clientId

  // function_app.py STORAGE = "RETRAIN_STORAGE": the blob trigger, the queue triggers and the SDK
  // clients (retrain/storage.py) resolve this one name. The Event Grid blob trigger needs the queue URI too.
  RETRAIN_STORAGE__blobServiceUri: storage.outputs.blobEndpoint
  RETRAIN_STORAGE__queueServiceUri: storage.outputs.queueEndpoint
  RETRAIN_STORAGE__tableServiceUri: storage.outputs.tableEndpoint
  RETRAIN_STORAGE__credential: 'managedidentity'
  RETRAIN_STORAGE__clientId: identity.outputs.clientId

  // ARM and MLflow tracking calls (arm endpoints, the Azure ML backend): DefaultAzureCredential -> ManagedIdentityCredential(AZURE_CLIENT_ID);
  // "prod" keeps it to environment, workload identity and managed identity (no developer tools).
  AZURE_CLIENT_ID: identity.outputs.clientId
  AZURE_TOKEN_CREDENTIALS: 'prod'

  APPLICATIONINSIGHTS_CONNECTION_STRING: monitoring.outputs.connectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identity.outputs.clientId};Authorization=AAD'
  // retrain/telemetry.py: spans, metrics and logs through the Azure Monitor distro (configure_azure_monitor, called
  // by the app itself, so the worker's own PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY stays off: no double
  // instrumentation).
  OTEL_SERVICE_NAME: functionAppName

  // SDK-type blob binding (azurefunctions-extensions-bindings-blob), as in local.settings.sample.json.
  PYTHON_ENABLE_INIT_INDEXING: '1'

  TRAINING_CONTAINER: trainingContainerName
  OUTPUT_CONTAINER: outputContainerName
  RETRAIN_TABLE_PREFIX: tablePrefix
  RETRAIN_SCHEDULE: retrainSchedule
  SWEEP_SCHEDULE: sweepSchedule
  RUN_TIMEOUT_MINUTES: string(runTimeoutMinutes)
  CHECK_INITIAL_DELAY_SECONDS: string(checkInitialDelaySeconds)
  CHECK_MAX_DELAY_SECONDS: string(checkMaxDelaySeconds)
  TRANSIENT_RETRY_LIMIT: string(transientRetryLimit)
  SWEEP_GRACE_SECONDS: string(sweepGraceSeconds)
  MODEL_SAS_MINUTES: string(modelSasMinutes)

  // Outbound allow-list (retrain/outbound.py): credentials go only to Azure's hosts per kind and these.
  ALLOWED_SERVICE_HOSTS: allowedServiceHosts
  RETRAIN_ARM_HOST: armHost

  // Event Grid sink (retrain/events/sinks.py): the custom topic's endpoint; empty: no Event Grid sink. The app
  // publishes with its identity (AZURE_CLIENT_ID above); EVENTGRID_KEY_SETTING (a topic key) is for local use only.
  EVENTGRID_TOPIC_ENDPOINT: eventGridEventsEnabled ? eventsTopic.outputs.endpoint : ''

  // Easy Auth is on (app/function.bicep authsettingsV2): read X-MS-CLIENT-PRINCIPAL, enforce the app roles.
  RETRAIN_EASY_AUTH: 'true'
  RETRAIN_FUNCTION_KEY_ROLES: functionKeyRoles
}

// ML service keys: Key Vault references (resolved by the platform with the app's identity). The
// secrets are set after deployment (infra/README.md); the versionless reference follows new versions.
var mlKeyReferences = toObject(mlKeySettingNames, setting => setting, setting => '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${replace(setting, '_', '-')})')

module auth 'app/auth.bicep' = {
  name: 'auth'
  scope: rg
  params: {
    name: 'retrain-${resourceToken}'
    displayName: 'Model retraining (${environmentName})'
  }
}

module functionApp 'app/function.bicep' = {
  name: 'function'
  scope: rg
  params: {
    name: functionAppName
    planName: 'plan-${resourceToken}'
    location: location
    tags: tags
    serviceName: serviceName
    identityId: identity.outputs.id
    storageBlobEndpoint: storage.outputs.blobEndpoint
    deploymentContainerName: deploymentContainerName
    appSettings: union(appSettings, mlKeyReferences)
    authClientId: auth.outputs.clientId
    authAudience: auth.outputs.audience
    pythonVersion: pythonVersion
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
  }
  // The host's first start needs its storage roles and the Key Vault role in place.
  dependsOn: [
    rbac
    keyVault
    eventsTopic
  ]
}

// Outputs become azd environment values (azd env get-values); the postdeploy hook reads them.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_APP_HOSTNAME string = functionApp.outputs.defaultHostName
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_KEY_VAULT_URI string = keyVault.outputs.uri
output AZURE_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output AZURE_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output EVENTGRID_SYSTEM_TOPIC_NAME string = eventGridTopic.outputs.name
output EVENTGRID_EVENTS_TOPIC_NAME string = eventGridEventsEnabled ? eventsTopic.outputs.name : ''
output TRAINING_CONTAINER string = trainingContainerName
output OUTPUT_CONTAINER string = outputContainerName
output ML_KEY_SETTING_NAMES string = join(mlKeySettingNames, ',')
output AZURE_AUTH_CLIENT_ID string = auth.outputs.clientId
output AZURE_AUTH_AUDIENCE string = auth.outputs.audience
