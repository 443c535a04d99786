// The app's identity on an Azure Machine Learning workspace (the Azure ML backend, retrain/training/azureml.py and
// retrain/serving): AzureML Data Scientist lets it submit and cancel jobs, read their MLflow metrics, register
// models and create online/batch deployments and traffic, but not create compute or change the workspace.
// Deployed at the workspace's resource group (main.bicep scopes it from the workspace's ARM id).

@description('Name of the existing Azure ML workspace (the last segment of its ARM id).')
param workspaceName string

@description('Principal (object) id of the function app\'s user-assigned identity.')
param identityPrincipalId string

var roles = {
  azureMLDataScientist: 'f6c7c914-8db3-469d-8ca1-694a8f32e121'
}

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-10-01' existing = {
  name: workspaceName
}

resource appWorkspace 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, identityPrincipalId, roles.azureMLDataScientist)
  scope: workspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.azureMLDataScientist)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}
