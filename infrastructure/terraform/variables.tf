# Inputs of the ultrathink production stack (docs/deploy-terraform.md).  Every variable has a type,
# a description and, where a wrong value would only fail later in AWS, a validation block.

variable "region" {
  type        = string
  description = "AWS region to deploy into."
  default     = "us-east-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must look like us-east-1."
  }
}

variable "environment" {
  type        = string
  description = "Deployment name (production or staging): prefixes every name and the SSM secrets path."
  default     = "production"

  validation {
    condition     = contains(["production", "staging"], var.environment)
    error_message = "environment must be production or staging."
  }
}

variable "vpc_cidr" {
  type        = string
  description = "CIDR block of the VPC; every service port is open to this block only."
  default     = "10.40.0.0/16"

  validation {
    # (no short-circuit in HCL: both halves must be safe on any string)
    condition     = can(cidrhost(var.vpc_cidr, 0)) && can(regex("/([89]|1[0-9]|20)$", var.vpc_cidr))
    error_message = "vpc_cidr must be a valid IPv4 CIDR between /8 and /20 (it is cut into /24 subnets)."
  }
}

variable "availability_zones" {
  type        = list(string)
  description = "Three availability zones: one private subnet each, the members of every cluster spread over them."

  validation {
    condition     = length(var.availability_zones) == 3 && length(distinct(var.availability_zones)) == 3
    error_message = "availability_zones must name exactly three distinct zones (3 database, 3 Kafka nodes: one per zone)."
  }
}

variable "admin_cidr_blocks" {
  type        = list(string)
  description = "CIDR blocks allowed to reach SSH (22) on every host and Grafana (3000) on the monitoring host."

  validation {
    condition     = length(var.admin_cidr_blocks) > 0 && alltrue([for c in var.admin_cidr_blocks : can(cidrhost(c, 0)) && c != "0.0.0.0/0"])
    error_message = "admin_cidr_blocks must be valid CIDR blocks, and not 0.0.0.0/0."
  }
}

variable "dns_domain" {
  type        = string
  description = "Private DNS zone of the VPC (and its search domain): every compose service name (pg1, kafka1, redis1, prometheus, ...) resolves under it to its host."
  default     = "ultrathink.internal"

  validation {
    condition     = can(regex("^[a-z0-9-]+(\\.[a-z0-9-]+)+$", var.dns_domain))
    error_message = "dns_domain must be a domain name such as ultrathink.internal."
  }
}

variable "ssh_key_name" {
  type        = string
  description = "Name of an existing EC2 key pair for SSH; null to rely on SSM Session Manager only."
  default     = null
}

variable "repo_url" {
  type        = string
  description = "Git URL of this repository, cloned by every host at boot (compose files, units, configuration)."

  validation {
    condition     = can(regex("^(https://|git@)", var.repo_url))
    error_message = "repo_url must be an https:// or git@ URL."
  }
}

variable "repo_ref" {
  type        = string
  description = "Git branch or tag every host checks out (a release tag in production)."
  default     = "main"
}

variable "gpu_instance_type" {
  type        = string
  description = "Instance type of the 2 GPU servers (A100 class: p4d.24xlarge has 8 x A100 40 GB)."
  default     = "p4d.24xlarge"

  validation {
    condition     = can(regex("^(p4d|p4de|p5|p5e|g5|g6|g6e)\\.", var.gpu_instance_type))
    error_message = "gpu_instance_type must be an NVIDIA GPU family (p4d, p4de, p5, p5e, g5, g6, g6e)."
  }
}

variable "gpu_ami_id" {
  type        = string
  description = "AMI of the GPU servers (NVIDIA driver installed); null picks the latest AWS Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04)."
  default     = null
}

variable "ami_id" {
  type        = string
  description = "AMI of every other host; null picks the latest Canonical Ubuntu 24.04 LTS (amd64)."
  default     = null
}

variable "db_instance_type" {
  type        = string
  description = "Instance type of the 3 database nodes (PostgreSQL/TimescaleDB under Patroni, etcd, HAProxy, PgBouncer)."
  default     = "r6i.2xlarge"
}

variable "db_volume_size_gb" {
  type        = number
  description = "gp3 data volume of each database node, in GB."
  default     = 1000

  validation {
    condition     = var.db_volume_size_gb >= 100 && var.db_volume_size_gb <= 16384
    error_message = "db_volume_size_gb must be within 100..16384 (gp3 limits)."
  }
}

variable "db_volume_iops" {
  type        = number
  description = "Provisioned IOPS of each database gp3 volume (3000 is gp3's baseline)."
  default     = 6000

  validation {
    condition     = var.db_volume_iops >= 3000 && var.db_volume_iops <= 16000
    error_message = "db_volume_iops must be within 3000..16000 (gp3 limits)."
  }
}

variable "kafka_instance_type" {
  type        = string
  description = "Instance type of the 3 Kafka nodes (KRaft: broker and controller on each)."
  default     = "m6i.2xlarge"
}

variable "kafka_volume_size_gb" {
  type        = number
  description = "gp3 data volume of each Kafka node, in GB."
  default     = 500

  validation {
    condition     = var.kafka_volume_size_gb >= 100 && var.kafka_volume_size_gb <= 16384
    error_message = "kafka_volume_size_gb must be within 100..16384 (gp3 limits)."
  }
}

variable "redis_instance_type" {
  type        = string
  description = "Instance type of the 2 Redis nodes: maxmemory 128 GB plus the copy-on-write fork of BGSAVE (mem_limit 160g): r6i.8xlarge, 256 GiB (infrastructure/topology.yml hosts.redis)."
  default     = "r6i.8xlarge"

  validation {
    condition     = can(regex("^(r6i|r6in|r7i|r7iz|r6a|r7a|x2idn)\\.(4|8|12|16)xlarge$", var.redis_instance_type))
    error_message = "redis_instance_type must be a memory-optimised type with at least 128 GiB (e.g. r6i.4xlarge)."
  }
}

variable "monitoring_instance_type" {
  type        = string
  description = "Instance type of the monitoring host (Prometheus, Alertmanager, Grafana, the exporters, the third Redis Sentinel: 21 GiB of mem_limit, so 32 GiB, infrastructure/topology.yml hosts.monitoring)."
  default     = "m6i.2xlarge"
}

variable "monitoring_volume_size_gb" {
  type        = number
  description = "gp3 volume of the monitoring host for the Prometheus TSDB, in GB."
  default     = 200

  validation {
    condition     = var.monitoring_volume_size_gb >= 50
    error_message = "monitoring_volume_size_gb must be at least 50."
  }
}

variable "tags" {
  type        = map(string)
  description = "Extra tags for every resource."
  default     = {}
}
