output "store_url" {
  description = "FLOWLAKE_STORE of the hosts, the query server and the agents."
  value       = module.flowlake.store_url
}

output "restart_required" {
  description = "Restart MinIO before the notification target takes events."
  value       = module.flowlake.restart_required
}

output "functions_credentials" {
  description = "For the Secret flowlake-functions."
  value       = module.flowlake.functions_credentials
  sensitive   = true
}

output "query_credentials" {
  description = "For the Secret flowlake-query."
  value       = module.flowlake.query_credentials
  sensitive   = true
}

output "agent_credentials" {
  description = "Per agent, for the Secret flowlake-agent-s3 of its node."
  value       = module.flowlake.agent_credentials
  sensitive   = true
}
