output "store_url" {
  description = "--store / FLOWLAKE_STORE for agents and the CLI."
  value       = module.flowlake.store_url
}

output "ui_url" {
  description = "The UI."
  value       = module.flowlake.ui_url
}

output "query_api_url" {
  description = "The query API."
  value       = module.flowlake.query_api_url
}

output "athena" {
  description = "Where to run Athena queries (see infra/recipes)."
  value = {
    database  = module.flowlake.glue_database
    workgroup = module.flowlake.athena_workgroup
  }
}

output "dead_letter_queues" {
  description = "Queues to alarm on."
  value       = module.flowlake.dead_letter_queues
}

output "agent_policies" {
  description = "Per-agent S3 policy documents."
  value       = module.flowlake.agent_policies
}

output "agent_access_keys" {
  description = "Per-agent access keys (create_agent_access_keys)."
  value       = module.flowlake.agent_access_keys
  sensitive   = true
}
