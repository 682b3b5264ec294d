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
  description = "GPU servers: gpu_agent 9842, rolloutd 8090 (on the first)."
  value       = module.hosts["gpu"].private_ips
}

output "db_private_ips" {
  description = "Database nodes: pg1/pg2/pg3 (5433-5435, Patroni 8008-8010) with etcd1/etcd2/etcd3 (2479-2484); the first also HAProxy 5000 (write) / 5001 (read), PgBouncer 6432."
  value       = module.hosts["db"].private_ips
}

output "kafka_bootstrap_servers" {
  description = "Kafka bootstrap list: the brokers' advertised names (kafka1:9092,kafka2:9093,kafka3:9094), resolvable in the VPC."
  value       = join(",", [for i, ip in module.hosts["kafka"].private_ips : "kafka${i + 1}:${local.topology.services["kafka${i + 1}"].ports.client}"])
}

output "redis_private_ips" {
  description = "Redis nodes: redis1 6380 + sentinel1 26380, redis2 6381 + sentinel2 26381 (sentinel3 26382 on the monitoring host)."
  value       = module.hosts["redis"].private_ips
}

output "monitoring_private_ip" {
  description = "Monitoring host: Prometheus 9490, Alertmanager 9493, Grafana 3000."
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
  description = "libpq URI through PgBouncer (password: the secret pg_app)."
  value       = "postgresql://app@pgbouncer.${var.dns_domain}:${local.ports["pgbouncer-client"][0]}/ultrathink_experiments"
}

output "service_addresses" {
  description = "Every compose service name and the address of the host it runs on (the private zone's A records)."
  value       = { for n, r in aws_route53_record.service : n => r.records }
}
