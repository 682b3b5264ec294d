output "vpc_id" {
  description = "The VPC."
  value       = aws_vpc.main.id
}

output "private_subnet_ids" {
  description = "The three private subnets (one per zone)."
  value       = aws_subnet.private[*].id
}

output "nat_public_ip" {
  description = "The NAT gateway's public address (what outside services see from every host)."
  value       = aws_eip.nat.public_ip
}

output "gpu_private_ips" {
  description = "GPU servers: gpu_agent on 9842, rolloutd on 8090."
  value       = module.hosts["gpu"].private_ips
}

output "db_private_ips" {
  description = "Database nodes: PostgreSQL 5432, Patroni 8008, HAProxy 5000 (write) / 5001 (read), PgBouncer 6432, etcd 2379."
  value       = module.hosts["db"].private_ips
}

output "kafka_bootstrap_servers" {
  description = "Kafka bootstrap list (host:9092,...)."
  value       = join(",", [for ip in module.hosts["kafka"].private_ips : "${ip}:${local.ports["kafka_client"]}"])
}

output "redis_private_ips" {
  description = "Redis nodes: Redis 6379, Sentinel 26379 (the third Sentinel runs on the monitoring host)."
  value       = module.hosts["redis"].private_ips
}

output "monitoring_private_ip" {
  description = "Monitoring host: Prometheus 9090, Alertmanager 9093, Grafana 3000."
  value       = module.hosts["monitoring"].private_ips[0]
}

output "hosts" {
  description = "Every host by role: names, instance IDs and private addresses."
  value = {
    for role, h in module.hosts : role => {
      names       = h.names
      ids         = h.ids
      private_ips = h.private_ips
    }
  }
}

output "postgres_dsn_hint" {
  description = "libpq multi-host URI through PgBouncer on every database node (password from SSM)."
  value       = "postgresql://app@${join(",", [for ip in module.hosts["db"].private_ips : "${ip}:${local.ports["pgbouncer"]}"])}/ultrathink_experiments?target_session_attrs=read-write"
}
