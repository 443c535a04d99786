// The Event Grid system topic for the storage account's blob events. The subscription that delivers
// BlobCreated events for the training container to the blob trigger's webhook is created after code
// deployment by infra/hooks/postdeploy.sh (.ps1): the webhook URL carries the host's blobs_extension
// system key, and Event Grid validates the endpoint when the subscription is created, which only
// succeeds once the app is deployed and its Event Grid blob trigger is indexed.

param name string
param location string
param tags object = {}
param storageAccountName string

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: name
  location: location // must be the storage account's region
  tags: tags
  properties: {
    source: storage.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

output id string = systemTopic.id
output name string = systemTopic.name
