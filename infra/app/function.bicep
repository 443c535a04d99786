// The Function App on the Flex Consumption plan (Linux, Python), running as the user-assigned identity.
// Flex takes the runtime, its version and scaling from functionAppConfig; FUNCTIONS_WORKER_RUNTIME,
// FUNCTIONS_EXTENSION_VERSION, WEBSITE_RUN_FROM_PACKAGE and the content-share settings must not be set.
// The code package lives in a blob container of the storage account, read with the same identity.

param name string
param planName string
param location string
param tags object = {}

@description('azd service name (azure.yaml `services:` key); azd finds the app by this tag.')
param serviceName string

@description('Resource id of the user-assigned identity the app runs as.')
param identityId string

@description('Blob endpoint of the storage account holding the deployment container, ending with "/".')
param storageBlobEndpoint string

param deploymentContainerName string

@description('All app settings (name -> value).')
param appSettings object

@description('Client id of the Entra app registration Easy Auth validates tokens for (app/auth.bicep).')
param authClientId string

@description('Audience of the API tokens (api://<name>).')
param authAudience string

@allowed(['3.10', '3.11', '3.12'])
param pythonVersion string = '3.11'

@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@allowed([512, 2048, 4096])
param instanceMemoryMB int = 2048

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true // Linux
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': serviceName })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Key Vault references resolve with this identity (the default would be a system-assigned one).
    keyVaultReferenceIdentity: identityId
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
  }

  resource settings 'config' = {
    name: 'appsettings'
    properties: appSettings
  }

  // App Service Authentication (Easy Auth): validates Entra ID tokens and hands the app the caller as
  // X-MS-CLIENT-PRINCIPAL (stripping any the client sent). Anonymous requests still reach the host,
  // whose function keys authorize automation; the app enforces the roles (RETRAIN_EASY_AUTH=true).
  resource auth 'config' = {
    name: 'authsettingsV2'
    properties: {
      platform: {
        enabled: true
      }
      globalValidation: {
        requireAuthentication: false
        unauthenticatedClientAction: 'AllowAnonymous'
      }
      identityProviders: {
        azureActiveDirectory: {
          enabled: true
          registration: {
            clientId: authClientId
            openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
          }
          validation: {
            allowedAudiences: [
              authAudience
              authClientId
            ]
          }
        }
      }
      login: {
        tokenStore: {
          enabled: false
        }
      }
    }
  }
}

output id string = site.id
output name string = site.name
// New apps may get a unique default host name (<name>-<hash>.<region>-01.azurewebsites.net): use this,
// never "<name>.azurewebsites.net".
output defaultHostName string = site.properties.defaultHostName
