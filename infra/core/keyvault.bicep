// Key Vault for the ML service API keys (BES keys, classic endpoint keys). RBAC authorization only: the
// app's identity reads secrets (Key Vault Secrets User), the deployer writes them (Key Vault Secrets
// Officer), see app/rbac.bicep. The secrets themselves are NOT created here (a template that wrote them
// would reset them on every `azd provision`); set them after deployment, see infra/README.md.

param name string
param location string
param tags object = {}

@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 7

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

output id string = vault.id
output name string = vault.name
output uri string = vault.properties.vaultUri
