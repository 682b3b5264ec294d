output "ids" {
  description = "Instance IDs."
  value       = aws_instance.this[*].id
}

output "names" {
  description = "Host names (the Name tag and cloud-init hostname)."
  value       = [for i in aws_instance.this : i.tags["Name"]]
}

output "private_ips" {
  description = "Private addresses."
  value       = aws_instance.this[*].private_ip
}

output "data_volume_ids" {
  description = "Data volume IDs (empty without a data volume)."
  value       = aws_ebs_volume.data[*].id
}
