// The Entra ID app registration App Service Authentication (Easy Auth) validates tokens for, and the
// app roles the API enforces (retrain/principal.py): Retrain.Approver approves, rejects and rolls back;
// Retrain.Admin registers and redefines models. Assign them to people or service principals in
// Enterprise applications > <displayName> > Users and groups (infra/README.md, docs/security.md).
// Uses the Microsoft Graph Bicep extension (infra/bicepconfig.json); the deployer must be allowed to
// create app registrations (the default for members, or the Application Developer role).
extension microsoftGraphV1

@description('Unique name of the app registration (also its identifier URI api://<name>).')
param name string

param displayName string

resource registration 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: name
  displayName: displayName
  signInAudience: 'AzureADMyOrg'
  identifierUris: [
    'api://${name}'
  ]
  api: {
    requestedAccessTokenVersion: 2
  }
  appRoles: [
    {
      id: guid(name, 'Retrain.Approver')
      value: 'Retrain.Approver'
      displayName: 'Retrain approver'
      description: 'Approve or reject runs awaiting approval, and roll a model back.'
      allowedMemberTypes: [
        'User'
        'Application'
      ]
      isEnabled: true
    }
    {
      id: guid(name, 'Retrain.Admin')
      value: 'Retrain.Admin'
      displayName: 'Retrain administrator'
      description: 'Register and redefine models (training service, endpoints, policy).'
      allowedMemberTypes: [
        'User'
        'Application'
      ]
      isEnabled: true
    }
  ]
}

resource servicePrincipal 'Microsoft.Graph/servicePrincipals@v1.0' = {
  appId: registration.appId
}

output clientId string = registration.appId
output audience string = 'api://${name}'
