// The user-assigned managed identity the function app runs as: host storage, the app's storage
// connection (RETRAIN_STORAGE), Key Vault references, Application Insights and ARM calls all use it.

param name string
param location string
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
