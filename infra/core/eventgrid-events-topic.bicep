// The Event Grid custom topic the app publishes its own events to (retrain/events/sinks.py EventGridSink):
// CloudEvents 1.0 in (the same events the webhooks get), Entra ID only (no access keys), and the app's
// identity may send to it ("EventGrid Data Sender", scoped to this topic alone). Consumers subscribe to
// it with their own Event Grid subscriptions (az eventgrid event-subscription create --source-resource-id).

param name string
param location string
param tags object = {}

@description('Principal (object) id of the function app\'s user-assigned identity.')
param identityPrincipalId string

var roles = {
  eventGridDataSender: 'd5a91429-5739-47e2-a06b-3470a27159e7'
}

resource topic 'Microsoft.EventGrid/topics@2022-06-15' = {
  name: name
  location: location
  tags: tags
  properties: {
    inputSchema: 'CloudEventSchemaV1_0'
    disableLocalAuth: true // the app sends with its managed identity (DefaultAzureCredential, AZURE_CLIENT_ID)
    publicNetworkAccess: 'Enabled'
  }
}

resource appSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(topic.id, identityPrincipalId, roles.eventGridDataSender)
  scope: topic
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.eventGridDataSender)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output id string = topic.id
output name string = topic.name
output endpoint string = topic.properties.endpoint
